"""What the worker's conversation memory and shared prompt buy, through the API, each against its
baseline in the same run:

1. a follow-up suggestion (the conversation got one new client message since its last suggestion,
   and other conversations were served in between) vs a cold one for a conversation the worker has
   not read (goal <= 0.5): the worker restores what it read (ml.engine.ConversationMemory) and
   evaluates only the new message;
2. three suggestions vs one for the same kind of conversation (cold each), on everyday salon
   conversations (goal <= 1.35): the three share one reading of the prompt and decode together, one
   sequence each in one llama_decode per token (ml.engine.LlamaEngine.generate_many); each sampled
   reply begins with a token the replies before it did not (distinct starts), and replies still too
   like another are sampled once more, together. Also printed, without a goal: a conversation so
   uniform that the model gives the same reply at any temperature (every request needs that second
   round, and still returns fewer than three).

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


def salon(i: int) -> list[dict]:
    """An everyday conversation: a few of a client's questions and the provider's answers, then a new
    question (each conversation a different mix)."""
    from tests.fixtures.voice_samples import QUESTIONS  # the repository root is on the path (_stack)

    picked = [QUESTIONS[(i * 5 + k * 7) % len(QUESTIONS)] for k in range(4)]
    out = []
    for j, (question, answer) in enumerate(picked):
        for k, (direction, text) in enumerate((("incoming", question), ("outgoing", answer))):
            if j == len(picked) - 1 and direction == "outgoing":
                break  # the last question waits for its reply
            out.append({"imessageGuid": f"s{i}-{j}-{k}", "direction": direction,
                        "senderId": f"+1555{i:07d}" if direction == "incoming" else None, "text": text,
                        "sentAt": (EPOCH + timedelta(days=i % 50, minutes=2 * j + k)).isoformat()})
    return out


def worker_engine():
    """The engine a worker loads: its model file (the served copy), context size and threads."""
    from convassist.settings import get_settings
    from ml.engine import LlamaEngine
    from ml.quantize import serving_copy
    from ml.registry import resolve_model

    settings = get_settings()
    resolved = serving_copy(resolve_model(settings.ml_service_model_id, None, settings.convassist_data_dir),
                            settings.convassist_data_dir / "models" / "converted", settings.ml_service_requantize)
    return LlamaEngine.load(resolved, context_size=settings.ml_service_context_size, gpu_layers=0,
                            threads=settings.ml_service_threads)


def in_the_engine() -> str:
    """The same everyday prompts in the worker's engine (its model file, context and threads): three
    replies decoded together vs three one after another (the prompt read once either way: the way
    before batching) vs one; and what one decode step costs with 1, 2 and 3 sequences."""
    from ml.engine import _Sequences
    from ml.params import GenerationParams
    from ml.prompt import BASE_STOPS, Turn, render

    engine = worker_engine()
    greedy = GenerationParams(max_tokens=64)
    variants = [greedy] + [GenerationParams(max_tokens=64, temperature=0.9, seed=100 + i) for i in (1, 2)]
    steps: dict[int, list[float]] = {1: [], 2: [], 3: []}
    step = _Sequences.step

    def timed_step(self, tokens, position, sequences):
        started = time.perf_counter()
        step(self, tokens, position, sequences)
        steps[len(tokens)].append((time.perf_counter() - started) * 1000)

    _Sequences.step = timed_step
    one, apart, together = [], [], []
    for i in range(100, 100 + 2 * N):
        prompt = render([Turn("Them" if m["direction"] == "incoming" else "Me", m["text"]) for m in salon(i)])
        for runs, how in ((one, lambda: engine.generate(prompt, greedy, BASE_STOPS)),
                          (apart, lambda: [engine.generate(prompt, v, BASE_STOPS) for v in variants]),
                          (together, lambda: engine.generate_many(prompt, variants, BASE_STOPS))):
            engine._seqs.clear()  # cold: the prompt is read each time
            started = time.perf_counter()
            how()
            runs.append((time.perf_counter() - started) * 1000)
    _Sequences.step = step
    p50 = statistics.median
    return (f"    in the engine, same prompts: one p50 {p50(one):.0f} ms; three one after another {p50(apart):.0f} ms "
            f"(ratio {p50(apart) / p50(one):.2f}); three together {p50(together):.0f} ms (ratio "
            f"{p50(together) / p50(one):.2f}); a decode step with 1/2/3 sequences: "
            + "/".join(f"{p50(v):.1f}" for v in steps.values() if v) + " ms")


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

        def suggest(message_id: str, count: int = 1) -> tuple[float, int]:
            started = time.perf_counter()
            body = api.post("/api/responses/generate", headers=provider,
                            json={"messageId": message_id, "count": count}).json()
            elapsed = (time.perf_counter() - started) * 1000
            assert body["status"] == "completed" and not body["cached"], body
            return elapsed, len(body["suggestions"])

        for i in range(2 * N):
            sync(i, history(i))
        for i in range(100, 100 + 2 * N):
            sync(i, salon(i))
        api.post("/api/responses/generate", headers=provider, json={"messageId": newest(0)})  # warm-up
        cold, follow = [], []
        for i in range(1, N):
            cold.append(suggest(newest(i))[0])
        for i in range(1, N):  # each got one new message; the worker read the others in between
            sync(i, [{"imessageGuid": f"c{i}-new", "direction": "incoming", "senderId": f"+1555{i:07d}",
                      "text": "Also, is parking free nearby?", "sentAt": (EPOCH + timedelta(days=i, minutes=30)).isoformat()}])
            follow.append(suggest(newest(i))[0])
        one, three, made = [], [], []
        for i in range(100, 100 + 2 * N, 2):
            one.append(suggest(newest(i), 1)[0])
            elapsed, n = suggest(newest(i + 1), 3)
            three.append(elapsed)
            made.append(n)
        uniform_one, uniform_three, uniform_made = [], [], []
        for i in range(N, 2 * N, 2):
            uniform_one.append(suggest(newest(i), 1)[0])
            elapsed, n = suggest(newest(i + 1), 3)
            uniform_three.append(elapsed)
            uniform_made.append(n)

        engine_line = in_the_engine()

    ratio = statistics.median(follow) / statistics.median(cold)
    print(f"(1) follow-up suggestion p50 {statistics.median(follow):.0f} ms vs cold p50 {statistics.median(cold):.0f} ms "
          f"over {len(cold)} conversations: ratio {ratio:.3f} (goal <= 0.5: {'PASS' if ratio <= 0.5 else 'FAIL'})")
    ratio3 = statistics.median(three) / statistics.median(one)
    print(f"(2) three suggestions p50 {statistics.median(three):.0f} ms vs one p50 {statistics.median(one):.0f} ms "
          f"(everyday conversations, {statistics.mean(made):.1f} suggestions per request of 3): ratio {ratio3:.2f} "
          f"(goal <= 1.35: {'PASS' if ratio3 <= 1.35 else 'FAIL'})")
    uniform = statistics.median(uniform_three) / statistics.median(uniform_one)
    print(f"    uniform conversations (the model's one answer at any temperature): three p50 "
          f"{statistics.median(uniform_three):.0f} ms vs one {statistics.median(uniform_one):.0f} ms: ratio "
          f"{uniform:.2f}, {statistics.mean(uniform_made):.1f} suggestions per request of 3 (no goal)")
    print(engine_line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
