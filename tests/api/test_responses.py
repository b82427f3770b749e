"""Reply suggestions end to end: API → Redis → the real worker with SmolLM2 → DB and cache."""

import time
import uuid
from datetime import datetime, timedelta, timezone
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from convassist.models import GeneratedResponse, TrainingSample
from convassist.services.examples import shows_examples
from tests.api.conftest import batch, message

pytestmark = pytest.mark.usefixtures("worker_process")


def seed_chat(provider, *, group=False, n=4, texts=None):
    """A conversation of n messages (or of texts), the client's first; ids by guid m0, m1, …"""
    device = provider.pair_device()
    msgs = []
    for i in range(len(texts) if texts else n):
        incoming = i % 2 == 0
        msgs.append(message(f"m{i}", texts[i] if texts else f"{'question' if incoming else 'answer'} {i}",
                            direction="incoming" if incoming else "outgoing",
                            sender="+15551234567" if not group or i % 4 == 0 else "dee@example.com",
                            sent=f"2026-11-01T10:0{i}:00Z"))
    chat = batch(chat="iMessage;+;group" if group else "iMessage;-;+15551234567", isGroup=group,
                 participants=["+15551234567", "dee@example.com"] if group else ["+15551234567"], messages=msgs)
    assert device.sync(chat).status_code == 200
    conv = provider.get("/api/conversations").json()["items"][0]
    detail = provider.get(f"/api/conversations/{conv['id']}").json()
    return device, {m["imessageGuid"]: m["id"] for m in detail["messages"]}


def generate(provider, message_id, **extra):
    return provider.post("/api/responses/generate", json={"messageId": message_id, **extra})


def test_generate_then_repeat_is_a_cache_hit_with_identical_text(provider):
    _, ids = seed_chat(provider)
    first = generate(provider, ids["m2"])
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["status"] == "completed" and body["cached"] is False, body["error"]
    assert body["response"] and 0 <= body["confidence"] <= 1
    assert body["modelVersion"] == "smollm2-135m-instruct"
    first = body["suggestions"][0]
    assert (first["text"], first["confidence"]) == (body["response"], body["confidence"])
    assert all(n in first["text"] for n in first["unsupportedNumbers"])  # numbers the prompt never gave
    again = generate(provider, ids["m2"]).json()
    assert again["cached"] is True and again["response"] == body["response"]
    assert again["responseId"] != body["responseId"]


def test_asked_again_after_a_verdict_brings_other_replies_not_the_cached_set(provider):
    _, ids = seed_chat(provider)
    first = generate(provider, ids["m2"], count=3).json()
    out_of_range = provider.post(f"/api/responses/{first['responseId']}/action",
                                 json={"action": "accept", "suggestionIndex": 7})
    assert out_of_range.status_code == 422 and out_of_range.json()["error"] in ("validation_error",
                                                                              "invalid_suggestion_index")
    used = provider.post(f"/api/responses/{first['responseId']}/action", json={"action": "accept",
                                                                               "suggestionIndex": 0}).json()
    assert used["status"] == "accepted" and used["chosenSuggestion"] == 0
    again = generate(provider, ids["m2"], count=3).json()
    # generated anew, sampled (the browser test shows different texts on a real conversation; this
    # one's "answer N" pattern leaves the model little else to say)
    assert again["status"] == "completed" and again["cached"] is False
    # and a set that got no verdict is still served from the cache
    third = generate(provider, ids["m2"], count=3).json()
    assert third["cached"] is True and third["suggestions"] == again["suggestions"]


