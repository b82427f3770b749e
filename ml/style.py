"""The provider's style in one mark a machine can check: the sign-off most of their replies end with
("Cheers, Ana from Blue Salon!", "Woof, Maya 🐾"). A voice that learned the provider's style ends its
replies the same way; the judge counts how many do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

MIN_SHARE = 0.5  # of the provider's replies that must end the same way for it to be their sign-off
MAX_WORDS = 8


def _words(text: str) -> list[str]:
    return text.split()


def sign_off(replies: Iterable[str]) -> str | None:
    """The longest ending (1 to MAX_WORDS words) that at least half of the replies share; None when
    there is none (or too few replies to tell)."""
    endings = [w for w in (_words(r) for r in replies) if w]
    if len(endings) < 4:
        return None
    found = None
    for n in range(1, MAX_WORDS + 1):
        counts = Counter(" ".join(w[-n:]) for w in endings if len(w) >= n)
        if not counts:
            break
        ending, count = counts.most_common(1)[0]
        if count < MIN_SHARE * len(endings):
            break
        found = ending
    return found


def in_style(reply: str, mark: str | None) -> bool:
    """Whether a reply ends with the provider's sign-off."""
    return bool(mark) and " ".join(_words(reply)).endswith(mark)
