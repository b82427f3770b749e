"""Which past exchanges go into the prompt as examples (services/examples.find_examples): how the search
ranks them and how far below the best one it still shows them (RELEVANCE), chosen on the validation set's
TRAIN topics only (bench/data/voice_set.py), never its test topics.

The provider's history is bench/quality.py's (phrasings 0-2 of every topic, each exchange in a client's
own conversation, synced in the same order); the questions are the train topics' phrasings 3-5 (none of
them in the history word for word). For each way of ranking it prints: the share of questions whose first
example is on the question's topic, the share of shown examples on topic, the questions shown an example
of another topic (the model copies those as readily as a right one), and the questions that lost their
topic's example (one shares a word with them, none is shown).

Run: `.venv/bin/python bench/examples_relevance.py` (≈10 s). `... test` prints the same for the test
topics, to look at once the choice is made; never choose on it.
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from _stack import bench_stack, paired_device

sys.path.insert(0, str(Path(__file__).parent / "data"))
from voice_set import TEST_TOPICS, TOPICS, TRAIN_TOPICS  # noqa: E402

DATA = json.loads((Path(__file__).parent / "data" / "voice_set.json").read_text())
EPOCH = datetime(2025, 1, 6, 9, tzinfo=timezone.utc)


def sync_history(session, device) -> dict[str, str]:
    """The history as bench/quality.py syncs it; each reply's topic."""
    from convassist.services import sync

    for i, item in enumerate(DATA["history"]):
        sent = EPOCH + timedelta(days=i)
        sync.ingest_messages(session, device, sync.MessageBatch(
            conversation_id=f"h{i}", participants=[f"+1555100{i:04d}"], messages=[
                sync.SyncMessage(imessage_guid=f"h{i}-q", sender_id=f"+1555100{i:04d}", direction="incoming",
                                 text=item["message"], sent_at=sent),
                sync.SyncMessage(imessage_guid=f"h{i}-a", direction="outgoing", text=item["reply"],
                                 sent_at=sent + timedelta(minutes=7))]))
    return {item["reply"]: item["topic"] for item in DATA["history"]}


def measure(found: dict[tuple[str, int], list[str]], everything: dict[tuple[str, int], list[str]]) -> str:
    """found: the topics of the examples shown per question; everything: of every exchange the search matches."""
    questions = len(found)
    first = sum(bool(t) and t[0] == q[0] for q, t in found.items())
    on_topic = sum(sum(x == q[0] for x in t) / len(t) for q, t in found.items() if t)
    answered = sum(bool(t) for t in found.values())
    other = sum(any(x != q[0] for x in t) for q, t in found.items())
    lost = sum(q[0] in everything[q] and q[0] not in t for q, t in found.items())
    return (f"first on topic {first}/{questions}   shown on topic {on_topic / max(answered, 1):.2f}   "
            f"shown another topic {other}/{questions}   lost their topic's example {lost}   "
            f"shown per question {sum(map(len, found.values())) / questions:.2f}")


def main() -> int:
    topics = TEST_TOPICS if sys.argv[1:] == ["test"] else TRAIN_TOPICS
    with bench_stack() as stack:
        from sqlmodel import Session

        from convassist.db import engine_for
        from convassist.models import Device
        from convassist.services import examples

        provider_id, device_id, _, _ = paired_device(stack["db"]["bench"])
        engine = engine_for(stack["db"]["bench"])
        with Session(engine) as session:
            topic_of = sync_history(session, session.get(Device, device_id))
            session.commit()
        questions = [(t, k) for t in topics for k in (3, 4, 5)]
        elsewhere = uuid.uuid4()  # the conversation being answered holds none of the history

        def search(question: tuple[str, int], limit: int) -> list[str]:
            with Session(engine) as session:
                return [topic_of[e.reply] for e in examples.find_examples(
                    session, provider_id, elsewhere, TOPICS[question[0]][1][question[1]], limit)]

        normalized, relevance = examples._EXAMPLES, examples.RELEVANCE
        plain = normalized.text.replace("ts_rank(m.search_vector, query.q, 1)", "ts_rank(m.search_vector, query.q)")
        assert plain != normalized.text
        print(f"{len(questions)} questions of {len(topics)} {'test' if topics is TEST_TOPICS else 'train'} topics; "
              f"{len(DATA['history'])} past exchanges; at most 3 examples shown")
        try:
            examples.RELEVANCE = 0.0
            everything = {q: search(q, examples.CANDIDATES) for q in questions}
            for name, query in (("ts_rank", examples.sa.text(plain)), ("ts_rank, normalized by length", normalized)):
                examples._EXAMPLES = query
                examples.RELEVANCE = 0.0
                print(f"{name + ', the best 3':48} {measure({q: search(q, 3) for q in questions}, everything)}")
                for share in (0.7, 0.75, 0.8, 0.85, 0.9, 1.0):
                    examples.RELEVANCE = share
                    label = f"{name}, >= {share} x best" + (" (served)" if query is normalized and share == relevance
                                                             else "")
                    print(f"{label:48} {measure({q: search(q, 3) for q in questions}, everything)}")
        finally:
            examples._EXAMPLES, examples.RELEVANCE = normalized, relevance
    return 0


if __name__ == "__main__":
    sys.exit(main())
