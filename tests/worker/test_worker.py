"""A real arq worker on the installed redis-py (arq pins redis<6; we run it on Reflex's redis-py)."""

import asyncio
import json
import uuid

import pytest
import redis as redis_py
from arq import create_pool, func
from arq.connections import RedisSettings
from arq.worker import Worker

from convassist import keys
from convassist.worker import main as worker_main
from ml.engine import FakeEngine


async def stop(worker: Worker, running: asyncio.Task) -> None:
    """Stop a worker started with `worker.main()`: let its jobs finish their bookkeeping first (a job's
    result is readable a moment before its task ends; closing cancels the task mid-way otherwise)."""
    await asyncio.wait_for(asyncio.gather(*worker.tasks.values()), timeout=10)
    running.cancel()
    await worker.close()


def test_installed_redis_py_is_the_one_reflex_needs():
    major = int(redis_py.__version__.split(".")[0])
    assert major >= 6, "Reflex 0.10 needs redis-py >= 6.4"


def test_arq_burst_worker_runs_jobs_on_installed_redis_py(db, redis_server):
    async def scenario():
        settings = RedisSettings.from_dsn(redis_server.url)
        pool = await create_pool(settings, default_queue_name="burst-test")
        jobs = [await pool.enqueue_job("ping", _queue_name="burst-test") for _ in range(5)]

        async def startup(ctx):
            ctx["engine"] = FakeEngine()

        worker = Worker(functions=[worker_main.ping], redis_settings=settings, queue_name="burst-test",
                        burst=True, poll_delay=0, on_startup=startup, handle_signals=False)
        await worker.main()
        results = [await job.result(timeout=5, poll_delay=0.01) for job in jobs]
        await worker.close()
        await pool.aclose()
        return worker, results

    worker, results = asyncio.run(scenario())
    assert worker.jobs_complete == 5 and worker.jobs_failed == 0
    assert all(r["pong"] is True and r["modelLoaded"] is True for r in results)


def test_a_queued_job_wakes_the_worker_and_one_queued_without_a_wake_is_still_found(db, redis_server):
    """The worker blocks between polls; the app's enqueue wakes it. With a 3 s idle poll, a woken job
    starts at once, and a job queued behind arq's back (no wake) waits for the next poll but runs."""
    import time

    from convassist.services import queue

    async def scenario():
        settings = RedisSettings.from_dsn(redis_server.url)

        async def startup(ctx):
            ctx["engine"] = FakeEngine()

        worker = worker_main.create_worker(functions=[worker_main.ping], redis_settings=settings, queue_name="wake-test",
                                         poll_delay=3.0, on_startup=startup, handle_signals=False,
                                         health_check_interval=3600)
        running = asyncio.create_task(worker.main())
        await asyncio.sleep(0.5)  # the worker is now blocked in its idle wait
        started = time.monotonic()
        job = await queue.enqueue("ping", _queue_name="wake-test")
        woken = await job.result(timeout=10, poll_delay=0.01)
        woken_after = time.monotonic() - started

        await asyncio.sleep(0.5)
        pool = await queue.get_pool()
        started = time.monotonic()
        job = await pool.enqueue_job("ping", _queue_name="wake-test")  # no wake
        polled = await job.result(timeout=10, poll_delay=0.01)
        polled_after = time.monotonic() - started
        await stop(worker, running)
        await queue.close_pools()
        return woken, woken_after, polled, polled_after

    woken, woken_after, polled, polled_after = asyncio.run(scenario())
    assert woken["pong"] is True and woken_after < 1.0
    assert polled["pong"] is True and 1.0 < polled_after < 6.0


