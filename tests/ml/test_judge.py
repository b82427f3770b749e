"""The judge scores what fits the model's context and leaves out the rest (a 20,000-character sample
must not fail a finished training job)."""

from pathlib import Path

from ml.engine import FakeEngine
from ml.judge import judge
from ml.prompt import last_message
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


def test_the_judge_counts_replies_in_the_providers_style():
    """The sign-off most of the provider's replies end with is their style; the judge counts the replies
    ending with it (a FakeEngine answers the same for base and voice)."""
    from ml.style import in_style, sign_off

    past = ["Yes, Friday works. Cheers, Ana from Blue Salon!", "A trim is $35. Cheers, Ana from Blue Salon!",
            "We close at 7. Cheers, Ana from Blue Salon!", "Sure thing!", "See you soon. Cheers, Ana from Blue Salon!"]
    assert sign_off(past) == "Cheers, Ana from Blue Salon!"
    assert sign_off(["ok", "sure", "fine", "yes"]) is None and sign_off(past[:2]) is None  # none shared / too few
    assert in_style("Great.   Cheers, Ana from  Blue Salon!", sign_off(past)) and not in_style("Cheers!", None)
    samples = [TrainSample("Them: Is Friday free?\nMe:", past[0]), TrainSample("Them: Trim?\nMe:", past[1])]
    styled = judge(FakeEngine(reply="Of course. Cheers, Ana from Blue Salon!"), Path("/x.gguf"), samples, past)
    plain = judge(FakeEngine(reply="Of course."), Path("/x.gguf"), samples, past)
    assert styled.sign_off == "Cheers, Ana from Blue Salon!" and (styled.voice_styled, styled.judged) == (2, 2)
    assert plain.voice_styled == plain.base_styled == 0
