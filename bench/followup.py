"""What the worker's conversation memory and shared prompt buy, through the API, each against its
baseline in the same run:

1. a follow-up suggestion (the conversation got one new client message since its last suggestion,
   and other conversations were served in between) vs a cold one for a conversation the worker has
   not read (goal <= 0.5): the worker restores what it read (ml.engine.ConversationMemory) and
   evaluates only the new message;
2. three suggestions vs one for the same kind of conversation (cold each): the three share one
   prompt evaluation (llama-cpp-python's prefix reuse) and decode one after another.

Real parts: PostgreSQL, Redis, one worker (`python -m convassist.worker`, SmolLM2 as its Q8_0 copy), the API.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone

from _stack import bench_stack, paired_device

N = int(os.environ.get("BENCH_N", "12"))
EPOCH = datetime(2026, 10, 1, tzinfo=timezone.utc)  # old history: nothing is computed ahead


def history(i: int, n: int = 12) -> list[dict]:
    out = []
    for j in range(n):
        incoming = j % 2 == 0
        out.append({"imessageGuid": f"c{i}-{j}", "direction": "incoming" if incoming else "outgoing",
                    "senderId": f"+1555{i:07d}" if incoming else None,
                    "text": (f"Hi, it's client {i}: could I book a colour and cut for {j % 5 + 1} pm on day {j}?"
                             if incoming else f"Of course! Day {j} at {j % 5 + 1} pm is yours, see you then."),
                    "sentAt": (EPOCH + timedelta(days=i, minutes=j)).isoformat()})
    return out


def main() -> int:
    import httpx

    with bench_stack(worker=True) as stack:
        base = stack["start_api"]()
        _, _, device_token, provider_token = paired_device(stack["db"]["bench"])
        mac = {"Authorization": f"Bearer {device_token}"}
        provider = {"Authorization": f"Bearer {provider_token}"}
        api = httpx.Client(base_url=base, timeout=120)

        def sync(i: int, messages: list[dict]) -> None:
            api.post("/api/sync/messages", headers=mac, json={
                "conversationId": f"chat-{i}", "participants": [f"+1555{i:07d}"],
                "messages": messages}).raise_for_status()

        def newest(i: int) -> str:
            items = api.get("/api/conversations", headers=provider, params={"limit": 200}).json()["items"]
            conversation = next(c for c in items if c["participants"] == [f"+1555{i:07d}"])
            return api.get(f"/api/conversations/{conversation['id']}", headers=provider).json()["messages"][0]["id"]

        def suggest(message_id: str, count: int = 1) -> tuple[float, float]:
            started = time.perf_counter()
            body = api.post("/api/responses/generate", headers=provider,
                            json={"messageId": message_id, "count": count}).json()
            elapsed = (time.perf_counter() - started) * 1000
            assert body["status"] == "completed" and not body["cached"], body
            return elapsed, body["responseId"]

        for i in range(2 * N):
            sync(i, history(i))
        api.post("/api/responses/generate", headers=provider, json={"messageId": newest(0)})  # warm-up
        cold, follow = [], []
        for i in range(1, N):
            cold.append(suggest(newest(i))[0])
        for i in range(1, N):  # each got one new message; the worker read the others in between
            sync(i, [{"imessageGuid": f"c{i}-new", "direction": "incoming", "senderId": f"+1555{i:07d}",
                      "text": "Also, is parking free nearby?", "sentAt": (EPOCH + timedelta(days=i, minutes=30)).isoformat()}])
            follow.append(suggest(newest(i))[0])
        one, three = [], []
        for i in range(N, 2 * N, 2):
            one.append(suggest(newest(i), 1)[0])
            three.append(suggest(newest(i + 1), 3)[0])

    ratio = statistics.median(follow) / statistics.median(cold)
    print(f"(1) follow-up suggestion p50 {statistics.median(follow):.0f} ms vs cold p50 {statistics.median(cold):.0f} ms "
          f"over {len(cold)} conversations: ratio {ratio:.3f} (goal <= 0.5: {'PASS' if ratio <= 0.5 else 'FAIL'})")
    ratio3 = statistics.median(three) / statistics.median(one)
    print(f"(2) three suggestions p50 {statistics.median(three):.0f} ms vs one p50 {statistics.median(one):.0f} ms: "
          f"ratio {ratio3:.2f} (goal <= 1.35: {'PASS' if ratio3 <= 1.35 else 'FAIL'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