def test_a_job_queued_behind_a_busy_worker_starts_the_moment_the_first_one_ends(db, redis_server):
    """One slot, two jobs: the second was queued (and its wake consumed) while the first ran. The worker
    starts it as soon as the first ends, not at its next idle poll (3 s here; 0.5 s by default: under
    load every queued suggestion used to wait up to that long)."""
    import time

    from convassist.services import queue

    async def slow(ctx):
        await asyncio.sleep(1.0)
        return {"at": time.monotonic()}

    async def stamp(ctx):
        return {"at": time.monotonic()}

    async def scenario():
        settings = RedisSettings.from_dsn(redis_server.url)
        worker = worker_main.create_worker(functions=[func(slow, name="slow"), func(stamp, name="stamp")],
                                           redis_settings=settings, queue_name="busy-test",
                                         poll_delay=3.0, max_jobs=1, handle_signals=False,
                                         health_check_interval=3600, on_startup=None)
        running = asyncio.create_task(worker.main())
        await asyncio.sleep(0.5)
        first = await queue.enqueue("slow", _queue_name="busy-test")
        await asyncio.sleep(0.2)  # the first runs; the second's wake is pushed while the worker is busy
        second = await queue.enqueue("stamp", _queue_name="busy-test")
        ended, started = await first.result(timeout=10, poll_delay=0.01), await second.result(timeout=10,
                                                                                              poll_delay=0.01)
        await stop(worker, running)
        await queue.close_pools()
        return started["at"] - ended["at"]

    gap = asyncio.run(scenario())
    assert 0 <= gap < 0.2, f"the queued job started {gap:.3f} s after the first ended"


def test_app_round_trip_through_the_real_worker_process(db, worker_process):
    from convassist.services import queue

    async def scenario():
        times = [await queue.ping_worker(timeout=5) for _ in range(20)]
        await queue.close_pools()
        return times

    times = asyncio.run(scenario())
    assert len(times) == 20 and max(times) < 2000


def test_no_worker_gives_unavailable_within_the_timeout(db, settings_env):
    import time

    from convassist.services import queue
    from convassist.services.errors import Unavailable

    settings_env(ML_SERVICE_QUEUE="queue-with-no-worker")

    async def scenario():
        started = time.monotonic()
        with pytest.raises(Unavailable) as err:
            await queue.run_job("ping", timeout=0.5)
        await queue.close_pools()
        return time.monotonic() - started, err.value

    elapsed, error = asyncio.run(scenario())
    assert error.code == "worker_unavailable" and elapsed < 2


@pytest.mark.asyncio
async def test_cached_or_enqueue_answers_joins_or_queues_a_real_arq_job(db, settings_env):
    """The suggestion path's one round trip: a cached value wins, a claimed request is joined, and
    otherwise an arq job is queued that arq itself reads back (and the worker is woken). Works again
    after Redis forgets its scripts."""
    from arq.jobs import JobStatus

    from convassist.services import queue

    settings_env(ML_SERVICE_QUEUE="queue-nobody-reads")  # the real worker would take the job
    limits = queue.OwnerLimits(rate_key="k:rate", rate=100, window=60, in_flight_key="k:flying", in_flight=10)

    def call(job_id, cache_key="k:cache", claim_key="k:claim"):
        return queue.cached_or_enqueue("ping", {"a": 1}, job_id=job_id, cache_key=cache_key, claim_key=claim_key,
                                       claim_seconds=30, limits=limits)

    pool = await queue.get_pool()
    try:
        assert await call("j1") == ("queued", b"j1")
        assert await call("j2") == ("running", b"j1")  # the same request in flight: joined
        assert json.loads(await pool.get("arq:job:j1"))["a"] == [{"a": 1}]  # JSON, never a pickle that runs code
        info = await queue.job_handle("j1", pool).info()
        assert info.function == "ping" and list(info.args) == [{"a": 1}]
        assert await queue.job_handle("j1", pool, pool.default_queue_name).status() == JobStatus.queued
        assert await pool.lrange(keys.wake_key(pool.default_queue_name), 0, -1) == [b"1"]
        assert 0 < await pool.ttl("k:claim") <= 30
        assert 0 < await pool.pttl("arq:job:j1") <= 30_000  # nobody waits past the claim: arq drops the job then

        await pool.set("k:cache", b'{"response": "hi"}')
        await pool.script_flush()  # Redis restarted without its scripts: loaded again
        assert await call("j3", claim_key="k:other") == ("cached", b'{"response": "hi"}')
        assert await call("j4", cache_key=None, claim_key="k:other2") == ("queued", b"j4")
        assert await pool.zrange(pool.default_queue_name, 0, -1) == [b"j1", b"j4"]
    finally:
        await queue.close_pools()


