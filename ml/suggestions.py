"""Suggestions from a loaded engine: fit the prompt to the context window, generate the first reply
(streamed), then sample more while they are clearly different."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from ml import garbage, recital
from ml.params import GenerationParams
from ml.prompt import Turn, render, stops_for, trim_to_fit

if TYPE_CHECKING:  # the app imports this module for MAX_SUGGESTIONS without loading numpy
    from ml.engine import Generation, ReplyEngine

MAX_SUGGESTIONS = 3
SIMILAR = 0.8  # difflib ratio at or above which two suggestions count as the same
# for a first reply made again after it went round in a loop: on 104 one-message questions (salon and
# dog-grooming clients) the base model's greedy reply was garbage 11 times ("No, no, no, no, …",
# "100.\nYou: 100.\nYou: …"); made again with llama.cpp's penalty 1.1 all 11 said something ("No, no you
# can't. You're a cat.", "10."), as with 1.2, 1.3 and 1.5; the mildest is kept
REPEAT_PENALTY = 1.1


def near_duplicate(text: str, others: list[str]) -> bool:
    a = recital.normal(text)
    return any(a == (b := recital.normal(other)) or difflib.SequenceMatcher(None, a, b).ratio() >= SIMILAR
               for other in others)


def _sampled(params: GenerationParams, attempt: int) -> GenerationParams:
    """The parameters of an extra suggestion: sampled, with a seed of its own."""
    return params.model_copy(update={"temperature": max(params.temperature, 0.9), "seed": params.seed + 100 + attempt})


def _again(params: GenerationParams, attempt: int, looped: bool) -> GenerationParams:
    """The parameters of another try at the first reply: after a loop, the same (greedy) reply with its
    repetitions penalized first; otherwise, or when that loops too, sampled with a seed of its own."""
    if looped and attempt == 1:
        return params.model_copy(update={"repeat_penalty": REPEAT_PENALTY})
    return params.model_copy(update={"temperature": max(params.temperature, 0.7), "seed": params.seed + attempt})


def _better(candidate: Generation, current: Generation) -> Generation:
    """The more useful of two tries: one that is not garbage, else one that at least says something."""
    if garbage.problem(candidate.text) is None or (not current.text.strip() and candidate.text.strip()):
        return candidate
    return current


def generate_suggestions(engine: ReplyEngine, prompt: str, stops: list[str], params: GenerationParams, count: int,
                         on_text=None, session: str | None = None) -> list[Generation]:
    """The first reply with the caller's parameters (streamed) and count - 1 sampled ones, made together
    (engine.generate_many); replies too like one already found, or garbage (ml.garbage: a word over and
    over, a bare speaker's name), are dropped, and the missing ones are sampled once more, together. At
    most two rounds: when the model keeps saying the same thing, fewer suggestions come back rather than
    many more tries.

    A first reply that is empty or garbage is made again (streamed again), at most twice: a loop first
    with llama.cpp's repetition penalty, then sampled. If every try is empty, the list is empty; a
    garbage reply is kept only when no try did better (it is then shown last, services.responses.ranked).
    """
    made = engine.generate_many(prompt, [params] + [_sampled(params, i) for i in range(1, count)], stops, on_text,
                                session=session, distinct_starts=True)
    first, extra = made[0], made[1:]
    looped = bool(first.text.strip())
    tries = 0
    while garbage.problem(first.text) is not None and tries < 2:
        tries += 1
        first = _better(engine.generate(prompt, _again(params, tries, looped), stops, on_text, session=session), first)
    if not first.text:
        return []
    found = [first]

    def keep(candidates: list[Generation]) -> None:
        for candidate in candidates:
            if (len(found) < count and garbage.problem(candidate.text) is None
                    and not near_duplicate(candidate.text, [g.text for g in found])):
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
    adapter (no other job's switch can come in between) and generate. Returns (prompt, suggestions).

    With an adapter, a reply it was trained on that the prompt does not hold is dropped; when the first
    reply is one, the base model makes the first reply again (ml.recital)."""
    budget = engine.context_size - params.max_tokens - 8
    if turns is not None:
        turns = trim_to_fit(turns, engine.count_tokens, budget)
        prompt, stops = render(turns), stops_for(turns)
    elif engine.count_tokens(prompt) > budget:
        raise PromptTooLong("The prompt does not fit the model's context window.")
    engine.use_adapter(adapter_path)
    found = generate_suggestions(engine, prompt, stops, params, count, on_text, session)
    if adapter_path is None or not found:
        return prompt, found
    trained = recital.learned(adapter_path)
    kept = [g for g in found if not recital.recites(g.text, trained, prompt)]
    if kept and kept[0] is found[0]:
        return prompt, kept
    # the voice's first reply is one it was trained on, which nothing it was shown says (ml.recital): a
    # memory of another conversation. The base model answers from the prompt instead; the voice's other
    # replies that are not recitals follow.
    engine.use_adapter(None)
    plain = generate_suggestions(engine, prompt, stops, params, 1, on_text, session)
    return prompt, ((plain + kept)[:count] if plain else found)
