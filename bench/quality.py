"""Suggestion quality on the generated validation set (bench/data/voice_set.py), through the product's
own code path: the provider's history synced by the agent API, training samples from edited
suggestions, a training job with the defaults on the worker, its adapter activated, suggestions asked for with
/api/responses/generate (greedy, count 1) for each test message.

For each way of suggesting, against what the provider would really send:
- chrF (sacrebleu, corpus level);
- style: the share of suggestions ending in the provider's sign-off;
- invented numbers: numbers that neither the conversation nor any reply of the provider states (ml.facts);
- copies: suggestions identical to a reply the adapter trained on (another topic's: train and test
  topics are disjoint for the samples adapter);
- other topic: suggestions stating another topic's fact (voice_set.states_another_fact): the error
  behind a copy, whichever opener it comes with (a copy has one of the training replies' openers).

Ways: base; base + examples (the provider's own past exchanges in the prompt, services/examples.py);
adapter (trained on the samples); adapter + examples; an adapter trained only on imported history
(another provider with the same history and no samples), alone and with examples. Goals: adapter +
examples >= 3.5x the base model's chrF, style on >= 95%, fewer invented numbers than the adapter alone,
0 copies. Also printed: the first of three cards the provider sees (suggestions stating only known
numbers first), and how long each training job took.

The samples are made as a provider makes them: a suggestion for each training message, edited into the
reply they really sent.

Real parts: PostgreSQL, Redis, one worker (`python -m convassist.worker`), two API processes (one with
ML_SERVICE_EXAMPLES=0). Run: `.venv/bin/python bench/quality.py` (≈5-10 min on 2 cores).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from _stack import ROOT, bench_stack, paired_device

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent / "data"))

from ml.facts import invented, stated  # noqa: E402
from voice_set import states_another_fact  # noqa: E402

DATA = json.loads((Path(__file__).parent / "data" / "voice_set.json").read_text())
EPOCH = datetime(2026, 9, 1, tzinfo=timezone.utc)
MODEL = "smollm2-135m-instruct"


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


class Provider:
    """One provider of the bench: their Mac's token, their own token, the two APIs."""

    def __init__(self, api, api_plain, db_url: str):
        _, _, device_token, provider_token = paired_device(db_url)
        self.mac = {"Authorization": f"Bearer {device_token}"}
        self.me = {"Authorization": f"Bearer {provider_token}"}
        self.api, self.api_plain = api, api_plain

    def sync_history_and_tests(self) -> dict[int, str]:
        """Every history exchange in a client's conversation of its own, and every test message in one
        more; returns each test message's id by its index."""
        for i, item in enumerate(DATA["history"]):
            sent = EPOCH + timedelta(days=i)
            self._sync(f"h{i}", f"+1555100{i:04d}", [
                ("incoming", item["message"], sent), ("outgoing", item["reply"], sent + timedelta(minutes=7))])
        return self._waiting("t", 2, DATA["test"], 90)

    def _waiting(self, chat: str, series: int, items: list[dict], day: int) -> dict[int, str]:
        """A conversation for each item whose client message waits for a reply; their message ids."""
        for j, item in enumerate(items):
            self._sync(f"{chat}{j}", f"+1555{series}00{j:04d}", [("incoming", item["message"],
                                                                  EPOCH + timedelta(days=day + j))])
        listed = self.api.get("/api/conversations", headers=self.me, params={"limit": 200}).json()["items"]
        by_phone = {c["participants"][0]: c["id"] for c in listed}
        ids = {}
        for j in range(len(items)):
            conversation = self.api.get(f"/api/conversations/{by_phone[f'+1555{series}00{j:04d}']}",
                                        headers=self.me).json()
            ids[j] = conversation["messages"][0]["id"]
        return ids

    def edit_suggestions(self) -> None:
        """The training samples the way a provider makes them: a suggestion for each training message's
        conversation, edited into what they really sent (its prompt, examples included, is the sample's)."""
        ids = self._waiting("s", 3, DATA["train"], 60)
        for j, item in enumerate(DATA["train"]):
            body = self.api.post("/api/responses/generate", headers=self.me, json={"messageId": ids[j]})
            body.raise_for_status()
            self.api.post(f"/api/responses/{body.json()['responseId']}/action", headers=self.me, json={
                "action": "edit", "editedResponse": item["reply"], "suggestionIndex": 0}).raise_for_status()

    def _sync(self, chat: str, phone: str, messages: list[tuple[str, str, datetime]]) -> None:
        self.api.post("/api/sync/messages", headers=self.mac, json={
            "conversationId": chat, "participants": [phone], "messages": [
                {"imessageGuid": f"{chat}-{k}", "direction": direction, "text": text, "sentAt": sent.isoformat(),
                 "senderId": phone if direction == "incoming" else None}
                for k, (direction, text, sent) in enumerate(messages)]}).raise_for_status()

    def suggest(self, ids: dict[int, str], *, examples: bool, count: int = 1) -> list[str]:
        """The suggestion the provider reads first for each test message: with count 3, the first card
        (services.responses.ranked: grounded ones first, then the most confident)."""
        from convassist.services.responses import ranked
        from convassist.worker.contracts import Suggestion

        api = self.api if examples else self.api_plain
        out = []
        for j in range(len(DATA["test"])):
            body = api.post("/api/responses/generate", headers=self.me, json={"messageId": ids[j], "count": count})
            body.raise_for_status()
            cards = ranked([Suggestion.model_validate(s) for s in body.json()["suggestions"]])
            out.append(cards[0][1].text)
        return out

    def train(self) -> float:
        """A training job with the defaults, waited for and activated; returns its wall time (s)."""
        started = time.perf_counter()
        job = self.api.post("/api/training/jobs", headers=self.me, json={"baseModel": MODEL})
        job.raise_for_status()
        job_id = job.json()["jobId"]
        while (state := self.api.get(f"/api/training/jobs/{job_id}", headers=self.me).json())["status"] in (
                "queued", "training"):
            time.sleep(1)
        if state["status"] != "completed":
            raise SystemExit(f"training failed: {state.get('error')}")
        seconds = time.perf_counter() - started
        self.api.post("/api/training/adapters/active", headers=self.me, json={"jobId": job_id}).raise_for_status()
        return seconds


