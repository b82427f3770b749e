"""Facts a reply states that the provider never gave: the numbers in it (times, prices, durations,
dates) that appear neither in the conversation nor in the provider's own replies. A provider sends a
suggestion only if it is right; "see you at 10pm" when nobody said 10 is the worst kind of wrong.

Numbers are compared as the digits they are written with ("$120" and "120.00" are 120; "10:30" and
"10.30" are 10:30; "3pm" is 3). Numbers written as words ("three") are not counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_NUMBER = re.compile(r"\d+(?:[:.,]\d+)*")
_WRITTEN = re.compile(r"[$£€]?\d+(?:[:.,]\d+)*(?:\s?(?:am|pm|%)(?![a-z]))?", re.IGNORECASE)


def _normal(raw: str) -> str:
    """One number as the fact it states: thousands separators and zero cents dropped, "10.30" read as
    the time 10:30."""
    value = re.sub(r",(?=\d{3}(?!\d))", "", raw)  # 1,200 → 1200
    value = re.sub(r"\.0+$", "", value)  # 120.00 → 120
    return re.sub(r"^(\d{1,2})\.(\d{2})$", r"\1:\2", value)  # 10.30 → 10:30


def numbers(text: str) -> set[str]:
    """The numbers a text states, normalised so that the same fact reads the same."""
    return {_normal(raw) for raw in _NUMBER.findall(text)}


def unsupported(reply: str, known: Iterable[str]) -> list[str]:
    """The numbers of a reply that none of the known texts states, as the reply writes them ("$60",
    "10:30", "3pm"), in order: what the provider should check before sending."""
    missing = invented(reply, known)
    shown: list[str] = []
    for match in _WRITTEN.finditer(reply):
        written = match.group(0).strip()
        if _normal(_NUMBER.search(written).group(0)) in missing and written not in shown:
            shown.append(written)
    return shown


def stated(texts: Iterable[str]) -> set[str]:
    """Every number the texts state."""
    found: set[str] = set()
    for text in texts:
        found |= numbers(text)
    return found


def invented(reply: str, known: Iterable[str], also_known: set[str] = frozenset()) -> set[str]:
    """The numbers of a reply that none of the known texts (the conversation, the provider's past
    replies) states; also_known: numbers already gathered (stated() of texts shared by many replies)."""
    return numbers(reply) - stated(known) - also_known
