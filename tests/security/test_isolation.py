"""One provider can never reach another's data: every operation that names a resource (found in the
OpenAPI schema, so a new route cannot be forgotten) is tried by a second provider and by that
provider's Mac with the first provider's ids; every list is read by the second provider; and the
reply cache never answers one provider with another's result."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from convassist.models import TrainingJob
from tests.api.conftest import batch, message
from tests.security.conftest import pair, secret_text

pytestmark = pytest.mark.usefixtures("worker_process")

# Each operation that takes an id (in its path or body) → how the attacker fills it with the victim's ids.
ATTACKS = {
    ("GET", "/api/conversations/{conversation_id}"): lambda v: ({"conversation_id": v["conversation"]}, None),
    ("POST", "/api/conversations/{conversation_id}/handled"): lambda v: ({"conversation_id": v["conversation"]},
                                                                         None),
    ("GET", "/api/responses/{response_id}"): lambda v: ({"response_id": v["response"]}, None),
    ("POST", "/api/responses/{response_id}/action"): lambda v: (
        {"response_id": v["response"]}, {"action": "edit", "editedResponse": "hijacked"}),
    ("POST", "/api/responses/generate"): lambda v: ({}, {"messageId": v["message"]}),
    ("GET", "/api/ml/jobs/{job_id}"): lambda v: ({"job_id": v["ml_job"]}, None),
    ("DELETE", "/api/devices/{device_id}"): lambda v: ({"device_id": v["device"]}, None),
    ("DELETE", "/api/training/samples/{sample_id}"): lambda v: ({"sample_id": v["sample"]}, None),
    ("GET", "/api/training/jobs/{job_id}"): lambda v: ({"job_id": v["training_job"]}, None),
    ("POST", "/api/training/adapters/active"): lambda v: ({}, {"jobId": v["training_job"]}),
}


# Operations whose "...Id" fields are not another provider's resources, and why.
NOT_A_PROVIDERS_RESOURCE = {
    ("POST", "/api/devices/register"): "hardwareId names the calling Mac itself",
    ("POST", "/api/devices/verify"): "deviceId and code are the pairing credential (tests/security/test_pairing.py)",
    ("POST", "/api/sync/messages"): "conversationId is the Mac's chat id, stored under the Mac's owner "
                                    "(tests/api/test_sync.py::test_devices_write_only_into_their_own_provider)",
}


def _resolve(schema: dict, spec: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def operations_naming_a_resource(spec: dict) -> set[tuple[str, str]]:
    """Operations with a path parameter, or a request body field that is an id of something."""
    found = set()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            fields = _resolve(body, spec).get("properties", {}) if body else {}
            if "{" in path or any(name.endswith("Id") or name.endswith("_id") for name in fields):
                found.add((method.upper(), "/api" + path if not path.startswith("/api") else path))
    return found


@pytest.fixture
def victim(api, make_provider, db):
    """Ana with a Mac, a conversation whose text is secret, a suggestion, a sample, jobs."""
    ana = make_provider("Ana")
    mac = pair(api, ana)
    texts = [secret_text("victim-q"), secret_text("victim-a"), secret_text("victim-q2")]
    chat = batch(messages=[message("v1", texts[0], sent="2026-11-01T10:00:00Z"),
                           message("v2", texts[1], direction="outgoing", sent="2026-11-01T10:01:00Z"),
                           message("v3", texts[2], sent="2026-11-01T10:02:00Z")])
    assert mac.sync(chat).status_code == 200
    conversation = ana.get("/api/conversations").json()["items"][0]["id"]
    detail = ana.get(f"/api/conversations/{conversation}").json()
    message_id = detail["messages"][-1]["id"]
    response = ana.post("/api/responses/generate", json={"messageId": message_id})
    assert response.status_code == 200, response.text
    sample = ana.post("/api/training/samples", json={"inputContext": f"Them: {texts[0]}\nMe:",
                                                     "expectedOutput": texts[1]})
    assert sample.status_code == 201, sample.text
    ml_job = ana.post("/api/ml/generate/async", json={"prompt": f"Them: {texts[2]}\nMe:", "max_tokens": 8})
    assert ml_job.status_code == 202, ml_job.text
    with db.begin() as conn:  # a finished job, without spending minutes of CPU on training it
        training_job = uuid.uuid4()
        conn.execute(sa.insert(TrainingJob).values(
            id=training_job, provider_id=uuid.UUID(ana.id), base_model="smollm2-135m-instruct", status="completed",
            progress=100.0, epochs=1, learning_rate=1e-3, lora_rank=8, eval_fraction=0.2, sample_count=8,
            metrics={}, is_active=False))
    return {"provider": ana, "mac": mac, "texts": texts, "conversation": conversation, "message": message_id,
            "response": response.json()["responseId"], "sample": sample.json()["id"],
            "ml_job": ml_job.json()["job_id"], "device": mac.id, "training_job": str(training_job)}


def test_every_operation_naming_a_resource_is_attacked(api):
    found = operations_naming_a_resource(api.get("/api/openapi.json").json())
    assert found == set(ATTACKS) | set(NOT_A_PROVIDERS_RESOURCE)


def test_another_provider_and_its_mac_reach_nothing_of_the_victims(api, victim, make_provider):
    bo = make_provider("Bo")
    bo_mac = pair(api, bo, "Bo's Mac")
    leaked_ids = {victim[k] for k in ("conversation", "message", "response", "sample", "ml_job", "training_job")}
    for (method, path), fill in ATTACKS.items():
        params, body = fill(victim)
        url = path.format(**params)
        # Bo learns nothing, not even that it exists (404, as for an id nobody has); his Mac's token
        # is not a provider's token at all (401)
        for who, headers, expected in (("Bo", bo.headers, 404), ("Bo's Mac", bo_mac.headers, 401)):
            answer = api.request(method, url, json=body, headers=headers)
            assert answer.status_code == expected, f"{who}: {method} {url} → {answer.status_code} {answer.text}"
            assert answer.json()["error"], answer.text
            for text in victim["texts"]:
                assert text not in answer.text

    # every list Bo can read is free of Ana's ids and text
    spec = api.get("/api/openapi.json").json()
    lists = [p for p, ops in spec["paths"].items() if "get" in ops and "{" not in p and "health" not in p]
    for path in lists:
        url = path if path.startswith("/api") else "/api" + path
        answer = api.get(url, headers=bo.headers)
        assert answer.status_code == 200, f"{url}: {answer.text}"
        assert not any(i in answer.text for i in leaked_ids | set(victim["texts"])), url

    # and Ana's data is as it was
    ana = victim["provider"]
    assert [d["active"] for d in ana.get("/api/devices").json()] == [True]
    assert ana.get(f"/api/responses/{victim['response']}").json()["status"] == "completed"
    assert ana.get("/api/training/samples").json()["total"] == 1
    stored = {m["text"] for m in ana.get(f"/api/conversations/{victim['conversation']}").json()["messages"]}
    assert stored == set(victim["texts"])


def test_the_same_text_never_serves_another_providers_cached_reply(api, make_provider):
    """Bo syncs exactly Ana's conversation: his first suggestion is generated for him, not Ana's cache."""
    ana, bo = make_provider("Ana"), make_provider("Bo")
    same = batch(messages=[message("c1", "Do you have time on Friday at noon?")])
    ids = {}
    for who in (ana, bo):
        assert pair(api, who).sync(same).status_code == 200
        conversation = who.get("/api/conversations").json()["items"][0]["id"]
        ids[who.id] = who.get(f"/api/conversations/{conversation}").json()["messages"][0]["id"]
    first = ana.post("/api/responses/generate", json={"messageId": ids[ana.id]}).json()
    assert first["cached"] is False
    assert ana.post("/api/responses/generate", json={"messageId": ids[ana.id]}).json()["cached"] is True
    theirs = bo.post("/api/responses/generate", json={"messageId": ids[bo.id]}).json()
    assert theirs["status"] == "completed" and theirs["cached"] is False
    assert bo.post("/api/responses/generate", json={"messageId": ids[bo.id]}).json()["cached"] is True

    # the seed's raw prompt endpoint too
    prompt = {"prompt": "Them: Is parking free?\nMe:", "max_tokens": 8, "temperature": 0}
    assert ana.post("/api/ml/generate", json=prompt).json()["cached"] is False
    assert ana.post("/api/ml/generate", json=prompt).json()["cached"] is True
    assert bo.post("/api/ml/generate", json=prompt).json()["cached"] is False
