"""Sync throughput: 100,000 messages through POST /api/sync/messages in batches of 500, against the
same rows through a plain psycopg upsert into the same schema, in the same run.

Goals: API >= 0.5x the plain upsert, and >= 20,000 messages/s.

Both sides write into their own freshly migrated database of one private PostgreSQL cluster. The API
runs in granian with 2 workers, as under `make run`; the client sends pre-encoded JSON
bodies from 2 threads over keep-alive connections, so client-side encoding is not what is measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devstack.ports import free_port  # noqa: E402
from devstack.postgres import PostgresCluster  # noqa: E402

TOTAL = int(os.environ.get("BENCH_MESSAGES", "100000"))
BATCH = 500
CLIENT_THREADS = int(os.environ.get("BENCH_CLIENTS", "2"))
EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


def make_batches() -> list[dict]:
    batches = []
    for b in range(TOTAL // BATCH):
        handle = f"+1555{b:07d}"
        messages = [{"imessageGuid": f"guid-{b}-{i}", "senderId": handle if i % 2 == 0 else None,
                     "direction": "incoming" if i % 2 == 0 else "outgoing", "messageType": "text",
                     "text": f"Hi! Is {i % 12 + 1}pm still free on Friday for a cut and colour? ({b}/{i})",
                     "sentAt": (EPOCH + timedelta(seconds=b * BATCH + i)).isoformat()}
                    for i in range(BATCH)]
        batches.append({"conversationId": f"iMessage;-;{handle}", "participants": [handle], "isGroup": False,
                        "messages": messages})
    return batches


def migrate(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "alembic"))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "head")


def paired_device(url: str) -> tuple[uuid.UUID, uuid.UUID, str]:
    """A provider and an approved device, written straight through the services; returns a device token."""
    from sqlmodel import Session

    from convassist.db import engine_for
    from convassist.models import Device, Provider
    from convassist.services.tokens import DEVICE_AUDIENCE, issue_token

    with Session(engine_for(url)) as session:
        provider = Provider(email=f"bench-{uuid.uuid4().hex[:6]}@example.com", name="Bench", password_hash="x")
        session.add(provider)
        session.flush()
        device = Device(name="Bench Mac", hardware_id="bench", provider_id=provider.id, verified=True)
        session.add(device)
        session.commit()
        token, _ = issue_token(device.id, DEVICE_AUDIENCE)
        return provider.id, device.id, token


def run_api(url: str, batches: list[dict], env: dict) -> float:
    import httpx

    _, _, token = paired_device(url)
    port = free_port()
    # granian, the server `reflex run --env prod` uses, with the worker count `make run` sets
    server = subprocess.Popen([str(Path(sys.executable).parent / "granian"), "--interface", "asgi", "--factory",
                               "--workers", "2", "--port", str(port), "--log-level", "warning", "--no-access-log",
                               "convassist.api:create_api"], cwd=ROOT, env={**env, "DATABASE_URL": url})
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/api/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("API server did not start")
            time.sleep(0.2)
        bodies = [json.dumps(b).encode() for b in batches]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

        def send(chunk: list[bytes]) -> int:
            inserted = 0
            with httpx.Client(base_url=base, timeout=60) as client:
                for body in chunk:
                    response = client.post("/api/sync/messages", content=body, headers=headers)
                    response.raise_for_status()
                    inserted += response.json()["inserted"]
            return inserted

        chunks = [bodies[i::CLIENT_THREADS] for i in range(CLIENT_THREADS)]
        started = time.perf_counter()
        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            inserted = sum(pool.map(send, chunks))
        elapsed = time.perf_counter() - started
        assert inserted == TOTAL, f"API inserted {inserted}, expected {TOTAL}"
        return elapsed
    finally:
        server.terminate()
        server.wait(timeout=20)


def run_plain(url: str, batches: list[dict]) -> float:
    """The baseline: psycopg executemany upsert (ON CONFLICT DO NOTHING) of the same rows, same batches."""
    import psycopg

    provider_id, device_id, _ = paired_device(url)
    plain_url = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain_url) as conn:
        conversation_ids = {}
        for b in batches:  # conversations exist up front: the baseline measures message rows only
            cid = uuid.uuid4()
            conn.execute("INSERT INTO conversation (id, provider_id, device_id, imessage_chat_id, is_group, "
                         "participants, message_count, created_at, updated_at) "
                         "VALUES (%s, %s, %s, %s, false, %s, 0, now(), now())",
                         (cid, provider_id, device_id, b["conversationId"], json.dumps(b["participants"])))
            conversation_ids[b["conversationId"]] = cid
        conn.commit()
        rows_per_batch = [[(uuid.uuid4(), provider_id, conversation_ids[b["conversationId"]], m["imessageGuid"],
                            m["senderId"], m["direction"], m["messageType"], m["text"],
                            datetime.fromisoformat(m["sentAt"])) for m in b["messages"]] for b in batches]
        sql = ("INSERT INTO message (id, provider_id, conversation_id, imessage_guid, sender_id, direction, "
               "message_type, text, sent_at, retracted, created_at, updated_at) "
               "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, false, now(), now()) "
               "ON CONFLICT (provider_id, imessage_guid) DO NOTHING")
        started = time.perf_counter()
        for rows in rows_per_batch:
            with conn.cursor() as cur:
                cur.executemany(sql, rows)
            conn.commit()
        elapsed = time.perf_counter() - started
        count = conn.execute("SELECT count(*) FROM message").fetchone()[0]
        assert count == TOTAL, count
    return elapsed


def main() -> int:
    batches = make_batches()
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        cluster = PostgresCluster(Path(tmp) / "pg", fast=True)
        cluster.start()
        cluster.wait_ready()
        env = {**os.environ, "CONVASSIST_DATA_DIR": tmp, "JWT_SECRET": "bench-secret-" + "x" * 32,
               "REDIS_URL": "redis://127.0.0.1:1/0"}
        os.environ.update(env)
        try:
            for name in ("bench_api", "bench_plain"):
                cluster.create_database(name)
                migrate(cluster.url(name))
            plain = run_plain(cluster.url("bench_plain"), batches)
            api = run_api(cluster.url("bench_api"), batches, env)
        finally:
            cluster.stop()
    plain_rate, api_rate = TOTAL / plain, TOTAL / api
    ratio = api_rate / plain_rate
    print(f"plain psycopg upsert: {plain_rate:,.0f} messages/s ({plain:.2f} s for {TOTAL:,})")
    print(f"API sync:             {api_rate:,.0f} messages/s ({api:.2f} s for {TOTAL:,}, batches of {BATCH})")
    print(f"ratio API/plain: {ratio:.2f} (goal >= 0.5: {'PASS' if ratio >= 0.5 else 'FAIL'}); "
          f"API >= 20,000/s: {'PASS' if api_rate >= 20000 else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
