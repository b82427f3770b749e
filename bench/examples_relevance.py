"""Which past exchanges go into the prompt as examples (services/examples.find_examples): how the search
ranks them, chosen on the validation set's TRAIN topics only (bench/data/voice_set.py), never its test
topics. Compared: the search by the client's words only (client_words_only: the served search without the
reply's side, as served until the reply's words were added; with and without ts_rank's length normalization),
the search by the client's and the reply's words, and the served one: those candidates ranked again by meaning
too (services.examples.by_meaning_too); also, not served, a search by meaning over every exchange, alone and
fused with the words (services.meaning's closeness to each past exchange). (A floor — only examples ranked
near the best — was measured with this script at commit b376b6b and left out: services/examples.py says why.)

The provider's history is bench/quality.py's (phrasings 0-2 of every topic, each exchange in a client's
own conversation, synced in the same order); the questions are the train topics' phrasings 3-5 (none of
them in the history word for word). For each way of ranking it prints: the share of questions whose first
example is on the question's topic, the share of shown examples on topic, the questions shown an example
of another topic (the model copies those as readily as a right one), and the questions that lost their
topic's example (one shares a word with them, none is shown).

`--replies`: also what the base model (the day-one product: no training yet) says with each way's
examples in the prompt, greedy as suggestions are made (ml.suggestions): chrF against the provider's
true reply, style (signed off), invented numbers (ml.facts) and replies that repeat an example of another
topic word for word.

Run: `.venv/bin/python bench/examples_relevance.py [--replies]` (≈10 s; 2 min with replies). `... paraphrases`:
the train topics' paraphrases instead (voice_set.PARAPHRASES: no word shared with the history). `... test`
prints the same for the test topics, to look at once the choice is made; never choose on it.
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from _stack import bench_stack, paired_device

sys.path.insert(0, str(Path(__file__).parent / "data"))
from voice_set import TEST_TOPICS, TRAIN_TOPICS, asked  # noqa: E402

def client_words_only(served: str) -> str:
    """The served search without the reply's side: candidates and rank from the client's message alone (the
    search as it was before it read the replies' words; the same rules for what counts as an exchange)."""
    by_reply = re.search(r"by_reply AS \(.*?LIMIT :candidates\),\n", served, re.S)
    union = re.search(r"\n\s*UNION\n.*? before\)\)", served, re.S)
    reply_rank = " + ts_rank(reply.search_vector, query.q, 1)"
    assert by_reply and union and reply_rank in served, "the served SQL changed: mend client_words_only"
    return (served[:by_reply.start()] + served[by_reply.end():union.start()] + "))"
            + served[union.end():]).replace(reply_rank, "")


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


class Replies:
    """The base model's reply to each question with the examples found for it in the prompt."""

    def __init__(self) -> None:
        from ml.engine import LlamaEngine
        from ml.facts import stated
        from ml.registry import resolve_model

        self.engine = LlamaEngine.load(resolve_model("smollm2-135m-instruct", None, Path("/nonexistent")),
                                       context_size=1024, gpu_layers=0, threads=2)
        self.known = stated(h["reply"] for h in DATA["history"])  # the numbers the provider has stated

    def measure(self, shown: dict[tuple[str, int], list], topic_of: dict[str, str]) -> str:
        from sacrebleu.metrics import CHRF

        from convassist.services.examples import with_examples
        from ml.facts import invented
        from ml.params import GenerationParams
        from ml.prompt import BASE_STOPS, Turn, render
        from ml.suggestions import generate_suggestions
        from voice_set import SIGN_OFF, reply

        replies, truths, made_up, copied = [], [], 0, 0
        for (topic, k), found in shown.items():
            question = asked(topic, k)
            prompt = render(with_examples([Turn("Them", question)], found))
            made = generate_suggestions(self.engine, prompt, list(BASE_STOPS), GenerationParams(max_tokens=48), 1)
            text = made[0].text if made else ""
            replies.append(text)
            truths.append(reply(topic, k))
            made_up += len(invented(text, [question], self.known))
            copied += any(" ".join(text.split()) == " ".join(e.reply.split()) and topic_of[e.reply] != topic
                          for e in found)
        style = sum(r.rstrip().endswith(SIGN_OFF) for r in replies) / len(replies)
        return (f"   base model: chrF {CHRF().corpus_score(replies, [truths]).score:5.1f}  style {style:4.0%}  "
                f"invented {made_up}  another topic's reply repeated {copied}")


def by_meaning(question: str, limit: int) -> list:
    """Every past exchange ranked by meaning alone (services.meaning: the question's closeness to the client's
    message plus to the reply), the best `limit`: not in the product (nothing shares a word, yet 3 are shown)."""
    from convassist.services.examples import Example
    from convassist.services.meaning import closeness

    exchanges = [Example(h["message"], h["reply"]) for h in DATA["history"]]
    close = closeness(question, [(e.message, e.reply) for e in exchanges])
    return [exchanges[i] for i in sorted(range(len(exchanges)), key=lambda i: -close[i])[:limit]]


def main() -> int:
    args = sys.argv[1:]
    topics = TEST_TOPICS if "test" in args else TRAIN_TOPICS
    phrasings = (6, 7, 8) if "paraphrases" in args else (3, 4, 5)
    model = Replies() if "--replies" in sys.argv[1:] else None
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
        questions = [(t, k) for t in topics for k in phrasings]
        elsewhere = uuid.uuid4()  # the conversation being answered holds none of the history

        def by_words(question: tuple[str, int], limit: int) -> list:
            with Session(engine) as session:
                return examples.find_examples(session, provider_id, elsewhere, asked(*question), limit)

        def topics_of(found: list) -> list[str]:
            return [topic_of[e.reply] for e in found]

        def show(label: str, search=by_words) -> None:
            shown = {q: search(q, 3) for q in questions}
            print(f"{label:56} {measure({q: topics_of(f) for q, f in shown.items()}, everything)}", flush=True)
            if model is not None:
                print(model.measure(shown, topic_of), flush=True)

        served, fusion = examples._EXAMPLES, examples.by_meaning_too
        print(f"{len(questions)} {'paraphrased ' if phrasings[0] >= 6 else ''}questions of {len(topics)} "
              f"{'test' if topics is TEST_TOPICS else 'train'} topics; "
              f"{len(DATA['history'])} past exchanges; at most 3 examples shown")
        everything = {q: topics_of(by_words(q, examples.CANDIDATES)) for q in questions}
        client_only = client_words_only(served.text)
        plain = client_only.replace(", query.q, 1)", ", query.q)")  # ts_rank without the length normalization
        assert client_only.count(", query.q, 1)") == 2 and ", query.q, 1)" not in plain

        def fused(question: tuple[str, int], limit: int) -> list:
            """The served fusion, over every exchange instead of only those sharing a word."""
            score: dict = {}
            for order in (by_words(question, examples.CANDIDATES), by_meaning(asked(*question), 40)):
                for place, example in enumerate(order):
                    score[example] = score.get(example, 0) + 1 / (examples.FUSION_K + place)
            return sorted(score, key=lambda e: -score[e])[:limit]

        try:
            examples.by_meaning_too = lambda query, found: found  # the order by words alone
            for name, query in (("client's words, ts_rank", plain),
                                ("client's words, normalized by length", client_only),
                                ("client's and reply's words, each normalized", None)):
                examples._EXAMPLES = served if query is None else examples.sa.text(query)
                show(name)
            show("words and meaning, over every exchange (not served)", fused)
        finally:
            examples._EXAMPLES, examples.by_meaning_too = served, fusion
        show("client's and reply's words, then meaning too (served)")
        show("by meaning alone, over every exchange (not served)",
             lambda question, limit: by_meaning(asked(*question), limit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
