"""Suggestion picking with the fake engine (fast), and near-duplicate detection."""

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