@pytest.mark.asyncio
async def test_cached_or_enqueue_enforces_the_owner_rate_and_in_flight_limits(db, settings_env):
    """Past the in-flight limit nothing is queued ("busy") until a job leaves the owner's set; past
    the rate, nothing either ("rate_limited", with the seconds left); cache hits are never counted."""
    from convassist.services import queue

    settings_env(ML_SERVICE_QUEUE="queue-nobody-reads")
    limits = queue.OwnerLimits(rate_key="k:rate", rate=4, window=60, in_flight_key="k:flying", in_flight=2)

    async def outcome(i, cache=None):
        return await queue.cached_or_enqueue("ping", {}, job_id=f"j{i}", cache_key=cache, claim_key=f"k:claim{i}",
                                             claim_seconds=30, limits=limits)

    pool = await queue.get_pool()
    try:
        assert [(await outcome(i))[0] for i in range(3)] == ["queued", "queued", "busy"]
        await pool.zrem("k:flying", "j0")  # the worker finished j0
        assert (await outcome(3))[0] == "queued"
        await pool.set("k:hit", b"{}")
        assert (await outcome(4, "k:hit"))[0] == "cached"
        state, seconds = await outcome(5)
        assert state == "rate_limited" and 0 < int(seconds) <= 60
        assert await pool.zrange(pool.default_queue_name, 0, -1) == [b"j0", b"j1", b"j3"]
    finally:
        await queue.close_pools()


def test_the_engine_is_a_setting_and_the_fake_one_serves_through_the_real_worker(services_env, settings_env, db):
    """ML_SERVICE_ENGINE=fake: the real worker process and queue around a fixed-reply engine, for fast
    tests of everything but the model (the real model's tests stay as they are)."""
    import subprocess
    import uuid

    from convassist.services import queue, responses
    from tests.conftest import start_worker

    name = f"convassist:fake-engine:{uuid.uuid4().hex[:8]}"
    settings_env(ML_SERVICE_QUEUE=name)
    worker = start_worker({**services_env, "ML_SERVICE_QUEUE": name, "ML_SERVICE_ENGINE": "fake"})

    async def scenario():
        model = await responses.worker_model()
        answer = await responses.generate_from_prompt(uuid.uuid4(), "Them: Is Friday free?\nMe:", max_tokens=3,
                                                      temperature=0.0)
        await queue.close_pools()
        return model, answer

    try:
        model, answer = asyncio.run(scenario())
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
    assert model.model_id == "fake"
    assert answer.response == "Sounds good, see" and answer.model_version == "fake"


def test_a_number_the_prompt_never_gave_is_flagged_on_its_suggestion():
    """The worker marks the numbers a suggestion states that neither the conversation nor the provider's
    examples give; the cards put grounded suggestions first and say what to check."""
    from convassist.state.conversations import _cards
    from convassist.worker.contracts import GenerateRequest, Suggestion
    from convassist.worker.replies import _generate
    from ml.params import GenerationParams

    def run(reply: str):
        request = GenerateRequest(turns=[["Them", "Can I come at 3pm? Is it still $45?"]], params=GenerationParams())
        return asyncio.run(_generate({"engine": FakeEngine(reply), "redis": None, "job_id": "t"}, request))

    made_up = run("Sure, 3pm works, it's $60 now and 10:30 tomorrow")
    assert made_up.suggestions[0].unsupported_numbers == ["$60", "10:30"]  # as written, in order
    grounded = run("Yes! 3pm and $45.00 as always")
    assert grounded.suggestions[0].unsupported_numbers == []

    cards = _cards([Suggestion(text="See you at 10pm", confidence=0.9, unsupported_numbers=["10"]),
                    Suggestion(text="See you at 3", confidence=0.2),
                    Suggestion(text="See you then", confidence=0.5)])
    assert [c["text"] for c in cards] == ["See you then", "See you at 3", "See you at 10pm"]
    assert [c["at"] for c in cards] == [2, 1, 0]  # a verdict still names the suggestion's own place
    assert cards[2]["check"] == "Check 10: not in this conversation or your past replies." and cards[0]["check"] == ""
    # a reply that says one word over and over goes last, however confident
    cards = _cards([Suggestion(text="Hey hey hey! Hey hey hey!", confidence=0.9),
                    Suggestion(text="See you at 10pm", confidence=0.2, unsupported_numbers=["10"]),
                    Suggestion(text="Pickup is by 5pm!", confidence=0.5)])
    assert [c["text"] for c in cards] == ["Pickup is by 5pm!", "See you at 10pm", "Hey hey hey! Hey hey hey!"]


