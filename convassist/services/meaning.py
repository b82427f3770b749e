"""How close texts are in meaning: WordLlama's static word embeddings (its bundled 256-dimension model, 16 MB in
the wheel; nothing is downloaded, ever). A text's vector is the normalized mean of its tokens' vectors, so
"Can you brush out bad mats?" lands near "My dog is really matted" although they share no word. For a search's
candidates (up to 80 exchanges, 160 texts) it adds about 10 ms to the ~63 ms search (bench/examples_search.py).
Loaded once per process, on first use (0.2 s; read-only).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path


@cache
def _model():
    import wordllama

    # the bundled tokenizer is found under cache_dir/tokenizers only (its own folder is otherwise not looked in
    # and it would try the hub); disable_download makes a missing file an error, not a request
    return wordllama.WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)


def closeness(query: str, pairs: list[tuple[str, str]]) -> list[float]:
    """For each (client's message, reply) pair, the cosine of the query with the message plus with the reply."""
    if not pairs:
        return []
    model = _model()
    near = model.embed([query], norm=True)[0]
    similar = model.embed([text for pair in pairs for text in pair], norm=True) @ near
    return [float(similar[2 * i] + similar[2 * i + 1]) for i in range(len(pairs))]
