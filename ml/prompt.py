"""The prompt: the last N messages as `Them:`/`Me:` lines (sender names in groups), ending with `Me:`.

Pure Python (no model): the app builds the prompt and keys the cache on it; the worker trims it to the
context window with the model's tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

BASE_STOPS = ("\nThem:", "\nMe:", "\n\n")
DEFAULT_MAX_HISTORY = 10
ME, THEM = "Me", "Them"


@dataclass(frozen=True)
class Turn:
    """One message as the prompt shows it: who spoke (`Me`, `Them`, or a name in groups) and what."""

    speaker: str
    text: str


def speaker_for(direction: str, sender_name: str | None, is_group: bool) -> str:
    if direction == "outgoing":
        return ME
    if is_group and sender_name:
        # a name must not pose as one of our own markers or break the line format
        cleaned = " ".join(sender_name.replace(":", " ").split())
        return cleaned if cleaned and cleaned not in (ME, THEM) else THEM
    return THEM


def _line(turn: Turn) -> str:
    # one message per line: inner newlines would look like new turns or like the "\n\n" stop
    text = " ".join(turn.text.split())
    return f"{turn.speaker}: {text}"


def render(turns: Sequence[Turn]) -> str:
    """The prompt text for these turns, ending with `Me:` for the model to continue."""
    return "".join(_line(t) + "\n" for t in turns) + f"{ME}:"


def last_message(prompt: str) -> str:
    """The client's last message in a prompt (`…\\nThem: text\\nMe:`)."""
    lines = [line for line in prompt.splitlines() if line.strip() and line.strip() != "Me:"]
    last = lines[-1] if lines else ""
    return last.split(":", 1)[1].strip() if ":" in last else last.strip()


def stops_for(turns: Sequence[Turn]) -> list[str]:
    """Stop sequences: the base three plus `\\n<name>:` for every group member in the prompt."""
    names = sorted({t.speaker for t in turns} - {ME, THEM})
    return list(BASE_STOPS) + [f"\n{name}:" for name in names]


def trim_to_fit(turns: Sequence[Turn], count_tokens: Callable[[str], int], budget: int) -> list[Turn]:
    """Drop the oldest turns until the prompt fits `budget` tokens (the newest turn always stays,
    cut from its start if it alone is too long: by words, then by characters — a pasted blob or link with
    no space is one word)."""
    kept = list(turns)
    while len(kept) > 1 and count_tokens(render(kept)) > budget:
        kept.pop(0)
    # more than one turn left: the loop has just counted them and they fit
    if len(kept) == 1 and count_tokens(render(kept)) > budget:
        last = kept[-1]
        words = last.text.split()
        while len(words) > 1 and count_tokens(render([Turn(last.speaker, " ".join(words))])) > budget:
            words = words[len(words) // 4 or 1:]
        text = " ".join(words)
        while len(text) > 1 and count_tokens(render([Turn(last.speaker, text)])) > budget:
            text = text[len(text) // 4 or 1:]
        kept = [Turn(last.speaker, text)]
    return kept
