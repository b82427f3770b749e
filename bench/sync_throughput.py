"""Sync throughput: 100,000 messages through POST /api/sync/messages in batches of 500, against the
same rows through a plain psycopg upsert into the same schema, in the same run.

Goals: API >= 0.5x the plain upsert, and >= 20,000 messages/s.

Both sides write into their own freshly migrated database of one private PostgreSQL cluster. The API
runs in granian with 2 workers, as under `make run`; the client sends pre-encoded JSON bodies from 2
threads over keep-alive connections, so client-side encoding is not what is measured.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from _stack import bench_stack, paired_device

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


def run_api(base: str, token: str, batches: list[dict]) -> float:
    import httpx

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


def run_plain(url: str, batches: list[dict]) -> float:
    """The baseline: psycopg executemany upsert (ON CONFLICT DO NOTHING) of the same rows, same batches."""
    import psycopg

    provider_id, device_id, _, _ = paired_device(url)
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
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
    with bench_stack(("bench_api", "bench_plain"), redis=False) as stack:
        plain = run_plain(stack["db"]["bench_plain"], batches)
        base = stack["start_api"](database_url=stack["db"]["bench_api"])
        api = run_api(base, paired_device(stack["db"]["bench_api"])[2], batches)
    plain_rate, api_rate = TOTAL / plain, TOTAL / api
    ratio = api_rate / plain_rate
    print(f"plain psycopg upsert: {plain_rate:,.0f} messages/s ({plain:.2f} s for {TOTAL:,})")
    print(f"API sync:             {api_rate:,.0f} messages/s ({api:.2f} s for {TOTAL:,}, batches of {BATCH})")
    print(f"ratio API/plain: {ratio:.2f} (goal >= 0.5: {'PASS' if ratio >= 0.5 else 'FAIL'}); "
          f"API >= 20,000/s: {'PASS' if api_rate >= 20000 else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
