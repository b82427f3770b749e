"""Text a Mac or a client can produce that used to break things: NUL characters and lone UTF-16
surrogates (half an emoji) are stored cleaned instead of failing the batch on every retry; oversized
and malformed inputs are refused with a clear 4xx on every path."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import batch, message
from tests.security.conftest import pair


def raw_json(device, path: str, body: dict, extra: dict[str, str]):
    """body as JSON text with placeholders replaced by escapes a JSON encoder would refuse to write
    (a lone surrogate cannot be encoded as UTF-8, but "\\ud83d" is valid JSON text)."""
    text = json.dumps(body)
    for placeholder, escape in extra.items():
        text = text.replace(placeholder, escape)
    return device.api.post(path, content=text.encode(), headers={**device.headers,
                                                                  "Content-Type": "application/json"})


def test_nul_and_lone_surrogates_are_stored_cleaned_and_the_sync_goes_on(api, make_provider):
    ana = make_provider("Ana")
    mac = pair(api, ana)
    chat = batch(displayName="Book club NUL", messages=[
        message("n1", "before NUL after"), message("n2", "half an emoji SURR here", sent="2026-11-01T10:01:00Z"),
        message("n3", "fine", sent="2026-11-01T10:02:00Z")])
    escapes = {"NUL": "\\u0000", "SURR": "\\ud83d"}
    first = raw_json(mac, "/api/sync/messages", chat, escapes)
    assert first.status_code == 200, first.text
    assert first.json()["inserted"] == 3
    again = raw_json(mac, "/api/sync/messages", chat, escapes)  # the agent's retry: nothing doubles
    assert again.status_code == 200 and again.json()["inserted"] == 0

    conversation = ana.get("/api/conversations").json()["items"][0]
    texts = [m["text"] for m in ana.get(f"/api/conversations/{conversation['id']}").json()["messages"]]
    assert sorted(texts) == sorted(["before  after", "half an emoji \ufffd here", "fine"])
    assert "\x00" not in json.dumps(conversation)

    contacts = raw_json(mac, "/api/sync/contacts", {"contacts": [
        {"phoneNumber": "+15551234567", "displayName": "Jordan NUL Lee SURR"}]}, escapes)
    assert contacts.status_code == 200, contacts.text


def test_oversized_inputs_are_refused_and_nothing_stored_is_lost(api, make_provider):
    ana = make_provider("Ana")
    mac = pair(api, ana)
    assert mac.sync(batch(messages=[message("k1", "keep me")])).status_code == 200
    too_long_name = mac.sync(batch(messages=[message("k2", "x")], displayName="n" * 10_000))
    assert too_long_name.status_code == 422 and too_long_name.json()["error"] == "validation_error"
    huge = ana.get("/api/conversations", params={"q": "s" * 5000})
    assert huge.status_code == 422, huge.text
    long_code = ana.post("/api/devices/approve", json={"code": "1" * 10_000})
    assert long_code.status_code == 422
    sample = ana.post("/api/training/samples", json={"inputContext": "Them: hi\nMe:", "expectedOutput": "y" * 200_000})
    assert sample.status_code == 422
    conversation = ana.get("/api/conversations").json()["items"][0]
    assert [m["text"] for m in ana.get(f"/api/conversations/{conversation['id']}").json()["messages"]] == ["keep me"]


def test_a_database_error_never_carries_the_values_it_was_given(db):
    """A failing statement's error (what a traceback in a log would print) names the statement, not the
    message text or other values bound to it."""
    import sqlalchemy as sa

    with pytest.raises(sa.exc.DBAPIError) as failed, db.begin() as conn:
        conn.execute(sa.text("SELECT CAST(:text AS text), 1 / 0"), {"text": "my secret message to the salon"})
    assert "secret" not in str(failed.value) and "hidden" in str(failed.value)