def test_a_job_whose_generation_fails_unexpectedly_still_answers_and_releases_its_keys(redis_server):
    """Whatever the engine raises, the job ends with a generation_failed answer on its stream (the waiting
    caller answers at once, not at its timeout), its claim and in-flight entry are released, and the log
    names the error's type only."""
    import logging

    import redis.asyncio as aioredis

    from convassist.worker.contracts import GenerateRequest
    from convassist.worker.replies import generate_reply
    from ml.params import GenerationParams

    class Broken(FakeEngine):
        def generate_many(self, *args, **kwargs):
            raise ValueError("prompt of 9999 tokens: Them: my secret message")

    async def scenario():
        redis = aioredis.from_url(redis_server.url)
        await redis.set(keys.claim_key("k"), "job-x")
        await redis.zadd("inflight-test", {"job-x": 1})
        request = GenerateRequest(turns=[["Them", "my secret message"]], params=GenerationParams(), cache_key="k",
                                  in_flight_key="inflight-test")
        result = await generate_reply({"redis": redis, "job_id": "job-x", "engine": Broken(), "worker_id": "w",
                                       "settings": worker_main.get_settings()},
                                      request.model_dump(mode="json", by_alias=True))
        entries = await redis.xrange(keys.stream_key("job-x"))
        left = (await redis.exists(keys.claim_key("k")), await redis.zcard("inflight-test"))
        # a job that ends after its claim expired and a newer job took it leaves the newer job's claim alone
        await redis.set(keys.claim_key("k2"), "job-newer")
        await generate_reply({"redis": redis, "job_id": "job-older", "engine": Broken(), "worker_id": "w",
                              "settings": worker_main.get_settings()},
                             request.model_copy(update={"cache_key": "k2"}).model_dump(mode="json", by_alias=True))
        assert await redis.get(keys.claim_key("k2")) == b"job-newer"
        await redis.aclose()
        return result, entries, left

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("convassist.worker.replies").addHandler(handler)
    try:
        result, entries, left = asyncio.run(scenario())
    finally:
        logging.getLogger("convassist.worker.replies").removeHandler(handler)
    assert result["error"] == "generation_failed"
    done = [e for _, e in entries if b"done" in e]
    assert done and json.loads(done[0][b"result"])["error"] == "generation_failed"
    assert left == (0, 0)
    logged = " ".join(r.getMessage() for r in records)
    assert "ValueError" in logged and "secret" not in logged


