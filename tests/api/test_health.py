"""GET /api/health (public: a status only) and /api/health/details (a provider or the ops token), against
the real services and the real worker with the SmolLM2 model."""

import redis

OPS_TOKEN = "ops-" + "o" * 40


def test_details_all_ok_with_worker_and_model(api, worker_process, provider):
    response = provider.get("/api/health/details")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert body["database"] == {"status": "ok", "backend": "postgresql+psycopg"}
    assert body["redis"]["status"] == "ok"
    assert body["worker"]["status"] == "ok" and body["worker"]["roundTripMs"] > 0
    [worker] = body["workers"]
    assert worker["pid"] == worker_process.pid and worker["loaded"] is True and worker["threads"] >= 1
    model = body["model"]
    assert model["status"] == "ok" and model["loaded"] is True
    assert model["id"] == "smollm2-135m-instruct"
    # the shipped Q4_1 file's Q8_0 copy (ml/quantize.py), converted once into the data directory
    assert "SmolLM2-135M-Instruct.Q4_1.Q8_0." in model["path"] and model["path"].endswith(".gguf")
    assert isinstance(model["gpuAvailable"], bool)
    assert body["cache"] == {"status": "ok", "ttlSeconds": 3600}


def test_public_health_says_only_the_status_and_queues_no_job(api, worker_process, redis_server):
    client = redis.Redis.from_url(redis_server.url)
    queued_before = client.zcard("convassist:test-queue")
    response = api.get("/api/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert "path" not in response.text and "model" not in response.text
    assert client.zcard("convassist:test-queue") == queued_before and not list(client.scan_iter("arq:job:*"))
    client.close()


def test_details_need_a_provider_or_the_ops_token(api, worker_process, settings_env):
    assert api.get("/api/health/details").status_code == 401
    wrong = api.get("/api/health/details", headers={"Authorization": "Bearer " + "x" * 44})
    assert wrong.status_code == 401
    settings_env(CONVASSIST_OPS_TOKEN=OPS_TOKEN)
    ops = api.get("/api/health/details", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
    assert ops.status_code == 200 and ops.json()["model"]["loaded"] is True


def test_details_are_rate_limited_per_provider_not_for_ops(api, worker_process, provider, settings_env):
    """Each details check queues a ping on the replies queue: a provider looping on it put everyone's
    suggestions behind pings. 60 a minute per provider; the ops token's monitoring is not limited."""
    codes = [provider.get("/api/health/details").status_code for _ in range(61)]
    assert codes[:60] == [200] * 60 and codes[-1] == 429
    settings_env(CONVASSIST_OPS_TOKEN=OPS_TOKEN)
    assert api.get("/api/health/details", headers={"Authorization": f"Bearer {OPS_TOKEN}"}).status_code == 200


def test_public_health_is_rate_limited_per_address(api, worker_process):
    codes = [api.get("/api/health").status_code for _ in range(62)]
    assert codes[:60] == [200] * 60 and codes[-1] == 429


def test_health_reports_worker_down_when_no_worker_is_registered(api, worker_process, provider, settings_env):
    settings_env(ML_SERVICE_QUEUE="convassist:queue-nobody-serves")
    public = api.get("/api/health")
    assert public.status_code == 503 and public.json() == {"status": "degraded"}
    body = provider.get("/api/health/details").json()
    assert body["status"] == "degraded"
    assert body["worker"] == {"status": "down", "count": 0} and body["workers"] == []
    assert body["model"]["status"] == "unknown"


def test_health_reports_redis_down_quickly(api, settings_env):
    import time

    from devstack.ports import free_port

    settings_env(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    response = api.get("/api/health")
    assert time.monotonic() - started < 3
    assert response.status_code == 503 and response.json() == {"status": "degraded"}
