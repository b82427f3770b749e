"""PostgreSQL restarted under a running API: calls answer a clear, retryable 503 while it is down,
the pool reconnects by itself, the agent's next sync succeeds, and nothing committed is lost."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from alembic import command

from devstack.postgres import PostgresCluster
from tests.api.conftest import batch, message
from tests.conftest import ApiServer, alembic_config


@pytest.fixture
def own_database(tmp_path, services_env):
    """A PostgreSQL cluster of this test's own (so stopping it disturbs no other test), migrated, and
    an API server on it."""
    cluster = PostgresCluster(tmp_path / "pg", fast=True)
    cluster.start()
    cluster.wait_ready()
    cluster.create_database("faults")
    url = cluster.url("faults")
    command.upgrade(alembic_config(url), "head")
    server = ApiServer({**services_env, "DATABASE_URL": url})
    server.start()
    yield cluster, server
    server.stop()
    cluster.stop()


def test_postgres_restarted_under_the_api(own_database):
    cluster, server = own_database
    api = httpx.Client(base_url=server.url, timeout=30)
    token = api.post("/api/auth/signup", json={"email": f"db-{uuid.uuid4().hex[:6]}@example.com",
                                               "password": "correct horse", "name": "Ana"}).json()["token"]
    ana = {"Authorization": f"Bearer {token}"}
    reg = api.post("/api/devices/register", json={"name": "Mac", "hardwareId": f"HW-{uuid.uuid4()}",
                                                  "platform": "macos"}).json()
    assert api.post("/api/devices/approve", json={"code": reg["code"]}, headers=ana).status_code == 200
    mac = {"Authorization": "Bearer " + api.post("/api/devices/verify", json={"deviceId": reg["deviceId"],
                                                                               "code": reg["code"]}).json()["token"]}
    first = batch(messages=[message(f"before-{i}", f"message {i}", sent=f"2026-11-01T10:{i:02d}:00Z")
                            for i in range(50)])
    assert api.post("/api/sync/messages", json=first, headers=mac).json()["inserted"] == 50

    port = cluster.port
    cluster.stop()
    started = time.monotonic()
    down = api.post("/api/sync/messages", json=batch(messages=[message("during", "x")]), headers=mac)
    assert time.monotonic() - started < 5
    assert down.status_code == 503 and down.json()["error"] == "database_unavailable", down.text
    assert down.headers["Retry-After"]

    cluster.start(port)  # the same server back on its address: no app restart
    cluster.wait_ready()
    restarted_at = time.monotonic()
    second = batch(messages=[message(f"after-{i}", f"later {i}", sent=f"2026-11-02T10:{i:02d}:00Z")
                             for i in range(20)])
    while (again := api.post("/api/sync/messages", json=second, headers=mac)).status_code == 503:
        assert time.monotonic() - restarted_at < 15, again.text
        time.sleep(0.5)
    assert again.status_code == 200 and again.json()["inserted"] == 20, again.text
    print(f"first sync after the restart succeeded {time.monotonic() - restarted_at:.1f} s after PostgreSQL was up")
    [conversation] = api.get("/api/conversations", headers=ana).json()["items"]
    assert conversation["messageCount"] == 70  # nothing committed was lost, nothing doubled


def test_a_database_host_that_never_answers_is_given_up_on_in_seconds(services_env):
    """A database host gone without a word (crashed, partitioned): the connection is made (the address still
    takes it) but nothing ever answers. The API answers 503 after the connect timeout, not after the minutes
    TCP would take (libpq's default is to wait for good)."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections are taken by the kernel and never answered
        url = f"postgresql://nobody:secret@127.0.0.1:{silent.getsockname()[1]}/convassist"
        server = ApiServer({**services_env, "DATABASE_URL": url})
        server.start()
        try:
            started = time.monotonic()
            answer = httpx.post(server.url + "/api/auth/login", timeout=60,
                                json={"email": "ana@example.com", "password": "correct horse"})
            waited = time.monotonic() - started
        finally:
            server.stop()
    print(f"answered {answer.status_code} after {waited:.1f} s")
    assert answer.status_code == 503 and answer.json()["error"] == "database_unavailable"
    assert waited < 15
