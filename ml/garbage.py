"""Text that looks like garbage: what a small model writes when it has nothing to go on ("Hiya! Hiya!
Hiya! …", "m-m-m-m", a bare "I:"). Such a reply is never offered when a better one can be made
(ml.suggestions), is shown last when it is all there is (services.responses.ranked) and never trains the
voice (services.training).
"""

from __future__ import annotations

import re

_SPEAKER_ONLY = re.compile(r"^[\w .'-]{1,30}:$")  # "I:", "Mm:", "Alex B:" — a turn begun, nothing said


def problem(text: str) -> str | None:
    """Why this text is garbage, or None when it is not."""
    text = text.strip()
    if not text:
        return "the reply is empty"
    if re.search(r"(.)\1{7,}", text):
        return "a character repeats over and over"
    lowered = text.lower()
    if re.search(r"\b(\w+)(?:\W+\1\b){3,}", lowered):
        return "a word repeats over and over"
    words = re.findall(r"\w+", lowered)
    if len(words) >= 8 and len(set(words)) / len(words) < 0.4:
        return "the reply repeats itself"
    if _SPEAKER_ONLY.match(text):
        return "only a speaker's name"
    return None