def score(name: str, replies: list[str], trained_on: list[str]) -> dict:
    from sacrebleu.metrics import CHRF

    truths = [t["reply"] for t in DATA["test"]]
    known = stated([h["reply"] for h in DATA["history"]] + [t["reply"] for t in DATA["train"]])
    made_up = sum(len(invented(reply, [t["message"]], known)) for reply, t in zip(replies, DATA["test"]))
    trained = {_normal(r) for r in trained_on}
    other_topic = sum(states_another_fact(reply, t["reply"]) for reply, t in zip(replies, DATA["test"]))
    return {"name": name, "chrf": CHRF().corpus_score(replies, [truths]).score,
            "style": sum(r.rstrip().endswith(DATA["signOff"]) for r in replies) / len(replies),
            "invented": made_up, "copies": sum(_normal(r) in trained for r in replies), "other_topic": other_topic,
            "replies": replies}


def main() -> int:
    import httpx

    rows, timings = [], {}
    with bench_stack(worker=True) as stack:
        db_url = stack["db"]["bench"]
        with httpx.Client(base_url=stack["start_api"](), timeout=300) as api, \
                httpx.Client(base_url=stack["start_api"](settings={"ML_SERVICE_EXAMPLES": "0"}), timeout=300) as plain:
            maya = Provider(api, plain, db_url)
            ids = maya.sync_history_and_tests()
            rows.append(score("base", maya.suggest(ids, examples=False), []))
            rows.append(score("base + examples", maya.suggest(ids, examples=True), []))
            maya.edit_suggestions()
            timings["adapter (samples)"] = maya.train()
            samples = [t["reply"] for t in DATA["train"]]
            rows.append(score("adapter", maya.suggest(ids, examples=False), samples))
            rows.append(score("adapter + examples", maya.suggest(ids, examples=True), samples))
            rows.append(score("adapter + examples, first of 3 cards", maya.suggest(ids, examples=True, count=3),
                              samples))

            history = Provider(api, plain, db_url)
            history_ids = history.sync_history_and_tests()
            imported = api.post("/api/training/history/import", headers=history.me)
            imported.raise_for_status()
            timings["history-only adapter"] = history.train()
            past = [h["reply"] for h in DATA["history"]]
            rows.append(score("history-only adapter", history.suggest(history_ids, examples=False), past))
            rows.append(score("history-only adapter + examples", history.suggest(history_ids, examples=True), past))

    base = rows[0]["chrf"] or 1e-9
    print(f"validation set: {DATA['provider']}; {len(DATA['test'])} test messages on topics disjoint from the "
          f"{len(DATA['train'])} training samples; {len(DATA['history'])} past exchanges synced")
    print(f"{'':38} {'chrF':>6} {'x base':>7} {'style':>6} {'invented':>9} {'copies':>7} {'other topic':>12}")
    for row in rows:
        print(f"{row['name']:38} {row['chrf']:6.1f} {row['chrf'] / base:7.2f} {row['style']:6.0%} "
              f"{row['invented']:9d} {row['copies']:7d} {row['other_topic']:12d}")
    for name, seconds in timings.items():
        print(f"training job ({name}, defaults): {seconds:.0f} s from request to adapter ready")
    by = {r["name"]: r for r in rows}
    best, alone = by["adapter + examples"], by["adapter"]
    goals = [("adapter + examples chrF >= 3.5x base", best["chrf"] >= 3.5 * rows[0]["chrf"]),
             ("style >= 95%", best["style"] >= 0.95),
             ("fewer invented numbers than the adapter alone", best["invented"] < alone["invented"]
              or best["invented"] == alone["invented"] == 0),
             ("0 copies", best["copies"] == 0)]
    for goal, met in goals:
        print(f"goal {goal}: {'PASS' if met else 'FAIL'}")
    if "-v" in sys.argv:
        for row in rows:
            print(f"\n## {row['name']}")
            for t, reply in zip(DATA["test"], row["replies"]):
                print(f"  {t['message']!r} -> {reply!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