def test_the_sweep_fails_only_training_jobs_nothing_will_finish(db, redis_server, settings_env):
    """worker.main.sweep_lost_jobs, on real PostgreSQL and Redis: a job training with its trainer's key
    (a live worker refreshes it) and a job queued with its arq job stay; one training without the key (its
    worker was killed), and one queued for minutes whose arq job Redis lost, are failed, each with its
    reason; a job queued a moment ago (its arq job on the way) stays."""
    from datetime import timedelta

    import redis.asyncio as aioredis
    from arq.constants import job_key_prefix

    from convassist.db import session_scope
    from convassist.models import TrainingJob, utcnow
    from convassist.services import training
    from convassist.settings import get_settings
    from tests.services.test_domain_rules import make_provider

    settings_env(ML_SERVICE_HEARTBEAT_SECONDS="1")
    with session_scope() as session:
        owners = [make_provider(session, f"P{i}")[0] for i in range(5)]
    long_ago = utcnow() - timedelta(minutes=5)
    states = [("training", long_ago), ("training", long_ago), ("queued", long_ago), ("queued", long_ago),
              ("queued", utcnow())]
    with session_scope() as session:
        jobs = [TrainingJob(provider_id=owner, base_model="smollm2-135m-instruct", status=status, created_at=created)
                for owner, (status, created) in zip(owners, states)]
        session.add_all(jobs)
        session.flush()
        ids = [str(job.id) for job in jobs]
    running, killed, waiting, dropped, just_queued = ids

    async def scenario():
        redis = aioredis.from_url(redis_server.url)
        await redis.set(keys.trainer_key(running), 1, ex=30)
        await redis.set(f"{job_key_prefix}train:{waiting}", b"job", ex=30)
        failed = await worker_main.sweep_lost_jobs({"redis": redis, "settings": get_settings()})
        await redis.aclose()
        return failed

    assert asyncio.run(scenario()) == 2
    with session_scope() as session:
        found = {str(j.id): j for j in session.query(TrainingJob).where(TrainingJob.id.in_(ids))}
        assert [found[i].status for i in ids] == ["training", "failed", "queued", "failed", "queued"]
        assert found[killed].error == training.LOST["training"] and found[dropped].error == training.LOST["queued"]


def test_reply_text_streamed_after_its_stream_expired_expires_again(redis_server):
    """A generation arq gave up on (timed out) goes on writing on the model thread: each write sets the
    stream's expiry again, so no reply text stays in Redis for good."""
    import redis.asyncio as aioredis

    from convassist.worker.replies import STREAM_TTL, stream_text

    async def scenario():
        redis = aioredis.from_url(redis_server.url)
        await redis.delete("convassist:stream:late")  # expired already
        await stream_text(redis, "convassist:stream:late", "Sure, see you")
        ttl = await redis.ttl("convassist:stream:late")
        await redis.aclose()
        return ttl

    assert 0 < asyncio.run(scenario()) <= STREAM_TTL


@pytest.mark.asyncio
async def test_a_job_whose_worker_is_gone_gives_back_the_budget_it_was_counted_in(db, settings_env):
    """A suggestion computed ahead counts in the provider's ahead budget (one at a time): when its worker is
    gone, that budget's place is given back (before, the provider's other budget was, and ahead work for them
    stalled until the place expired)."""
    from convassist.services import queue, responses

    settings_env(ML_SERVICE_QUEUE="queue-nobody-serves")  # no worker: the job's worker is gone
    provider = uuid.uuid4()
    ahead, clicks = (keys.in_flight_jobs_key(responses._owner(provider, flag)) for flag in (True, False))
    pool = await queue.get_pool()
    try:
        await pool.set(keys.claim_key("k-ahead"), "gen:gone")
        await pool.zadd(ahead, {"gen:gone": 1})
        await pool.zadd(clicks, {"gen:other": 1})
        outcome = await responses._job_outcome("gen:gone", "k-ahead", ahead)
        assert outcome.error == "worker_unavailable"
        assert await pool.zcard(ahead) == 0 and await pool.zcard(clicks) == 1
        assert await pool.exists(keys.claim_key("k-ahead")) == 0
    finally:
        await queue.close_pools()


