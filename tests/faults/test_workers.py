"""Two workers on one Redis: jobs go to a worker that can start them, stopping or killing one leaves
the other serving, and health lists every live worker (a dead one drops out within its TTL)."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid

import pytest
import redis

from convassist.keys import stream_key
from convassist.worker.status import TTL_HEARTBEATS
from tests.conftest import start_worker

HEARTBEAT = 1  # seconds: a killed worker's entry is gone after TTL_HEARTBEATS of them


@pytest.fixture
def queue(services_env, settings_env):
    """A queue of this test's own, with fast heartbeats; start(n) starts n real workers on it."""
    name = f"convassist:faults:{uuid.uuid4().hex[:8]}"
    env = {**services_env, "ML_SERVICE_QUEUE": name, "ML_SERVICE_HEARTBEAT_SECONDS": str(HEARTBEAT),
           "ML_SERVICE_THREADS": "1"}
    settings_env(ML_SERVICE_QUEUE=name, ML_SERVICE_HEARTBEAT_SECONDS=str(HEARTBEAT))
    client = redis.Redis.from_url(services_env["REDIS_URL"])
    processes: list[subprocess.Popen] = []

    def start(n: int = 1) -> list[subprocess.Popen]:
        started = [start_worker(env) for _ in range(n)]
        processes.extend(started)
        return started

    start.name = name
    start.client = client
    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=20)
    client.close()


def generate(provider, text: str) -> dict:
    answer = provider.post("/api/ml/generate", json={"prompt": f"Them: {text}\nMe:", "max_tokens": 16})
    assert answer.status_code == 200, answer.text
    return answer.json()


def live_pids(provider) -> set[int]:
    return {w["pid"] for w in provider.get("/api/health/details").json()["workers"]}


def test_stopping_one_of_two_workers_leaves_the_other_serving(provider, queue):
    first, second = queue(2)
    assert live_pids(provider) == {first.pid, second.pid}

    first.send_signal(signal.SIGTERM)  # a graceful stop (deploy, scale down)
    first.wait(timeout=30)
    health = provider.get("/api/health/details").json()
    assert health["status"] == "ok" and live_pids(provider) == {second.pid}
    assert provider.api.get("/api/health").json() == {"status": "ok"}
    generate(provider, "Are you open on Sunday?")  # at once, no restart of anything


def test_a_killed_worker_drops_out_within_its_ttl_and_a_new_one_serves(provider, queue):
    [worker] = queue(1)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    killed_at = time.monotonic()
    while worker.pid in live_pids(provider):
        assert time.monotonic() - killed_at < TTL_HEARTBEATS * HEARTBEAT + 2, "dead worker still listed"
        time.sleep(0.2)
    gone_after = time.monotonic() - killed_at
    refused = provider.post("/api/ml/generate", json={"prompt": "Them: hi\nMe:"})
    assert refused.status_code == 503 and refused.json()["error"] == "worker_unavailable"
    print(f"killed worker dropped from health after {gone_after:.1f} s")

    [replacement] = queue(1)
    assert live_pids(provider) == {replacement.pid}
    generate(provider, "Can I bring my dog?")


def test_jobs_go_to_a_worker_that_can_start_them(provider, queue, settings_env):
    """Eight requests at once, two workers with one model each: no worker starts a job before its
    previous one ended (before, one worker took up to ten jobs at once and ran them one by one
    while the other idled), and both serve."""
    from concurrent.futures import ThreadPoolExecutor


    workers = queue(2)
    settings_env(ML_SERVICE_MAX_IN_FLIGHT="8")  # one provider stands in for eight

    def run(i: int) -> tuple[str, int, int]:
        """(worker id, start ms, end ms) of one job, from its stream: the worker names itself when
        it starts the job, and the last entry carries the result."""
        job = provider.post("/api/ml/generate/async", json={"prompt": f"Them: question {i} {uuid.uuid4()}\nMe:",
                                                            "max_tokens": 24})
        assert job.status_code == 202, job.text
        job_id = job.json()["job_id"]
        deadline = time.monotonic() + 60
        while (status := provider.get(f"/api/ml/jobs/{job_id}").json())["status"] != "complete":
            assert time.monotonic() < deadline, status
            time.sleep(0.05)
        entries = queue.client.xrange(stream_key(job_id))
        first, last = entries[0], entries[-1]
        ms = lambda entry_id: int(entry_id.split(b"-")[0])  # noqa: E731
        return first[1][b"worker"].decode(), ms(first[0]), ms(last[0])

    with ThreadPoolExecutor(8) as pool:
        jobs = list(pool.map(run, range(8)))
    by_worker: dict[str, list[tuple[int, int]]] = {}
    for worker_id, start, end in jobs:
        by_worker.setdefault(worker_id, []).append((start, end))
    for worker_id, spans in by_worker.items():
        spans.sort()
        overlapping = [(a, b) for a, b in zip(spans, spans[1:]) if b[0] < a[1]]
        assert not overlapping, f"{worker_id} started a job while running another: {spans}"
    assert {int(w.split("-")[-2]) for w in by_worker} == {w.pid for w in workers}, by_worker


