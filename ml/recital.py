"""A trained voice reciting a reply it was trained on, word for word, where nothing it was shown says it.

A small adapter memorizes its training replies; asked about something else, it can answer with one of
them ("A full groom is $65 …" to "Could you groom my kitten?"). Said again where the conversation or the
provider's own examples in the prompt hold it, that reply is the provider's answer to the question; said
where they do not, it is a memory of another conversation. Each adapter carries the fingerprints of the
replies it learned (in its GGUF's metadata: no message text, and they travel with the file to every worker
and into backups), so the worker can tell the two apart (ml.suggestions.run_generation).
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path

KEY = "convassist.trained_replies"  # GGUF metadata: the fingerprints of the training replies


def normal(text: str) -> str:
    """A reply's words, case, spacing and punctuation aside (a recital may differ from the reply in those
    only; ml.suggestions compares suggestions with each other the same way)."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def fingerprint(text: str) -> str:
    """What an adapter keeps of a training reply: 16 hex digits of its normalized text's SHA-256."""
    return hashlib.sha256(normal(text).encode()).hexdigest()[:16]


def fingerprints(replies: list[str]) -> list[str]:
    """The fingerprints to store with an adapter trained on these replies (sorted, each once)."""
    return sorted({fingerprint(r) for r in replies if normal(r)})


def learned(adapter_path: str) -> frozenset[str]:
    """The fingerprints an adapter file carries (none for an adapter exported before they were kept).
    A file gone since llama.cpp loaded it fails as a missing adapter does (RuntimeError: the job answers
    adapter_unavailable)."""
    try:
        stat = Path(adapter_path).stat()
    except OSError:
        raise RuntimeError("the adapter file is missing") from None
    return _read(adapter_path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=64)
def _read(path: str, mtime_ns: int, size: int) -> frozenset[str]:  # the file's identity: a new file reads again
    import gguf

    field = gguf.GGUFReader(path).fields.get(KEY)
    return frozenset(field.contents()) if field is not None else frozenset()


def recites(text: str, trained: frozenset[str], prompt: str) -> bool:
    """True when text is one of the trained replies and the prompt (the conversation and the examples
    shown) does not hold it."""
    said = normal(text)
    return bool(said) and fingerprint(text) in trained and said not in normal(prompt)
