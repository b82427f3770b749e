"""Redis restarted under a running API and worker (stop, a pause, start on the same address): calls
that need it answer 503 within 2 s, and everything recovers without restarting the app or the
worker."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid

import httpx
import pytest

from devstack.redis import RedisServer
from tests.conftest import ApiServer, start_worker

PAUSE = 10  # seconds Redis stays down, as when ops restart it


@pytest.fixture
def own_redis(tmp_path, services_env, db):
    """A Redis of this test's own (stopping it disturbs no other test), an API server and a worker on it."""
    server = RedisServer(tmp_path / "redis", persist=False)
    server.start()
    server.wait_ready()
    env = {**services_env, "REDIS_URL": server.url, "ML_SERVICE_QUEUE": f"convassist:redis-fault:{uuid.uuid4().hex}",
           "ML_SERVICE_HEARTBEAT_SECONDS": "1"}
    worker = start_worker(env)
    api = ApiServer(env)
    api.start()
    yield server, api, worker, env
    api.stop()
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
    server.stop()


def suggest(api: httpx.Client, headers: dict, text: str) -> httpx.Response:
    return api.post("/api/ml/generate", json={"prompt": f"Them: {text}\nMe:", "max_tokens": 8}, headers=headers)


def test_redis_restarted_under_the_api_and_the_worker(own_redis):
    server, api_server, worker, env = own_redis
    api = httpx.Client(base_url=api_server.url, timeout=30)
    token = api.post("/api/auth/signup", json={"email": f"r-{uuid.uuid4().hex[:6]}@example.com",
                                               "password": "correct horse", "name": "Ana"}).json()["token"]
    ana = {"Authorization": f"Bearer {token}"}
    assert suggest(api, ana, "Are you open today?").status_code == 200

    # a suggestion being written when Redis stops: its caller gets a clear 503, not a hang or a 500
    from concurrent.futures import ThreadPoolExecutor
    long_prompt = "Them: " + " ".join(f"question{i}" for i in range(300)) + "\nMe:"
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(api.post, "/api/ml/generate", json={"prompt": long_prompt, "max_tokens": 8},
                                headers=ana)
        time.sleep(0.5)  # queued and started
        port = server.port
        server.stop()
        started = time.monotonic()
        cut = in_flight.result(timeout=30)
    assert cut.status_code == 503 and cut.json()["error"] == "queue_unavailable", cut.text
    assert time.monotonic() - started < 2, "a call cut off from Redis must end fast"
    down = suggest(api, ana, "Are you open tomorrow?")
    assert time.monotonic() - started < 2, "a call that needs Redis must fail fast"
    assert down.status_code == 503 and down.json()["error"] == "queue_unavailable", down.text
    assert api.get("/api/health").json() == {"status": "degraded"}
    time.sleep(PAUSE)

    server.start(port)
    server.wait_ready()
    back_at = time.monotonic()
    while (again := suggest(api, ana, "Is parking free?")).status_code != 200:
        assert time.monotonic() - back_at < 30, again.text
        time.sleep(0.5)
    recovered = time.monotonic() - back_at
    print(f"suggestions served again {recovered:.1f} s after Redis was back")
    assert worker.poll() is None, "the worker died with Redis instead of reconnecting"
    assert api.get("/api/health").json() == {"status": "ok"}