def test_prompt_is_the_window_up_to_the_target(provider, db):
    device, ids = seed_chat(provider, n=6)
    # a tapback and an unsent message never reach the prompt
    device.sync(batch(messages=[
        message("t1", "Loved “question 0”", associatedMessageGuid="p:0/m0", associatedMessageType=2000,
                sent="2026-11-01T10:02:30Z"),
        message("m3", None, direction="outgoing", retracted=True, sent="2026-11-01T10:03:00Z")]))
    body = generate(provider, ids["m4"], context={"maxHistory": 3}).json()
    with db.connect() as conn:
        prompt = conn.execute(sa.select(GeneratedResponse.prompt)
                              .where(GeneratedResponse.id == uuid.UUID(body["responseId"]))).scalar_one()
    # the last 3 non-retracted messages up to and including m4, oldest first; m5 is after the target
    assert prompt == "Me: answer 1\nThem: question 2\nThem: question 4\nMe:"


def test_group_chat_prompt_uses_sender_names(provider, db):
    device, ids = seed_chat(provider, group=True)
    device.sync_contacts([{"phoneNumber": "+15551234567", "displayName": "Carla"},
                          {"email": "dee@example.com", "displayName": "Dee"}])
    body = generate(provider, ids["m2"]).json()
    with db.connect() as conn:
        prompt = conn.execute(sa.select(GeneratedResponse.prompt)
                              .where(GeneratedResponse.id == uuid.UUID(body["responseId"]))).scalar_one()
    assert prompt == "Carla: question 0\nMe: answer 1\nDee: question 2\nMe:"


def test_count_gives_up_to_three_distinct_suggestions(provider):
    _, ids = seed_chat(provider, texts=["Hi! Do you have time for a haircut this week?", "I do! Thursday or Friday?",
                                        "Friday afternoon would be perfect. How much is a trim?"])
    one = generate(provider, ids["m2"], count=1, temperature=0.0).json()
    assert len(one["suggestions"]) == 1
    body = generate(provider, ids["m2"], count=3, temperature=0.0).json()
    texts = [s["text"] for s in body["suggestions"]]
    assert 2 <= len(texts) <= 3 and all(texts)  # more than one: count is honoured
    assert texts[0] == one["response"]  # the first is the same greedy reply
    from ml.suggestions import near_duplicate

    for i, text in enumerate(texts):
        assert not near_duplicate(text, texts[:i])


def test_async_generation_then_poll(provider):
    _, ids = seed_chat(provider)
    started = generate(provider, ids["m0"], temperature=0.3, **{"async": True})
    assert started.status_code == 202 and started.json()["status"] == "generating"
    response_id = started.json()["responseId"]
    deadline = time.monotonic() + 30
    while True:
        current = provider.get(f"/api/responses/{response_id}").json()
        if current["status"] != "generating" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert current["status"] == "completed" and current["response"]


def test_the_same_request_in_flight_is_generated_once(provider):
    """Two identical requests at once (background: both return while the job runs) share one job."""
    _, ids = seed_chat(provider)
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda _: generate(provider, ids["m2"], temperature=0.55, **{"async": True}).json(),
                        range(2))
    assert a["status"] == b["status"] == "generating"  # neither was a cache hit
    assert a["streamKey"] == b["streamKey"] and a["responseId"] != b["responseId"]  # one job, two responses


