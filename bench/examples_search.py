"""What finding the provider's past exchanges costs on the suggestion path (services/examples.py):
PostgreSQL full-text search over a big history, against the prompt window query every suggestion
already runs (services/responses.conversation_turns without examples), in the same run.

A provider with 20,000 past exchanges (40,000 messages in 4,000 conversations, everyday salon words, so
common words match thousands of messages) and another provider with as many; 60 searches with the
client messages of bench/data/voice_set.py and tests/fixtures/voice_samples.py.

Also, in the same run: the search by words alone (the candidates not ranked again by meaning,
services.examples.by_meaning_too: what that costs), and the same search again through the suggestion path
(services.examples.examples_for keeps a conversation's examples in Redis for EXAMPLES_TTL), as when Suggest
is clicked on suggestions computed ahead.

Run: `.venv/bin/python bench/examples_search.py` (≈1 min).
"""

from __future__ import annotations

import random
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

from _stack import bench_stack, paired_device

EXCHANGES = 20_000


def fill(url: str, provider_id: uuid.UUID, rng: random.Random) -> uuid.UUID:
    """EXCHANGES client messages each answered by the provider, in 4,000 conversations; returns the id of
    one conversation's newest message (the one a suggestion is asked for)."""
    import sqlalchemy as sa

    from convassist.db import engine_for
    from convassist.models import Conversation, Message
    from tests.fixtures.voice_samples import QUESTIONS

    words = " ".join(q + " " + a for q, a in QUESTIONS).split()
    epoch = datetime(2025, 1, 1, tzinfo=timezone.utc)
    conversations, messages = [], []
    for c in range(4000):
        conversation_id = uuid.uuid4()
        conversations.append({"id": conversation_id, "provider_id": provider_id, "imessage_chat_id": f"c{c}",
                              "participants": [f"+1555{c:07d}"], "is_group": False, "message_count": 10,
                              "last_message_at": epoch + timedelta(days=c % 300, minutes=10),
                              "created_at": epoch, "updated_at": epoch})
        for k in range(EXCHANGES // 4000):
            sent = epoch + timedelta(days=c % 300, minutes=2 * k)
            for direction, offset in (("incoming", 0), ("outgoing", 1)):
                messages.append({"id": uuid.uuid4(), "provider_id": provider_id, "conversation_id": conversation_id,
                                 "imessage_guid": f"{c}-{k}-{direction}", "direction": direction,
                                 "message_type": "text", "text": " ".join(rng.choices(words, k=12)),
                                 "sent_at": sent + timedelta(seconds=offset), "retracted": False,
                                 "created_at": epoch, "updated_at": epoch,
                                 "sender_id": f"+1555{c:07d}" if direction == "incoming" else None})
    engine = engine_for(url)
    with engine.begin() as conn:
        conn.execute(sa.insert(Conversation), conversations)
        for i in range(0, len(messages), 5000):
            conn.execute(sa.insert(Message), messages[i:i + 5000])
        conn.execute(sa.text("ANALYZE message"))
    return messages[-1]["id"]


def main() -> int:
    from convassist.db import engine_for
    from convassist.services import examples as served
    from convassist.services.examples import examples_for, find_examples
    from ml.prompt import Turn
    from convassist.services.responses import conversation_turns
    from sqlmodel import Session

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent / "data"))
    from voice_set import TOPICS
    from tests.fixtures.voice_samples import QUESTIONS

    queries = [q for q, _ in QUESTIONS] + [ask for _, asks in TOPICS.values() for ask in asks[:2]]
    with bench_stack() as stack:
        url = stack["db"]["bench"]
        rng = random.Random(0)
        ana, other = paired_device(url)[0], paired_device(url)[0]
        started = time.perf_counter()
        target = fill(url, ana, rng)
        fill(url, other, rng)
        print(f"filled {2 * EXCHANGES * 2:,} messages in {time.perf_counter() - started:.0f} s")
        with Session(engine_for(url)) as session:
            conversation_id = conversation_turns(session, ana, target, 10)[1]
            window, search, found, shared, before = [], [], [], [], []
            fusion = served.by_meaning_too
            for round_ in range(2):  # the first round warms PostgreSQL's caches
                for query in queries:
                    t0 = time.perf_counter()
                    conversation_turns(session, ana, target, 10)
                    t1 = time.perf_counter()
                    examples = find_examples(session, ana, conversation_id, query, 3)
                    t2 = time.perf_counter()
                    # the suggestion path: the first round searched and kept the answer in Redis
                    examples_for(session, ana, conversation_id, [Turn("Them", query)], False, 3)
                    t3 = time.perf_counter()
                    served.by_meaning_too = lambda query, found: found  # the order by words alone
                    try:
                        find_examples(session, ana, conversation_id, query, 3)
                    finally:
                        served.by_meaning_too = fusion
                    t4 = time.perf_counter()
                    if round_:
                        before.append((t4 - t3) * 1000)
                        window.append((t1 - t0) * 1000)
                        search.append((t2 - t1) * 1000)
                        shared.append((t3 - t2) * 1000)
                        found.append(len(examples))
    p50w, p50s = statistics.median(window), statistics.median(search)
    print(f"examples search p50 {p50s:.2f} ms (p95 {sorted(search)[int(0.95 * len(search))]:.2f}), prompt window "
          f"query p50 {p50w:.2f} ms, over {len(search)} searches of {EXCHANGES:,} exchanges: ratio "
          f"{p50s / p50w:.2f}; {statistics.mean(found):.1f} examples found per search")
    p50b = statistics.median(before)
    print(f"the search by words alone p50 {p50b:.2f} ms: ratio to the window query "
          f"{p50b / p50w:.2f}; served / before {p50s / p50b:.2f}")
    p50k = statistics.median(shared)
    print(f"the same examples again (kept in Redis, services.examples.examples_for) p50 {p50k:.2f} ms: ratio to the "
          f"window query {p50k / p50w:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
