"""The reply cache in Redis: a key over everything that decides the reply (convassist.keys.cache_key)."""

from __future__ import annotations

import hashlib
import json

from convassist import keys


def model_version(model_id: str, adapter_version: str | None) -> str:
    """What responses record: the base model, plus the LoRA adapter when one is active."""
    return f"{model_id}+{adapter_version}" if adapter_version else model_id


def cache_key(*, owner: str, model_id: str, file_identity: str | None, adapter_version: str | None,
              prompt: str, params: dict, count: int) -> str:
    """A key of one owner's (never shared between owners) that changes whenever the model file, the
    adapter, the prompt or a sampling option does."""
    material = json.dumps({"owner": owner, "model": model_id, "file": file_identity, "adapter": adapter_version,
                           "prompt": prompt, "params": params, "count": count}, sort_keys=True)
    return keys.cache_key(hashlib.sha256(material.encode("utf-8")).hexdigest())


def decode(raw: bytes) -> dict:
    """A stored value (the worker's result dict)."""
    return json.loads(raw)


def store(pipeline, key: str, value: dict, ttl_seconds: int) -> None:
    """Queue the cache write on a Redis pipeline (the worker sends it with its other bookkeeping)."""
    pipeline.set(key, json.dumps(value), ex=ttl_seconds)