def test_actions_make_the_right_training_samples(provider, db):
    _, ids = seed_chat(provider)
    accept = generate(provider, ids["m0"]).json()
    edit = generate(provider, ids["m2"]).json()
    reject = generate(provider, ids["m2"], temperature=0.7).json()

    ok = provider.post(f"/api/responses/{accept['responseId']}/action", json={"action": "accept"})
    assert ok.status_code == 200 and ok.json()["status"] == "accepted"
    assert provider.post(f"/api/responses/{edit['responseId']}/action",
                         json={"action": "edit", "editedResponse": "See you Friday at 3!"}).json()["status"] == "edited"
    rejected = provider.post(f"/api/responses/{reject['responseId']}/action",
                             json={"action": "reject", "reason": "too formal"}).json()
    assert rejected["status"] == "rejected"

    with db.connect() as conn:
        samples = {s.source: s for s in conn.execute(sa.select(TrainingSample)).all()}
        prompts = dict(conn.execute(sa.select(GeneratedResponse.id, GeneratedResponse.prompt)).all())
        reason = conn.execute(sa.select(GeneratedResponse.reject_reason)
                              .where(GeneratedResponse.id == uuid.UUID(reject["responseId"]))).scalar_one()
    assert set(samples) == {"accepted", "edited"}
    assert samples["accepted"].expected_output == accept["response"]
    assert samples["accepted"].quality == pytest.approx(accept["confidence"])
    assert samples["accepted"].input_context == prompts[uuid.UUID(accept["responseId"])]
    assert samples["edited"].expected_output == "See you Friday at 3!" and samples["edited"].quality == 1.0
    assert samples["edited"].input_context == prompts[uuid.UUID(edit["responseId"])]
    assert reason == "too formal"

    twice = provider.post(f"/api/responses/{accept['responseId']}/action", json={"action": "reject"})
    assert twice.status_code == 409 and twice.json()["error"] == "already_actioned"
    empty_edit = provider.post(f"/api/responses/{generate(provider, ids['m0'], temperature=0.2).json()['responseId']}"
                               "/action", json={"action": "edit", "editedResponse": "  "})
    assert empty_edit.status_code == 422


def test_a_response_is_stored_before_it_is_answered_and_one_left_generating_is_completed_by_its_reader(
        provider, db):
    """A synchronous answer's row is already complete when the caller gets it. A row left
    `generating` (its app process died while waiting) is completed by the next reader from the
    job's outcome, or marked failed once no outcome can come; a verdict waits for completion."""
    _, ids = seed_chat(provider)
    body = generate(provider, ids["m2"]).json()
    response_id = uuid.UUID(body["responseId"])

    def row():
        with db.connect() as conn:
            return conn.execute(sa.select(GeneratedResponse).where(GeneratedResponse.id == response_id)).one()

    assert row().status == "completed" and row().response == body["response"]  # no wait: stored first

    def as_if_the_app_died_waiting(**more):
        with db.begin() as conn:
            conn.execute(sa.update(GeneratedResponse).where(GeneratedResponse.id == response_id).values(
                status="generating", response=None, confidence=None, suggestions=[], completed_at=None, **more))

    as_if_the_app_died_waiting()
    refused = provider.post(f"/api/responses/{response_id}/action", json={"action": "accept"})
    assert refused.status_code == 409 and refused.json()["error"] == "not_completed"
    got = provider.get(f"/api/responses/{response_id}").json()
    assert got["status"] == "completed" and got["response"] == body["response"]
    assert got["suggestions"] == body["suggestions"]
    accepted = provider.post(f"/api/responses/{response_id}/action", json={"action": "accept"})
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted", accepted.text

    # a job whose outcome is gone (Redis lost it) and that is older than any wait: failed, not stuck
    as_if_the_app_died_waiting(job_id="gen:gone", created_at=datetime.now(timezone.utc) - timedelta(minutes=10))
    stale = provider.get(f"/api/responses/{response_id}").json()
    assert stale["status"] == "failed" and stale["error"]
    assert row().status == "failed"


def test_responses_are_isolated_between_providers(make_provider):
    ana, bo = make_provider("Ana"), make_provider("Bo")
    _, ids = seed_chat(ana)
    assert generate(bo, ids["m0"]).status_code == 404
    mine = generate(ana, ids["m0"]).json()
    assert bo.get(f"/api/responses/{mine['responseId']}").status_code == 404
    assert bo.post(f"/api/responses/{mine['responseId']}/action", json={"action": "accept"}).status_code == 404


