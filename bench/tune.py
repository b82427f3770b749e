"""How the training defaults were chosen: on the validation set's TRAIN topics only (bench/data/voice_set.py),
never on its test topics.

The train topics are split again, by topic: "fit" topics train the adapter (every phrasing of theirs a
sample, with the provider's other answers on the topic as examples in its prompt, as suggestions and
imported history have them), "check" topics are what it is scored on — questions it never saw, answered
the way the product serves them: greedy, the provider's past exchanges on that topic as examples in the
prompt (services/examples.with_examples), and without them. Printed for each setting: chrF (sacrebleu), style
(replies ending in the sign-off), training seconds, and the epoch early stopping chose.

Run: `.venv/bin/python bench/tune.py` (≈10 min on 2 cores; the recipe of ml.train, the worker's engine).

`bench/tune.py small`: a small provider instead — only the two training phrasings of each fit topic (14
samples, examples in half, as bench/quality.py's provider has 20), how many passes it needs (ml.train's
min_steps): the check questions answered without examples (the voice alone: signed off, chrF, garbage)
and with them, as the product makes them (ml.suggestions).

`bench/tune.py copies`: the same small provider, but every prompt's examples are the ones the product's
search finds (services/examples.find_examples on PostgreSQL, over the history of every topic as
bench/quality.py syncs it; bench/examples_relevance.py), not only the topic's own: how often the voice
answers a check question with one of its training replies word for word (another topic's fact) — the
copies of bench/quality.py — next to chrF and the sign-off, for the number of updates it gets; "served": with
examples, as the worker serves them (ml.suggestions.run_generation: a training reply the prompt does not hold
is answered by the base model instead, ml.recital).
BENCH_TUNE_CHECK="full_groom,bath,nails" checks other train topics (the rest are fit), BENCH_TUNE_ONLY="0"
runs only the first setting, BENCH_TUNE_PARAPHRASES=1 asks the check topics' paraphrases instead (words the history
never uses: where the search shows another topic's exchange, as for the test topics' hardest questions).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from convassist.services.examples import Example, with_examples  # noqa: E402
from ml.engine import LlamaEngine  # noqa: E402
from ml.params import GenerationParams  # noqa: E402
from ml.prompt import BASE_STOPS, Turn, render  # noqa: E402
from ml.registry import resolve_model  # noqa: E402
from ml.suggestions import generate_suggestions, run_generation  # noqa: E402
from ml.train import TrainConfig, TrainSample, train_lora  # noqa: E402

DATA = json.loads((Path(__file__).parent / "data" / "voice_set.json").read_text())
sys.path.insert(0, str(Path(__file__).parent / "data"))
from voice_set import TOPICS, TRAIN_TOPICS, asked, reply, states_another_fact  # noqa: E402

CHECK_TOPICS = TRAIN_TOPICS[-3:]
FIT_TOPICS = TRAIN_TOPICS[:-3]
SETTINGS = [  # (epochs, learning rate, rank, fit on everything after choosing the epoch, examples in training)
    (3, 1e-3, 8, False, True), (6, 1e-3, 8, False, True), (3, 3e-3, 8, False, True), (6, 3e-3, 8, False, True),
    (3, 1e-3, 16, False, True), (3, 1e-3, 8, True, True), (3, 1e-3, 8, False, False), (3, 1e-3, 8, False, "half"),
    (6, 1e-3, 8, False, "half"), (3, 2e-3, 8, False, "half"), (3, 1e-3, 8, True, "half"),
]


def _asked(topic: str, k: int, examples: bool) -> str:
    """The prompt for the k-th way of asking about topic: with the provider's other answers on it as
    examples (what services/examples.py finds in their history) or without."""
    turns = [Turn("Them", TOPICS[topic][1][k])]
    if not examples:
        return render(turns)
    past = [Example(TOPICS[topic][1][j], reply(topic, j)) for j in range(3) if j != k]
    return render(with_examples(turns, past))


def samples(examples: bool | str) -> list[TrainSample]:
    """Every way of asking about a fit topic (its history and its training samples), answered; with
    examples in every prompt, in none, or in every other one ("half")."""
    return [TrainSample(_asked(topic, k, examples is True or (examples == "half" and k % 2 == 0)), reply(topic, k))
            for topic in FIT_TOPICS for k in range(5)]


def checks() -> list[tuple[str, str, str]]:
    """(prompt without examples, prompt with examples, truth) for each check question: the ways of
    asking about a check topic that its history does not hold."""
    return [(_asked(topic, k, False), _asked(topic, k, True), reply(topic, k))
            for topic in CHECK_TOPICS for k in (3, 4, 5)]


def score(engine: LlamaEngine, prompts: list[str], truths: list[str]) -> tuple[float, float]:
    from sacrebleu.metrics import CHRF

    replies = []
    for prompt in prompts:
        found = generate_suggestions(engine, prompt, list(BASE_STOPS), GenerationParams(max_tokens=48), 1)
        replies.append(found[0].text if found else "")
    style = sum(r.rstrip().endswith(DATA["signOff"]) for r in replies) / len(replies)
    return CHRF().corpus_score(replies, [truths]).score, style


def compare(engine: LlamaEngine, gguf: Path, data: list[TrainSample], items: list[tuple[str, str, str]],
            configs: dict[str, TrainConfig]) -> int:
    """Train a voice on data with each config; print how it answers the items (prompt without examples,
    with them, the true reply) alone and with examples: chrF, signed off, garbage, training replies repeated,
    replies stating another topic's fact (whatever their opener: the error behind a repeated reply)."""
    from sacrebleu.metrics import CHRF

    from ml import garbage

    trained = {" ".join(s.reply.lower().split()) for s in data}
    truths = [i[2] for i in items]
    with tempfile.TemporaryDirectory() as tmp:
        for n, (name, config) in enumerate(configs.items()):
            started = time.perf_counter()
            # a path each: the engine keeps adapters by path
            adapter = str(Path(tmp) / f"s{n}.gguf")
            result = train_lora(gguf, data, config, Path(adapter))
            seconds = time.perf_counter() - started
            for label, at in (("alone", 0), ("with examples", 1), ("served", 1)):
                if label == "served":  # as the worker serves it: recitals replaced (ml.suggestions.run_generation)
                    found = [run_generation(engine, None, i[at], list(BASE_STOPS), adapter,
                                            GenerationParams(max_tokens=48), 1)[1] for i in items]
                else:
                    engine.use_adapter(adapter)
                    found = [generate_suggestions(engine, i[at], list(BASE_STOPS), GenerationParams(max_tokens=48),
                                                  1) for i in items]
                replies = [f[0].text if f else "" for f in found]
                print(f"{name:32} {label:14} chrF {CHRF().corpus_score(replies, [truths]).score:5.1f} signed off "
                      f"{sum(r.rstrip().endswith(DATA['signOff']) for r in replies)}/{len(replies)} garbage "
                      f"{sum(garbage.problem(r) is not None for r in replies)} training replies repeated "
                      f"{sum(' '.join(r.lower().split()) in trained for r in replies)} another topic's fact "
                      f"{sum(states_another_fact(r, t) for r, t in zip(replies, truths))} | {seconds:4.0f} s, "
                      f"{result.steps} updates, best epoch {result.best_epoch} of {result.epochs_run}", flush=True)
            engine.use_adapter(None)
    return 0


