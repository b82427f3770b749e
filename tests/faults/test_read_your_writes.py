"""A client that gets an answer to a write and asks again at once sees what it wrote.

A request's transaction commits before its response leaves. It did not: FastAPI ends a yield
dependency after the response is sent unless told otherwise, so on a busy machine a Mac that had just
registered, and the provider approving its code a moment later, were told "No Mac is waiting with this
code" (a UI test's pairing helper failed that way in about one CI run in three). Here the database is
made slow to commit, through a real HTTP server, so that ordering shows every time."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest
import uvicorn
from sqlmodel import Session

from tests.api.conftest import batch, message
from tests.conftest import free_port

COMMIT_DELAY = 0.3  # seconds: a database under load


@pytest.fixture
def slow_commit_api(db, monkeypatch):
    from convassist.api import create_api

    commit = Session.commit

    def slow_commit(self):
        time.sleep(COMMIT_DELAY)
        commit(self)

    monkeypatch.setattr(Session, "commit", slow_commit)
    server = uvicorn.Server(uvicorn.Config(create_api(), port=free_port(), log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    with httpx.Client(base_url=f"http://127.0.0.1:{server.config.port}", timeout=30) as client:
        yield client
    server.should_exit = True
    thread.join(timeout=10)


def test_every_write_is_committed_before_its_answer_is_sent(slow_commit_api):
    api = slow_commit_api
    email = f"ryw-{uuid.uuid4().hex[:8]}@example.com"
    signup = api.post("/api/auth/signup", json={"email": email, "password": "correct horse", "name": "Ana"})
    assert signup.status_code == 201, signup.text
    provider = {"Authorization": f"Bearer {signup.json()['token']}"}
    assert api.get("/api/auth/me", headers=provider).status_code == 200  # the new token works at once

    reg = api.post("/api/devices/register", json={"name": "Mac", "hardwareId": f"HW-{uuid.uuid4()}"}).json()
    approved = api.post("/api/devices/approve", json={"code": reg["code"]}, headers=provider)
    assert approved.status_code == 200, approved.text
    verified = api.post("/api/devices/verify", json={"deviceId": reg["deviceId"], "code": reg["code"]})
    assert verified.status_code == 200, verified.text
    mac = {"Authorization": f"Bearer {verified.json()['token']}"}

    for n in range(1, 4):
        synced = api.post("/api/sync/messages", headers=mac,
                          json=batch(messages=[message(f"ryw-{n}", f"message {n}", sent=f"2026-11-01T10:0{n}:00Z")]))
        assert synced.status_code == 200, synced.text
        assert api.get("/api/conversations", headers=provider).json()["items"][0]["messageCount"] == n