@pytest.mark.asyncio
async def test_suggestions_nobody_waits_for_are_settled_by_the_sweep(db, settings_env):
    """A row still `generating` whose waiter is gone (its app process died; a worker stopped while computing
    suggestions ahead, which nobody polls): the sweep completes it from its job's result, so the page shows
    the suggestions; one whose job left nothing is failed; a fresh one is left to its waiter."""
    from datetime import timedelta

    from convassist.db import session_scope
    from convassist.models import GeneratedResponse, utcnow
    from convassist.services import queue, responses
    from convassist.worker.contracts import GenerateResult, Suggestion, dump
    from tests.services.test_domain_rules import make_provider

    with session_scope() as session:
        provider_id, message_id = make_provider(session, "Settle")
    old, now = utcnow() - timedelta(minutes=10), utcnow()
    ids = {}
    with session_scope() as session:
        for name, created in (("done", old), ("nothing", old), ("fresh", now)):
            row = GeneratedResponse(provider_id=provider_id, message_id=message_id, prompt="Them: hi\nMe:",
                                    params={}, job_id=f"gen:{name}-{uuid.uuid4().hex[:6]}", status="generating",
                                    created_at=created)
            session.add(row)
            session.flush()
            ids[name] = (row.id, row.job_id)
    result = GenerateResult(response="Yes, Friday works!", confidence=0.8, model_version="m", prompt="Them: hi\nMe:",
                            tokens=5, generation_ms=10.0,
                            suggestions=[Suggestion(text="Yes, Friday works!", confidence=0.8)])
    pool = await queue.get_pool()
    try:
        await pool.xadd(keys.stream_key(ids["done"][1]), {"done": "1", "result": json.dumps(dump(result))})
        assert await responses.settle_abandoned() == 2
    finally:
        await queue.close_pools()
    with session_scope() as session:
        rows = {name: session.get(GeneratedResponse, ids[name][0]) for name in ids}
        latest = responses.latest_for_message(session, provider_id, message_id)
    assert rows["done"].status == "completed" and rows["done"].suggestions[0]["text"] == "Yes, Friday works!"
    assert rows["nothing"].status == "failed" and rows["fresh"].status == "generating"
    assert latest is not None and latest.response == "Yes, Friday works!"  # what the conversation shows


def test_a_redis_blip_as_a_job_ends_does_not_lose_its_reply(redis_server, monkeypatch):
    """Redis refuses the job's last writes once (restarting): they are tried again, so the reply reaches the
    caller waiting on the stream instead of it waiting out its timeout."""
    import redis.asyncio as aioredis

    from convassist.worker.contracts import GenerateRequest
    from convassist.worker.replies import generate_reply
    from ml.params import GenerationParams

    executes = []
    real = aioredis.client.Pipeline.execute

    async def blip(self, *args, **kwargs):
        executes.append(1)
        if len(executes) == 2:  # the first is the stream's "worker" entry; the second the bookkeeping
            raise redis_py.exceptions.ConnectionError("Redis is restarting")
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(aioredis.client.Pipeline, "execute", blip)

    async def scenario():
        redis = aioredis.from_url(redis_server.url)
        request = GenerateRequest(turns=[["Them", "Is Friday free?"]], params=GenerationParams(), cache_key="k-blip")
        result = await generate_reply({"redis": redis, "job_id": "job-blip", "engine": FakeEngine("Friday works!"),
                                       "worker_id": "w", "settings": worker_main.get_settings()},
                                      request.model_dump(mode="json", by_alias=True))
        entries = await redis.xrange(keys.stream_key("job-blip"))
        await redis.aclose()
        return result, entries

    result, entries = asyncio.run(scenario())
    assert result["response"] == "Friday works!" and len(executes) >= 3
    done = [e for _, e in entries if b"done" in e]
    assert done and json.loads(done[0][b"result"])["response"] == "Friday works!"


def test_a_dead_job_left_in_the_queue_does_not_hold_back_suggestions_ahead(redis_server):
    """The ahead loop waits while the replies queue holds work someone may wait for; a job whose worker was
    killed stays in arq's queue for minutes, but its job key has expired with its claim: it does not count."""
    import redis.asyncio as aioredis
    from arq.constants import job_key_prefix

    from convassist.worker.ahead import busy

    async def scenario():
        redis = aioredis.from_url(redis_server.url)
        await redis.delete("q-ahead")
        empty = await busy(redis, "q-ahead")
        await redis.zadd("q-ahead", {"gen:dead": 1})  # its job key is gone
        dead_only = await busy(redis, "q-ahead")
        await redis.zadd("q-ahead", {"gen:live": 2})
        await redis.set(job_key_prefix + "gen:live", b"job", ex=30)
        live = await busy(redis, "q-ahead")
        await redis.aclose()
        return empty, dead_only, live

    assert asyncio.run(scenario()) == (False, False, True)