def small_provider(engine: LlamaEngine, gguf: Path) -> int:
    """bench/tune.py small: passes for a provider with few samples."""
    data = [TrainSample(_asked(topic, k, k == 3), reply(topic, k)) for topic in FIT_TOPICS for k in (3, 4)]
    items = checks()
    configs = {"3 passes, no minimum": TrainConfig(threads=2, min_steps=0),
               "6 passes, no minimum": TrainConfig(threads=2, epochs=6, min_steps=0),
               "3 passes, lr 2e-3, no minimum": TrainConfig(threads=2, learning_rate=2e-3, min_steps=0),
               "defaults (min_steps)": TrainConfig(threads=2)}
    print(f"{len(data)} samples of {FIT_TOPICS}; {len(items)} check questions")
    return compare(engine, gguf, data, items, configs)


def searched_copies(engine: LlamaEngine, gguf: Path) -> int:
    """bench/tune.py copies: training replies repeated for other topics' questions, with searched examples."""
    import uuid

    from sqlmodel import Session

    from _stack import bench_stack, paired_device
    from examples_relevance import sync_history

    with bench_stack() as stack:
        from convassist.db import engine_for
        from convassist.models import Device
        from convassist.services.examples import find_examples

        provider_id, device_id, _, _ = paired_device(stack["db"]["bench"])
        db = engine_for(stack["db"]["bench"])
        with Session(db) as session:
            sync_history(session, session.get(Device, device_id))
            session.commit()

        def prompt(topic: str, k: int, examples: bool) -> str:
            turns = [Turn("Them", asked(topic, k))]
            if not examples:
                return render(turns)
            with Session(db) as session:
                return render(with_examples(turns, find_examples(session, provider_id, uuid.uuid4(),
                                                                 asked(topic, k), 3)))

        check = os.environ.get("BENCH_TUNE_CHECK", ",".join(CHECK_TOPICS)).split(",")
        fit = [t for t in TRAIN_TOPICS if t not in check]
        assert set(check) <= set(TRAIN_TOPICS), "train topics only: never tune on the test topics"
        data = [TrainSample(prompt(topic, k, k == 3), reply(topic, k)) for topic in fit for k in (3, 4)]
        phrasings = (6, 7, 8) if os.environ.get("BENCH_TUNE_PARAPHRASES") == "1" else (3, 4, 5)
        items = [(prompt(t, k, False), prompt(t, k, True), reply(t, k)) for t in check for k in phrasings]
        configs = {"defaults (18 updates at least)": TrainConfig(threads=2),
                   "3 passes, no minimum": TrainConfig(threads=2, min_steps=0),
                   "lr 5e-4": TrainConfig(threads=2, learning_rate=5e-4),
                   "2 passes, no minimum": TrainConfig(threads=2, epochs=2, min_steps=0)}
        only = os.environ.get("BENCH_TUNE_ONLY")
        configs = {name: c for n, (name, c) in enumerate(configs.items()) if only is None or str(n) in only.split(",")}
        print(f"{len(data)} samples of {fit}; {len(items)} check {'paraphrases' if phrasings[0] == 6 else 'questions'}"
              f" of {check}, examples searched over every topic's history", flush=True)
        return compare(engine, gguf, data, items, configs)