def test_a_disabled_account_cannot_generate_with_its_still_valid_token(provider, db):
    """generate checks the account inside its conversation read (not in the usual dependency)."""
    _, ids = seed_chat(provider)
    assert generate(provider, ids["m0"]).status_code == 200
    with db.begin() as conn:
        conn.execute(sa.text("UPDATE provider SET is_active = false WHERE id = :id"), {"id": provider.id})
    refused = generate(provider, ids["m2"])
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"
    with db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(GeneratedResponse)).scalar_one() == 1
    anonymous = provider.api.post("/api/responses/generate", json={"messageId": ids["m2"]})
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "missing_token"
    forged = provider.api.post("/api/responses/generate", json={"messageId": ids["m2"]},
                               headers={"Authorization": "Bearer not.a.token"})
    assert forged.status_code == 401 and forged.json()["error"] == "invalid_token"


def test_bad_requests(provider):
    _, ids = seed_chat(provider)
    assert generate(provider, ids["m0"], count=4).json()["error"] == "validation_error"
    assert generate(provider, ids["m0"], context={"maxHistory": 0}).status_code == 422
    assert generate(provider, str(uuid.uuid4())).status_code == 404
    assert provider.post("/api/responses/generate", json={"messageId": "nope"}).status_code == 422


def test_worker_down_is_a_clear_503_within_two_seconds(provider, settings_env):
    _, ids = seed_chat(provider)
    settings_env(ML_SERVICE_QUEUE="queue-without-worker")
    started = time.monotonic()
    response = generate(provider, ids["m0"])
    assert time.monotonic() - started < 2
    assert response.status_code == 503 and response.json()["error"] == "worker_unavailable"


def test_seed_ml_endpoints(provider):
    body = provider.post("/api/ml/generate", json={"prompt": "Them: Are you open today?\nMe:", "max_tokens": 20,
                                                   "temperature": 0}).json()
    assert set(body) == {"response", "confidence", "model_version", "cached"} and body["response"]
    again = provider.post("/api/ml/generate", json={"prompt": "Them: Are you open today?\nMe:", "max_tokens": 20,
                                                    "temperature": 0}).json()
    assert again["cached"] is True and again["response"] == body["response"]

    job = provider.post("/api/ml/generate/async", json={"prompt": "Them: Can I bring my dog?\nMe:"})
    assert job.status_code == 202
    job_id = job.json()["job_id"]
    deadline = time.monotonic() + 30
    while (status := provider.get(f"/api/ml/jobs/{job_id}").json())["status"] != "complete":
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    assert status["result"]["response"]
    assert provider.get("/api/ml/jobs/gen:unknown").status_code == 404


def test_cache_can_be_turned_off(provider, settings_env):
    _, ids = seed_chat(provider)
    generate(provider, ids["m2"])
    settings_env(ML_SERVICE_REDIS_ENABLED="false")
    again = generate(provider, ids["m2"]).json()
    assert again["status"] == "completed" and again["cached"] is False
    assert provider.get("/api/health/details").json()["cache"] == {"status": "disabled"}


