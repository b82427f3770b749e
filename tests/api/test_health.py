"""GET /api/health against the real services and the real worker with the SmolLM2 model."""

import redis


def test_health_all_ok_with_worker_and_model(api, worker_process):
    response = api.get("/api/health")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert body["database"] == {"status": "ok", "backend": "postgresql+psycopg"}
    assert body["redis"]["status"] == "ok"
    assert body["worker"]["status"] == "ok" and body["worker"]["roundTripMs"] > 0
    model = body["model"]
    assert model["status"] == "ok" and model["loaded"] is True
    assert model["id"] == "smollm2-135m-instruct"
    assert model["path"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert model["gpuAvailable"] in (True, False)
    assert body["cache"] == {"status": "ok", "ttlSeconds": 3600}


def test_health_reports_worker_down_when_its_liveness_key_is_gone(api, worker_process, redis_server):
    client = redis.Redis.from_url(redis_server.url)
    key = "convassist:test-queue:health-check"
    saved, ttl = client.get(key), client.pttl(key)
    client.delete(key)
    try:
        body = api.get("/api/health").json()
        assert body["status"] == "degraded"
        assert body["worker"]["status"] == "down"
        assert body["model"]["status"] == "unknown"
    finally:
        if saved is not None:
            client.set(key, saved, px=max(ttl, 1000))
        client.close()


def test_health_reports_redis_down_quickly(api, settings_env):
    import time

    from devstack.ports import free_port

    settings_env(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    response = api.get("/api/health")
    assert time.monotonic() - started < 3
    body = response.json()
    assert response.status_code == 503
    assert body["redis"]["status"] == "down" and body["database"]["status"] == "ok"