def main() -> int:
    gguf = resolve_model("smollm2-135m-instruct", None, Path("/nonexistent")).path
    engine = LlamaEngine.load(resolve_model("smollm2-135m-instruct", None, Path("/nonexistent")), context_size=1024,
                              gpu_layers=0, threads=2)
    if sys.argv[1:] == ["small"]:
        return small_provider(engine, gguf)
    if sys.argv[1:] == ["copies"]:
        return searched_copies(engine, gguf)
    items = checks()
    plain, shown, truths = [i[0] for i in items], [i[1] for i in items], [i[2] for i in items]
    print(f"fit topics {FIT_TOPICS} ({len(samples(True))} samples); check topics {CHECK_TOPICS} "
          f"({len(items)} questions)")
    engine.use_adapter(None)
    alone, ex = score(engine, plain, truths), score(engine, shown, truths)
    print(f"{'base model':58} chrF {alone[0]:5.1f} style {alone[1]:4.0%} | with examples chrF {ex[0]:5.1f} "
          f"style {ex[1]:4.0%}")
    with tempfile.TemporaryDirectory() as tmp:
        only = os.environ.get("BENCH_TUNE_ONLY")  # e.g. "7": just that setting
        for n, (epochs, lr, rank, refit, examples) in enumerate(SETTINGS):
            if only is not None and str(n) not in only.split(","):
                continue
            path = Path(tmp) / f"a{n}.gguf"
            started = time.perf_counter()
            config = TrainConfig(epochs=epochs, learning_rate=lr, rank=rank, threads=1, refit=refit)
            result = train_lora(gguf, samples(examples), config, path)
            seconds = time.perf_counter() - started
            engine.use_adapter(str(path))
            alone, ex = score(engine, plain, truths), score(engine, shown, truths)
            engine.use_adapter(None)
            name = (f"epochs {epochs} lr {lr:g} rank {rank}{' refit' if refit else ''}"
                    f"{({True: '', False: ' (trained without examples)'}).get(examples, ' (examples in half)')}")
            print(f"{name:58} chrF {alone[0]:5.1f} style {alone[1]:4.0%} | with examples chrF {ex[0]:5.1f} "
                  f"style {ex[1]:4.0%} | {seconds:4.0f} s, best epoch {result.best_epoch} of {result.epochs_run}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
