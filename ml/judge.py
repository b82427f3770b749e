"""Judging a trained adapter before it serves: the base model and the adapter each answer the
provider's held-out messages (the replies the training never saw), and chrF (sacrebleu) scores how
close each comes to what the provider really wrote.

The replies are made the way suggestions are (ml.suggestions, greedy, the same stops), so the score
is the score of what the provider would see. Next to chrF the judge counts invented numbers (ml.facts):
numbers in a suggestion that neither the conversation nor the provider's training replies state; and
the replies in the provider's style (ml.style: ending with the sign-off most of their replies end with).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ml.engine import ReplyEngine
from ml.facts import invented, stated
from ml.params import GenerationParams
from ml.prompt import BASE_STOPS, last_message
from ml.style import in_style, sign_off
from ml.suggestions import generate_suggestions
from ml.train import TrainSample

MAX_JUDGED = 20  # held-out replies scored (bounded: judging must not take longer than training)
MAX_EXAMPLES = 3  # before/after examples kept for the provider to read
MARGIN = 1.0  # chrF points: a smaller difference is "about the same"
GREEDY = GenerationParams(max_tokens=48)


@dataclass
class Example:
    message: str  # the client's last message
    truth: str  # what the provider really answered
    base: str  # the base model's suggestion
    voice: str  # the adapter's suggestion


@dataclass
class Judgement:
    base_chrf: float
    voice_chrf: float
    judged: int
    examples: list[Example] = field(default_factory=list)
    base_invented: int = 0  # numbers stated that the provider never gave, over all judged replies
    voice_invented: int = 0
    sign_off: str | None = None  # the provider's sign-off (None: their replies share none)
    base_styled: int = 0  # judged replies ending with it
    voice_styled: int = 0

    @property
    def verdict(self) -> str:
        """better | same | worse: the adapter against the base model."""
        if self.voice_chrf > self.base_chrf + MARGIN:
            return "better"
        return "worse" if self.voice_chrf < self.base_chrf - MARGIN else "same"


def judge(engine: ReplyEngine, adapter_path: Path, held_out: list[TrainSample],
          known_replies: list[str] = ()) -> Judgement:
    """Score base vs adapter on up to MAX_JUDGED held-out samples (chrF, corpus level) and count the
    numbers each invents (known: each sample's conversation and known_replies, the provider's own)."""
    from sacrebleu.metrics import CHRF

    room = engine.context_size - GREEDY.max_tokens - 8
    items = [s for s in held_out if engine.count_tokens(s.prompt) <= room][:MAX_JUDGED]  # long ones: not judged

    def answers(adapter: str | None) -> list[str]:
        engine.use_adapter(adapter)
        found = [generate_suggestions(engine, s.prompt, list(BASE_STOPS), GREEDY, 1) for s in items]
        return [g[0].text if g else "" for g in found]

    base, voice = answers(None), answers(str(adapter_path))
    engine.use_adapter(None)
    truths = [s.reply for s in items]
    chrf = CHRF()
    score = (lambda replies: round(chrf.corpus_score(replies, [truths]).score, 1)) if items else (lambda _: 0.0)
    examples = [Example(last_message(s.prompt), s.reply, b, v)
                for s, b, v in zip(items[:MAX_EXAMPLES], base, voice)]

    given = stated(known_replies)  # gathered once, not per reply

    def made_up(replies: list[str]) -> int:
        return sum(len(invented(reply, [s.prompt], given)) for s, reply in zip(items, replies))

    mark = sign_off(list(known_replies) + truths)

    def styled(replies: list[str]) -> int:
        return sum(in_style(reply, mark) for reply in replies)

    return Judgement(score(base), score(voice), len(items), examples, made_up(base), made_up(voice), mark,
                     styled(base), styled(voice))
