"""Sampling options (no numpy, no llama.cpp: the app imports them to build requests)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class GenerationParams(BaseModel):
    """Sampling options. Strict (unknown keys refused) so the cache key over them is stable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tokens: int = Field(64, ge=1, le=512)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    top_k: int = Field(40, ge=0, le=1000)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    # llama.cpp's repetition penalty on the reply's own last tokens (1.0: off); ml.suggestions sets it
    # to write a reply again that went round in a loop
    repeat_penalty: float = Field(1.0, ge=1.0, le=2.0)
