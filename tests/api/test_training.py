"""Training through the API with the real worker: samples, jobs, adapters, failures."""

import json
import time
import uuid
from pathlib import Path

import pytest

from tests.api.conftest import batch, message
from tests.fixtures.voice_samples import SIGN_OFF, samples

pytestmark = pytest.mark.usefixtures("worker_process")


def add_samples(provider, n=None):
    for prompt, reply in samples()[:n]:
        assert provider.post("/api/training/samples", json={"inputContext": prompt, "expectedOutput": reply}
                             ).status_code == 201


def wait_job(provider, job_id, *, until=("completed", "failed"), timeout=240):
    deadline = time.monotonic() + timeout
    while True:
        job = provider.get(f"/api/training/jobs/{job_id}").json()
        if job["status"] in until:
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.5)


def test_samples_crud_filters_and_export(provider, make_provider):
    add_samples(provider, 3)
    listed = provider.get("/api/training/samples").json()
    assert listed["total"] == 3 and {s["source"] for s in listed["items"]} == {"manual"}
    assert all(s["quality"] == 1.0 for s in listed["items"])
    assert provider.get("/api/training/samples", params={"source": "edited"}).json()["total"] == 0
    assert provider.get("/api/training/samples", params={"minQuality": 0.5, "limit": 2}).json()["total"] == 3
    assert len(provider.get("/api/training/samples", params={"limit": 2}).json()["items"]) == 2

    export = provider.get("/api/training/samples/export")
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert len(lines) == 3 and set(lines[0]) == {"input", "output", "quality"}
    assert lines[0]["output"].endswith(SIGN_OFF)

    other = make_provider("Bo")
    victim = listed["items"][0]["id"]
    assert other.delete(f"/api/training/samples/{victim}").status_code == 404
    assert other.get("/api/training/samples/export").text == ""
    assert provider.delete(f"/api/training/samples/{victim}").status_code == 204
    assert provider.get("/api/training/samples").json()["total"] == 2
    assert provider.post("/api/training/samples", json={"inputContext": " ", "expectedOutput": "x"}
                         ).json()["error"] == "empty_sample"


def test_job_validation(provider):
    job = {"baseModel": "smollm2-135m-instruct", "epochs": 3, "learningRate": 0.001}
    few = provider.post("/api/training/jobs", json=job)
    assert few.status_code == 422 and few.json()["error"] == "not_enough_samples"
    assert "at least 8" in few.json()["message"]
    bad = provider.post("/api/training/jobs", json={**job, "epochs": 0})
    assert bad.status_code == 422 and "epochs" in bad.json()["message"]
    bad = provider.post("/api/training/jobs", json={**job, "learningRate": -1})
    assert bad.status_code == 422 and "learningRate" in bad.json()["message"]
    add_samples(provider, 8)
    other = provider.post("/api/training/jobs", json={**job, "baseModel": "mistral-7b"})
    assert other.status_code == 422 and other.json()["error"] == "invalid_base_model"


def test_train_activate_and_roll_back_end_to_end(provider):
    device = provider.pair_device()
    device.sync(batch(messages=[message("q1", "Hello! Do you have any openings on Thursday afternoon?")]))
    conv_id = provider.get("/api/conversations").json()["items"][0]["id"]
    message_id = provider.get(f"/api/conversations/{conv_id}").json()["messages"][0]["id"]
    before = provider.post("/api/responses/generate", json={"messageId": message_id}).json()
    assert "Blue Salon" not in before["response"]

    add_samples(provider)
    created = provider.post("/api/training/jobs", json={"baseModel": "smollm2-135m-instruct", "epochs": 3,
                                                        "learningRate": 0.001})
    assert created.status_code == 202 and created.json()["status"] == "queued"
    job_id = created.json()["jobId"]
    again = provider.post("/api/training/jobs", json={"baseModel": "smollm2-135m-instruct"})
    assert again.status_code == 409 and again.json()["error"] == "training_in_progress"

    # suggestions keep coming while it trains
    running = wait_job(provider, job_id, until=("training", "completed", "failed"))
    assert running["status"] in ("training", "completed")
    # the progress moves from the start: loading the model already counts
    assert running["progress"] > 0 and running["stage"] in ("loading", "learning", "judging", "done"), running
    during = provider.post("/api/responses/generate", json={"messageId": message_id, "temperature": 0.4})
    assert during.status_code == 200

    job = wait_job(provider, job_id)
    assert job["status"] == "completed", job["error"]
    assert job["progress"] == 100 and job["adapterVersion"] == "lora-v1" and job["sampleCount"] == 24
    metrics = job["metrics"]
    assert metrics["evalLoss"][-1] < metrics["evalLoss"][0] and len(metrics["trainLoss"]) == metrics["steps"]
    assert 0 < metrics["exportDivergence"] <= 1.5
    assert job["startedAt"] and job["completedAt"] and job["outputPath"].endswith(".gguf")
    # the eval split chose the epoch, then every sample trained the served adapter; the split's adapter,
    # which the judge scored, is gone
    assert metrics["refit"] is True
    assert sorted(p.name for p in Path(job["outputPath"]).parent.iterdir()) == [f"{job_id}.gguf"]
    # judged before it serves: base vs adapter on the held-out replies, through llama.cpp
    judgement = job["judgement"]
    assert job["stage"] == "done" and judgement["judged"] == metrics["evalSamples"] >= 1
    assert judgement["voiceChrf"] > judgement["baseChrf"] and judgement["verdict"] == "better", judgement
    example = judgement["examples"][0]
    assert example["voice"] and example["base"] and example["truth"] and example["message"]
    assert [j["jobId"] for j in provider.get("/api/training/jobs").json()] == [job_id]

    active = provider.post("/api/training/adapters/active", json={"jobId": job_id}).json()
    assert active["active"] is True
    tuned = provider.post("/api/responses/generate", json={"messageId": message_id}).json()
    assert tuned["modelVersion"] == "smollm2-135m-instruct+lora-v1" and tuned["cached"] is False
    assert "Blue Salon" in tuned["response"], tuned["response"]

    assert provider.post("/api/training/adapters/active", json={"jobId": None}).json() is None
    back = provider.post("/api/responses/generate", json={"messageId": message_id}).json()
    assert back["modelVersion"] == "smollm2-135m-instruct"
    assert back["response"] == before["response"]


