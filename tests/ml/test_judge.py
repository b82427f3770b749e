"""The judge scores what fits the model's context and leaves out the rest (a 20,000-character sample
must not fail a finished training job)."""

from pathlib import Path

from ml.engine import FakeEngine
from ml.judge import judge, last_message
from ml.train import TrainSample


def test_samples_too_long_for_the_context_are_not_judged():
    engine = FakeEngine(reply="Yes, Friday works. Cheers, Ana")
    engine.context_size = 200  # FakeEngine counts words as tokens
    samples = [TrainSample("Them: " + "very long message " * 200 + "\nMe:", "Sure"),
               TrainSample("Them: Is Friday free?\nMe:", "Yes, Friday works. Cheers, Ana")]
    verdict = judge(engine, Path("/nonexistent/adapter.gguf"), samples)
    assert verdict.judged == 1 and verdict.voice_chrf == 100.0
    assert last_message(samples[1].prompt) == "Is Friday free?"
