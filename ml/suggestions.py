"""Suggestions from a loaded engine: fit the prompt to the context window, generate the first reply
(streamed), then sample more while they are clearly different."""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING

from ml.params import GenerationParams
from ml.prompt import Turn, render, stops_for, trim_to_fit

if TYPE_CHECKING:  # the app imports this module for MAX_SUGGESTIONS without loading numpy
    from ml.engine import Generation, ReplyEngine

MAX_SUGGESTIONS = 3
SIMILAR = 0.8  # difflib ratio at or above which two suggestions count as the same


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def near_duplicate(text: str, others: list[str]) -> bool:
    a = _normal(text)
    return any(a == _normal(b) or difflib.SequenceMatcher(None, a, _normal(b)).ratio() >= SIMILAR for b in others)


def _sampled(params: GenerationParams, attempt: int) -> GenerationParams:
    """The parameters of an extra suggestion: sampled, with a seed of its own."""
    return params.model_copy(update={"temperature": max(params.temperature, 0.9), "seed": params.seed + 100 + attempt})


def generate_suggestions(engine: ReplyEngine, prompt: str, stops: list[str], params: GenerationParams, count: int,
                         on_text=None, session: str | None = None) -> list[Generation]:
    """The first reply with the caller's parameters (streamed) and count - 1 sampled ones, made together
    (engine.generate_many); replies too like one already found are dropped, and the missing ones are
    sampled once more, together. At most two rounds: when the model keeps saying the same thing, fewer
    suggestions come back rather than many more tries.

    An empty first reply is retried with sampling; if every try is empty, the list is empty.
    """
    made = engine.generate_many(prompt, [params] + [_sampled(params, i) for i in range(1, count)], stops, on_text,
                                session=session, distinct_starts=True)
    first, extra = made[0], made[1:]
    tries = 0
    while not first.text and tries < 2:
        tries += 1
        retry = params.model_copy(update={"temperature": max(params.temperature, 0.7), "seed": params.seed + tries})
        first = engine.generate(prompt, retry, stops, session=session)
    if not first.text:
        return []
    found = [first]

    def keep(candidates: list[Generation]) -> None:
        for candidate in candidates:
            if len(found) < count and candidate.text and not near_duplicate(candidate.text, [g.text for g in found]):
                found.append(candidate)

    keep(extra)
    missing = count - len(found)
    if missing > 0:
        keep(engine.generate_many(prompt, [_sampled(params, count - 1 + i) for i in range(1, missing + 1)], stops,
                                  session=session))
    return found


class PromptTooLong(ValueError):
    """A raw prompt that does not fit the model's context window."""


def run_generation(engine: ReplyEngine, turns: list[Turn] | None, prompt: str | None, stops: list[str],
                   adapter_path: str | None, params: GenerationParams, count: int,
                   on_text=None, session: str | None = None) -> tuple[str, list[Generation]]:
    """Everything the job does with the model, in one call on the model thread: fit the prompt to the
    context window (conversation turns are trimmed from the oldest; a raw prompt must fit), select the
    adapter (no other job's switch can come in between) and generate. Returns (prompt, suggestions)."""
    budget = engine.context_size - params.max_tokens - 8
    if turns is not None:
        turns = trim_to_fit(turns, engine.count_tokens, budget)
        prompt, stops = render(turns), stops_for(turns)
    elif engine.count_tokens(prompt) > budget:
        raise PromptTooLong("The prompt does not fit the model's context window.")
    engine.use_adapter(adapter_path)
    return prompt, generate_suggestions(engine, prompt, stops, params, count, on_text, session)
