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


def test_the_judge_counts_numbers_the_provider_never_gave():
    samples = [TrainSample("Them: How much is a trim?\nMe:", "A trim is $35."),
               TrainSample("Them: Are you open at 9?\nMe:", "Yes, from 9.")]
    engine = FakeEngine(reply="Sure, it's $35 at 10pm")
    verdict = judge(engine, Path("/nonexistent/adapter.gguf"), samples, ["Trims are $35, colour $120."])
    # "10" invented in each reply; "35" is the provider's own price
    assert verdict.voice_invented == verdict.base_invented == 2
    # without the provider's replies "35" is invented too, in each
    assert judge(engine, Path("/nonexistent/adapter.gguf"), samples).voice_invented == 4
