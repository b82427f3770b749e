"""Suggestion picking with the fake engine (fast), and near-duplicate detection."""

from ml import garbage, suggestions
from ml.engine import FakeEngine, Generation
from ml.params import GenerationParams
from ml.suggestions import generate_suggestions, near_duplicate


class ScriptedEngine(FakeEngine):
    """Returns the scripted replies in order."""

    def __init__(self, replies):
        super().__init__()
        self.replies = list(replies)

    def generate(self, prompt, params, stop=(), on_text=None, session=None):
        text = self.replies.pop(0)
        if on_text and text:
            on_text(text)
        return Generation(text, 0.5, len(text.split()), 3, 0.0)


def test_near_duplicates():
    assert near_duplicate("See you at 3!", ["see you at 3"])
    assert near_duplicate("Sounds good, see you then", ["Sounds good, see you then!!"])
    assert not near_duplicate("Yes, Friday works", ["Sorry, I'm booked Friday"])


def test_count_gives_distinct_suggestions():
    engine = ScriptedEngine(["Yes, Friday works!", "yes friday works", "Sorry, Friday is full.",
                             "Could you do Saturday?"])
    found = generate_suggestions(engine, "Them: Friday?\nMe:", [], GenerationParams(), 3)
    assert [g.text for g in found] == ["Yes, Friday works!", "Sorry, Friday is full.", "Could you do Saturday?"]


def test_count_gives_up_after_enough_tries():
    engine = ScriptedEngine(["Yes!"] * 20)
    assert [g.text for g in generate_suggestions(engine, "p", [], GenerationParams(), 3)] == ["Yes!"]


def test_empty_reply_is_retried_then_reported():
    assert [g.text for g in generate_suggestions(ScriptedEngine(["", "Sure!"]), "p", [], GenerationParams(), 1)] \
        == ["Sure!"]
    assert generate_suggestions(ScriptedEngine(["", "", ""]), "p", [], GenerationParams(), 1) == []


class LoopingEngine(FakeEngine):
    """Loops greedily ("Hiya! Hiya! …") unless llama.cpp's repetition penalty is on; records each try."""

    def __init__(self, penalized: str = "Hiya! Pickup is by 5pm."):
        super().__init__()
        self.penalized, self.tries = penalized, []

    def generate(self, prompt, params, stop=(), on_text=None, session=None):
        self.tries.append(params)
        text = self.penalized if params.repeat_penalty > 1 else "Hiya! " * 12
        if on_text:
            on_text(text)
        return Generation(text.strip(), 0.5, len(text.split()), 3, 0.0)


def test_a_first_reply_that_loops_is_made_again_with_the_repetition_penalty_and_streamed_again():
    engine, shown = LoopingEngine(), []
    found = generate_suggestions(engine, "p", [], GenerationParams(), 1, on_text=shown.append)
    assert [g.text for g in found] == ["Hiya! Pickup is by 5pm."]
    assert [p.repeat_penalty for p in engine.tries] == [1.0, suggestions.REPEAT_PENALTY]
    assert engine.tries[1].temperature == 0  # still greedy: the same request gives the same reply
    assert shown[-1] == "Hiya! Pickup is by 5pm."  # the card ends showing the reply that is kept


def test_garbage_is_kept_only_when_no_try_does_better_and_extras_that_are_garbage_are_dropped():
    # every try loops: the first loop stays (ranked shows it last) rather than no suggestion at all
    stuck = ScriptedEngine(["m-m-m-m-m-m-m-m-m-m", "Hey hey hey hey hey", "ok ok ok ok ok"])
    assert [g.text for g in generate_suggestions(stuck, "p", [], GenerationParams(), 1)] == ["m-m-m-m-m-m-m-m-m-m"]
    # an unfinished turn ("I:") and a loop are not suggestions; the missing ones are sampled once more
    engine = ScriptedEngine(["Yes, 5 works.", "I:", "No no no no no", "Could you do 6?", "Mm:"])
    assert [g.text for g in generate_suggestions(engine, "p", [], GenerationParams(), 3)] == [
        "Yes, 5 works.", "Could you do 6?"]


def test_what_counts_as_garbage():
    for junk in ("", "Hiya! Hiya! Hiya! Hiya! Hiya!", "m-m-m-m-m-m-m-m", "!!!!!!!!!!", "I:", "Alex B:",
                 "the the the the the the"):
        assert garbage.problem(junk), junk
    for fine in ("Yes, 3pm works. Cheers, Ana", "Hey hey! Teeth brushing is $10. Woof, Maya 🐾", "No:(",
                 "Sure: 3pm works", "Hi! See you at 5."):
        assert garbage.problem(fine) is None, fine