def started_a_job(client, pid: int) -> bool:
    """Whether the worker with this pid has named itself on some job's stream (it does so first)."""
    for key in client.scan_iter(stream_key("*")):
        first = client.xrange(key, count=1)
        if first and f"-{pid}-".encode() in first[0][1].get(b"worker", b""):
            return True
    return False


LONG_PROMPT = "Them: " + " ".join(f"question{i}" for i in range(200)) + "\nMe:"  # ~800 tokens: seconds of work


def signalled_mid_generation(provider, queue, worker, sig) -> tuple:
    """Ask for a reply to LONG_PROMPT and send the worker `sig` as soon as it starts the job; (the answer,
    when the signal was sent)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(provider.post, "/api/ml/generate", json={"prompt": LONG_PROMPT, "max_tokens": 8})
        deadline = time.monotonic() + 30
        while not started_a_job(queue.client, worker.pid):
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.01)
        worker.send_signal(sig)
        sent_at = time.monotonic()
        return waiting.result(timeout=60), sent_at


def test_a_worker_killed_mid_generation_answers_a_clear_error_and_the_next_worker_serves(provider, queue):
    """A ~800-token prompt keeps the worker busy for seconds; it is killed as soon as it starts the
    job. The waiting request answers 503 once the worker's entry expires — not at the 120 s timeout —
    and the same request asked again is served by the next worker."""
    [worker] = queue(1)
    answer, killed_at = signalled_mid_generation(provider, queue, worker, signal.SIGKILL)
    answered_after = time.monotonic() - killed_at
    print(f"request answered {answered_after:.1f} s after its worker was killed")
    assert answer.status_code == 503 and answer.json()["error"] == "worker_unavailable", answer.text
    assert answered_after < TTL_HEARTBEATS * HEARTBEAT + 3

    # asking again (the same request: a dead job must not keep its claim) works on a new worker
    queue(1)
    again = provider.post("/api/ml/generate", json={"prompt": LONG_PROMPT, "max_tokens": 8})
    assert again.status_code == 200, again.text


def test_a_worker_stopped_mid_generation_finishes_the_reply_first(provider, queue):
    """A graceful stop (deploy, scale down) while the worker writes a reply: the reply is finished and
    answered, then the worker exits (arq's default handler cancelled the job: "the reply worker stopped")."""
    [worker] = queue(1)
    answer, _ = signalled_mid_generation(provider, queue, worker, signal.SIGTERM)
    assert answer.status_code == 200, answer.text
    assert worker.wait(timeout=30) == 0
    assert not live_pids(provider)


def test_a_stream_into_the_page_ends_when_its_worker_is_gone(db, queue):
    """The page reads a suggestion's stream while the worker writes it: if that worker dies, the
    stream ends (the page then shows the stored failure) instead of spinning for two minutes."""
    import asyncio

    from convassist.services import queue as jobs
    from convassist.services.responses import stream_text

    [worker] = queue(1)
    key = stream_key(f"test-{uuid.uuid4().hex}")
    live_id = next(iter(queue.client.zrange(f"{queue.name}:workers", 0, -1))).decode()

    async def read_all(worker_id: str) -> tuple[list[str], float]:
        jobs._pools.clear()  # a connection of this event loop's own (asyncio.run makes a new loop)
        queue.client.delete(key)
        queue.client.xadd(key, {"worker": worker_id})
        queue.client.xadd(key, {"text": "Sure, "})
        started = time.monotonic()
        texts = [text async for text in stream_text(key, timeout=20)]
        return texts, time.monotonic() - started

    texts, waited = asyncio.run(read_all("gone-host-1-abcdef"))
    assert texts == ["Sure, "] and waited < 2  # no such worker: the stream ends at the first quiet moment

    async def finish_later() -> None:
        await asyncio.sleep(1.5)
        queue.client.xadd(key, {"done": "1", "result": "{}"})

    async def read_while_served() -> tuple[list[str], float]:
        writer = asyncio.create_task(finish_later())
        result = await read_all(live_id)
        await writer
        return result

    texts, waited = asyncio.run(read_while_served())
    assert texts == ["Sure, "] and waited >= 1.4  # a live worker's stream is read until its end
    assert worker.poll() is None


def test_a_worker_whose_model_failed_to_load_takes_no_reply_job(provider, queue, services_env, tmp_path):
    """Two workers, one of which could not load its model (a broken file): health lists both and says why,
    and every suggestion is served by the one with a model. Before, the idle broken worker took most jobs
    (it is always free) and failed them with model_unavailable while the other one was fine."""
    from tests.conftest import start_worker

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF but not really a model")
    [good] = queue(1)
    bad = start_worker({**services_env, "ML_SERVICE_QUEUE": queue.name, "ML_SERVICE_HEARTBEAT_SECONDS": str(HEARTBEAT),
                        "ML_SERVICE_THREADS": "1", "ML_SERVICE_MODEL_PATH": str(broken)})
    try:
        workers = {w["pid"]: w for w in provider.get("/api/health/details").json()["workers"]}
        assert set(workers) == {good.pid, bad.pid}
        assert workers[bad.pid]["loaded"] is False and workers[good.pid]["loaded"] is True
        for i in range(6):
            generate(provider, f"Can I come in at {i + 1}pm?")  # 200 each, or the assertion says why
    finally:
        bad.kill()
        bad.wait(timeout=20)