def test_redis_down_is_a_clear_503_within_two_seconds(provider, settings_env):
    from devstack.ports import free_port

    _, ids = seed_chat(provider)
    settings_env(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    response = generate(provider, ids["m0"])
    assert time.monotonic() - started < 2
    assert response.status_code == 503 and response.json()["error"] == "queue_unavailable"


def test_a_follow_up_reads_only_the_new_message_through_the_worker(provider, db):
    """The worker keeps what it read of a conversation (after the result is on its way), so a suggestion
    after one new message evaluates only that message, even with another conversation in between."""
    import asyncio

    from convassist.services import responses

    texts = [f"{'question' if i % 2 == 0 else 'answer'} {i} about booking a colour on Friday" for i in range(9)]
    device, ids = seed_chat(provider, texts=texts)  # (seed_chat's clock holds 10 messages)
    first = generate(provider, ids["m8"]).json()
    assert device.sync(batch(chat="iMessage;-;+15559998888", participants=["+15559998888"], messages=[
        message("o1", "Is parking free near the salon on Monday?", sender="+15559998888")])).status_code == 200
    other = next(c for c in provider.get("/api/conversations").json()["items"] if c["messageCount"] == 1)
    other_message = provider.get(f"/api/conversations/{other['id']}").json()["messages"][0]["id"]
    generate(provider, other_message)  # the worker reads another conversation in between
    assert device.sync(batch(messages=[
        message("m9", "answer 9: see you then", direction="outgoing", sent="2026-11-01T10:09:00Z"),
        message("m10", "question 10: and is parking free?", sent="2026-11-01T10:10:00Z")])).status_code == 200
    conv = next(c for c in provider.get("/api/conversations").json()["items"] if c["messageCount"] >= 11)
    newest = provider.get(f"/api/conversations/{conv['id']}").json()["messages"][0]["id"]
    follow = generate(provider, newest).json()

    def job(response_id):
        with db.connect() as conn:
            job_id = conn.execute(sa.select(GeneratedResponse.job_id)
                                  .where(GeneratedResponse.id == uuid.UUID(response_id))).scalar_one()
        return asyncio.run(responses.job_result(job_id, timeout=5))

    cold, warm = job(first["responseId"]), job(follow["responseId"])
    assert cold.prompt_evaluated > 60
    assert 0 < warm.prompt_evaluated < cold.prompt_evaluated // 3, (cold.prompt_evaluated, warm.prompt_evaluated)


def test_the_providers_own_past_reply_is_an_example_and_the_model_uses_its_facts(make_provider, db):
    """Day one, no training: Ana once told a client the price; asked again in another conversation,
    the prompt holds that exchange and the suggestion states her price. Mallory, asked the same, never
    gets Ana's exchange."""
    ana, mallory = make_provider("Ana"), make_provider("Mallory")
    past = [message("p0", "Hi! How much is a colour and cut?", sender="+15550000001", sent="2026-10-01T10:00:00Z"),
            message("p1", "A colour and cut is $120. Cheers, Ana", direction="outgoing", sent="2026-10-01T10:05:00Z")]
    now = [message("n0", "Hello, how much would a colour and cut be?", sender="+15550000002",
                   sent="2026-11-01T10:00:00Z")]
    asked = {}
    for who in (ana, mallory):
        device = who.pair_device()
        if who is ana:
            assert device.sync(batch("iMessage;-;+15550000001", past, participants=["+15550000001"])).status_code == 200
        assert device.sync(batch("iMessage;-;+15550000002", now, participants=["+15550000002"])).status_code == 200
        conversation = next(c for c in who.get("/api/conversations").json()["items"]
                            if c["participants"] == ["+15550000002"])
        newest = who.get(f"/api/conversations/{conversation['id']}").json()["messages"][0]["id"]
        body = generate(who, newest).json()
        assert body["status"] == "completed", body
        with db.connect() as conn:
            prompt, params = conn.execute(sa.select(GeneratedResponse.prompt, GeneratedResponse.params)
                                          .where(GeneratedResponse.id == uuid.UUID(body["responseId"]))).one()
        asked[who.email] = (prompt, body["response"], params["examples"], body["responseId"])
    prompt, reply, shown, response_id = asked[ana.email]
    assert prompt == ("Them: Hi! How much is a colour and cut?\nMe: A colour and cut is $120. Cheers, Ana\n"
                      "Them: Hello, how much would a colour and cut be?\nMe:")
    assert "120" in reply, reply  # her price, not one the model made up
    assert shown == 1
    # using it teaches the voice with the prompt as read, or without its example: the half it falls in
    assert ana.post(f"/api/responses/{response_id}/action", json={"action": "accept"}).status_code == 200
    with db.connect() as conn:
        taught = conn.execute(sa.select(TrainingSample.input_context)
                              .where(TrainingSample.response_id == uuid.UUID(response_id))).scalar_one()
    assert taught == (prompt if shows_examples(response_id) else "Them: Hello, how much would a colour and cut be?\nMe:")
    prompt, reply, shown, _ = asked[mallory.email]
    assert prompt == "Them: Hello, how much would a colour and cut be?\nMe:" and shown == 0
    assert "Ana" not in reply and "120" not in reply
