"""What travels through the queue between the app and the workers, typed at both ends.

The app sends a GenerateRequest; the worker answers a GenerateResult or a GenerateFailure, as JSON
(camelCase) on the job's stream, in arq's result and in the reply cache.
"""

from __future__ import annotations

from typing import Optional, Union

from pydantic import Field

from convassist.schemas import CamelModel
from ml.params import GenerationParams
from ml.suggestions import MAX_SUGGESTIONS


class AdapterRef(CamelModel):
    """A provider's active LoRA adapter: its id (cache keys), label (what responses record) and file."""

    id: str
    label: str
    path: str


class GenerateRequest(CamelModel):
    """Conversation turns ([speaker, text], trimmed by the worker to the context window) or a raw
    prompt (which must fit), with the provider's adapter (None: the base model)."""

    turns: Optional[list[tuple[str, str]]] = None
    prompt: Optional[str] = None
    params: GenerationParams
    count: int = Field(1, ge=1, le=MAX_SUGGESTIONS)
    cache_key: Optional[str] = None  # where the worker caches the result
    stream: bool = False  # write the reply so far to the job's stream (someone watches it)
    adapter: Optional[AdapterRef] = None
    in_flight_key: Optional[str] = None  # the owner's in-flight jobs, which this one leaves when done
    # the conversation (owner:id): the worker keeps what it read of it, so a follow-up reads only what is new
    session: Optional[str] = Field(None, max_length=100)


class Suggestion(CamelModel):
    text: str
    confidence: float
    # numbers the suggestion states that its prompt (the conversation and the provider's own examples)
    # does not: a time, price or date the model may have made up (ml.facts), for the provider to check
    unsupported_numbers: list[str] = []


class GenerateResult(CamelModel):
    response: str
    confidence: float
    suggestions: list[Suggestion]
    model_version: str
    prompt: str
    tokens: int
    generation_ms: float
    decoded: int = 0
    decode_ms: float = 0.0
    queued_ms: Optional[float] = None
    # the first suggestion's prompt: tokens evaluated (not reused from the KV cache) and the time to
    # its first token (bench/generation.py reads prompt tokens/s from them)
    prompt_evaluated: int = 0
    first_token_ms: float = 0.0


# Why a generation has no result, and the HTTP status that says so: the caller's input (422), the
# model's output (502), or a service that is down or busy (503). One table for every path.
FAILURE_STATUS = {"bad_request": 422, "prompt_too_long": 422, "empty_reply": 502, "generation_failed": 502,
                  "adapter_unavailable": 503, "model_unavailable": 503, "worker_unavailable": 503,
                  "worker_timeout": 503, "queue_unavailable": 503}


class GenerateFailure(CamelModel):
    error: str  # a code of FAILURE_STATUS
    message: str

    @property
    def http_status(self) -> int:
        return FAILURE_STATUS.get(self.error, 502)


Outcome = Union[GenerateResult, GenerateFailure]


def parse_outcome(data: dict) -> Outcome:
    """A worker's answer as it was stored (stream, arq result, cache)."""
    return GenerateFailure.model_validate(data) if "error" in data else GenerateResult.model_validate(data)


def dump(outcome: Outcome) -> dict:
    return outcome.model_dump(by_alias=True)
