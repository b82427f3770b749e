"""One provider cannot starve the others: per-provider generation rate and in-flight limits (429 with
Retry-After, others unaffected), and training waits on its own queue so replies keep flowing."""

from __future__ import annotations

import time
import uuid

import pytest
import sqlalchemy as sa

from convassist.models import TrainingJob
from tests.api.conftest import batch, message
from tests.security.conftest import pair

pytestmark = pytest.mark.usefixtures("worker_process")


def chat_with(provider, api, n: int) -> list[str]:
    """A paired Mac and one conversation of n incoming messages; their ids."""
    mac = pair(api, provider)
    msgs = [message(f"f{i}", f"Question number {i} about my booking?", sent=f"2026-11-01T10:{i:02d}:00Z")
            for i in range(n)]
    assert mac.sync(batch(messages=msgs)).status_code == 200
    conversation = provider.get("/api/conversations").json()["items"][0]["id"]
    return [m["id"] for m in provider.get(f"/api/conversations/{conversation}").json()["messages"]]


def test_generation_rate_is_per_provider(api, make_provider, settings_env):
    settings_env(ML_SERVICE_GENERATIONS_PER_MINUTE="3")
    ana, bo = make_provider("Ana"), make_provider("Bo")
    ids = chat_with(ana, api, 4)
    for message_id in ids[:3]:
        answer = ana.post("/api/responses/generate", json={"messageId": message_id})
        assert answer.status_code == 200, answer.text
    limited = ana.post("/api/responses/generate", json={"messageId": ids[3]})
    assert limited.status_code == 429 and limited.json()["error"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # what is already cached costs nothing; the seed endpoint shares the budget; Bo has his own
    assert ana.post("/api/responses/generate", json={"messageId": ids[0]}).json()["cached"] is True
    assert ana.post("/api/ml/generate", json={"prompt": "Them: hi\nMe:", "max_tokens": 4}).status_code == 429
    assert bo.post("/api/ml/generate", json={"prompt": "Them: hi\nMe:", "max_tokens": 4}).status_code == 200


def test_every_request_counts_against_a_limit_cache_hits_too(api, make_provider, settings_env):
    """A cache hit costs no generation but stores a response row (or an hour's result): asked in a loop, it
    filled the database and the shared Redis. Every request counts against ML_SERVICE_REQUESTS_PER_MINUTE;
    another provider has their own."""
    settings_env(ML_SERVICE_REQUESTS_PER_MINUTE="5")
    ana, bo = make_provider("Ana"), make_provider("Bo")
    [message_id] = chat_with(ana, api, 1)
    answers = [ana.post("/api/responses/generate", json={"messageId": message_id}) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5 and answers[-1].json()["cached"] is True
    limited = ana.post("/api/responses/generate", json={"messageId": message_id})
    assert limited.status_code == 429 and limited.json()["error"] == "rate_limited"
    assert ana.post("/api/ml/generate/async", json={"prompt": "Them: hi\nMe:", "max_tokens": 4}).status_code == 429
    assert bo.post("/api/ml/generate", json={"prompt": "Them: hi\nMe:", "max_tokens": 4}).status_code == 200


def test_generations_in_flight_are_capped_per_provider(api, make_provider, settings_env):
    """Three requests within a few milliseconds: the first is still being generated (≥ 0.2 s) when
    the third arrives."""
    settings_env(ML_SERVICE_MAX_IN_FLIGHT="2")
    ana, bo = make_provider("Ana"), make_provider("Bo")
    answers = [ana.post("/api/ml/generate/async", json={"prompt": f"Them: question {i} {uuid.uuid4()}\nMe:",
                                                       "max_tokens": 64}) for i in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert answers[2].json()["error"] == "too_many_in_flight" and answers[2].headers["Retry-After"]
    assert bo.post("/api/ml/generate/async", json={"prompt": "Them: question 0\nMe:"}).status_code == 202
    deadline = time.monotonic() + 30  # once the worker finished them, Ana may ask again
    while (again := ana.post("/api/ml/generate/async", json={"prompt": "Them: later\nMe:"})).status_code == 429:
        assert time.monotonic() < deadline, again.text
        time.sleep(0.2)
    assert again.status_code == 202


def test_ten_accounts_training_do_not_delay_anyones_suggestions(api, make_provider, db):
    trainers = [make_provider(f"Trainer {i}") for i in range(10)]
    for trainer in trainers:
        for i in range(8):
            assert trainer.post("/api/training/samples", json={
                "inputContext": f"Them: Can I book slot {i}?\nMe:", "expectedOutput": f"Yes, slot {i} works."
            }).status_code == 201
        job = trainer.post("/api/training/jobs", json={"baseModel": "smollm2-135m-instruct", "epochs": 1,
                                                       "loraRank": 1})
        assert job.status_code == 202, job.text
        # one job per account at a time: a second is refused, so no account queues the worker full
        again = trainer.post("/api/training/jobs", json={"baseModel": "smollm2-135m-instruct"})
        assert again.status_code == 409 and again.json()["error"] == "training_in_progress"

    ana = make_provider("Ana")
    ids = chat_with(ana, api, 3)
    timings = []
    for message_id in ids:
        started = time.monotonic()
        answer = ana.post("/api/responses/generate", json={"messageId": message_id})
        timings.append(time.monotonic() - started)
        assert answer.status_code == 200 and answer.json()["status"] == "completed", answer.text
    with db.connect() as conn:
        waiting = conn.execute(sa.select(sa.func.count()).select_from(TrainingJob)
                               .where(TrainingJob.status.in_(["queued", "training"]))).scalar_one()
    print(f"suggestions while 10 jobs wait to train: {[round(t, 2) for t in timings]} s; {waiting} jobs not done")
    assert waiting >= 8  # they were all still there while the suggestions were answered
    assert max(timings) < 15  # the reply timeout is 30 s; a held slot would have made these time out