def test_a_crash_inside_training_fails_the_job_and_the_worker_keeps_serving(provider, stack_env):
    add_samples(provider, 8)
    # the adapters folder cannot be created: the trainer fails before training
    (stack_env / "adapters").mkdir(exist_ok=True)
    (stack_env / "adapters" / provider.id).write_text("not a folder")
    job_id = provider.post("/api/training/jobs", json={"baseModel": "smollm2-135m-instruct"}).json()["jobId"]
    job = wait_job(provider, job_id)
    assert job["status"] == "failed" and "FileExistsError" in job["error"]
    assert provider.get("/api/health/details").json()["worker"]["status"] == "ok"
    assert provider.post("/api/ml/generate", json={"prompt": "Them: hi\nMe:"}).status_code == 200
    activate = provider.post("/api/training/adapters/active", json={"jobId": job_id})
    assert activate.status_code == 409 and activate.json()["error"] == "adapter_not_ready"
    assert provider.post("/api/training/adapters/active", json={"jobId": str(uuid.uuid4())}).status_code == 404


def test_a_worker_killed_mid_job_leaves_no_job_stuck_in_training(provider, services_env, settings_env):
    """Two workers: starting a third leaves the job training on one of them alone (before, any worker's
    start failed every running job); killing the one that trains it gets the job failed by a survivor within
    seconds, without restarting anything, and its orphaned trainer stops."""
    import os
    import signal

    import redis

    from convassist.keys import trainer_key
    from tests.conftest import start_worker

    queue_name = "convassist:kill-test"
    env = {**services_env, "ML_SERVICE_QUEUE": queue_name, "ML_SERVICE_HEARTBEAT_SECONDS": "1"}
    settings_env(ML_SERVICE_QUEUE=queue_name, ML_SERVICE_HEARTBEAT_SECONDS="1")
    workers = [start_worker(env), start_worker(env)]
    client = redis.Redis.from_url(services_env["REDIS_URL"])
    try:
        add_samples(provider, 8)
        job_id = provider.post("/api/training/jobs", json={"baseModel": "smollm2-135m-instruct"}).json()["jobId"]
        wait_job(provider, job_id, until=("training",))
        trainer = int(client.get(trainer_key(job_id)))
        [survivor] = [w for w in workers if w.pid != trainer]
        workers.append(start_worker(env))
        time.sleep(8)  # more than two sweeps of every worker (each TTL_HEARTBEATS heartbeats of 1 s)
        assert provider.get(f"/api/training/jobs/{job_id}").json()["status"] == "training"

        os.kill(trainer, signal.SIGKILL)
        killed_at = time.monotonic()
        job = wait_job(provider, job_id, until=("failed", "completed"), timeout=30)
        assert job["status"] == "failed" and "worker stopped" in job["error"]
        print(f"failed {time.monotonic() - killed_at:.1f} s after its worker was killed")
        assert survivor.poll() is None
        # the orphaned trainer notices its parent is gone and stops instead of finishing the job
        time.sleep(3)
        assert provider.get(f"/api/training/jobs/{job_id}").json()["status"] == "failed"
    finally:
        client.close()
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=20)
