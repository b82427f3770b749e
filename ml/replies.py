"""The reply job: trim the prompt to the context window, generate, pick distinct suggestions, cache."""

from __future__ import annotations

import asyncio
import difflib
import json
import logging
import re
import time

from ml import cache
from ml.engine import Generation, GenerationParams, ReplyEngine, on_model_thread
from ml.prompt import BASE_STOPS, Turn, render, stops_for, trim_to_fit

log = logging.getLogger("ml.replies")

STREAM_PREFIX = "conv-assistant:stream:"
INFLIGHT_PREFIX = "conv-assistant:inflight:"
STREAM_TTL = 300
MAX_SUGGESTIONS = 3
SIMILAR = 0.8  # difflib ratio at or above which two suggestions count as the same


def _queued_ms(ctx: dict) -> float | None:
    """How long the job waited for the worker to pick it up."""
    enqueued = ctx.get("enqueue_time")
    if enqueued is None:
        return None
    return round((ctx["job_start"] - enqueued.timestamp()) * 1000, 1)


def stream_key(job_id: str) -> str:
    return STREAM_PREFIX + job_id


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def near_duplicate(text: str, others: list[str]) -> bool:
    a = _normal(text)
    return any(a == _normal(b) or difflib.SequenceMatcher(None, a, _normal(b)).ratio() >= SIMILAR for b in others)


def generate_suggestions(engine: ReplyEngine, prompt: str, stops: list[str], params: GenerationParams, count: int,
                         on_text=None) -> list[Generation]:
    """The first reply with the caller's parameters (streamed); more, sampled, only if clearly different.

    An empty reply is retried with sampling; if every try is empty, the list is empty.
    """
    first = engine.generate(prompt, params, stops, on_text)
    tries = 0
    while not first.text and tries < 2:
        tries += 1
        retry = params.model_copy(update={"temperature": max(params.temperature, 0.7), "seed": params.seed + tries})
        first = engine.generate(prompt, retry, stops)
    if not first.text:
        return []
    found = [first]
    attempt = 0
    while len(found) < count and attempt < count * 3:
        attempt += 1
        sampled = params.model_copy(update={"temperature": max(params.temperature, 0.9),
                                            "seed": params.seed + 100 + attempt})
        candidate = engine.generate(prompt, sampled, stops)
        if candidate.text and not near_duplicate(candidate.text, [g.text for g in found]):
            found.append(candidate)
    return found


class PromptTooLong(ValueError):
    """A raw prompt that does not fit the model's context window."""


def run_generation(engine: ReplyEngine, turns: list[Turn] | None, prompt: str | None, stops: list[str],
                   adapter_path: str | None, params: GenerationParams, count: int,
                   on_text=None) -> tuple[str, list[Generation]]:
    """Everything the job does with the model, in one call on the model thread: fit the prompt to the
    context window (conversation turns are trimmed from the oldest; a raw prompt must fit), select the
    adapter (no other job's switch can come in between) and generate. Returns (prompt, suggestions)."""
    budget = engine.context_size - params.max_tokens - 8
    if turns is not None:
        turns = trim_to_fit(turns, engine.count_tokens, budget)
        prompt, stops = render(turns), stops_for(turns)
    elif engine.count_tokens(prompt) > budget:
        raise PromptTooLong("The prompt does not fit the model's context window.")
    engine.use_adapter(adapter_path)
    return prompt, generate_suggestions(engine, prompt, stops, params, count, on_text)


async def generate_reply(ctx: dict, request: dict) -> dict:
    """arq job. request: turns ([speaker, text] pairs) or prompt, params, count, cache_key, stream, adapter.

    Returns the result dict, or {"error": code, "message": ...}; the same dict ends the job's stream,
    so a waiting caller wakes with it at once. Never message text in the log.
    """
    redis = ctx["redis"]
    job_id = ctx.get("job_id", "")
    ctx["job_start"] = time.time()
    # who runs it: a waiting caller answers at once if this worker stops, instead of at its timeout
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xadd(stream_key(job_id), {"worker": ctx.get("worker_id", "")}, maxlen=512)
        pipe.expire(stream_key(job_id), STREAM_TTL)
        await pipe.execute()
    result = await _generate(ctx, request)
    pipe = redis.pipeline(transaction=False)  # one round trip for the bookkeeping
    if "error" not in result and ctx["settings"].ml_service_redis_enabled and request.get("cache_key"):
        cache.store(pipe, request["cache_key"], result, ctx["settings"].ml_service_redis_cache_ttl)
    pipe.xadd(stream_key(job_id), {"done": "1", "result": json.dumps(result)}, maxlen=512)
    pipe.expire(stream_key(job_id), STREAM_TTL)
    if request.get("cache_key"):
        pipe.delete(INFLIGHT_PREFIX + request["cache_key"])
    if request.get("in_flight_key"):  # the owner's count of generations under way
        pipe.zrem(request["in_flight_key"], job_id)
    await pipe.execute()
    return result


async def _generate(ctx: dict, request: dict) -> dict:
    engine: ReplyEngine = ctx["engine"]
    redis = ctx["redis"]
    job_id = ctx.get("job_id", "")
    started = time.perf_counter()
    if not engine.status.loaded:
        return {"error": "model_unavailable", "message": engine.status.error or "The model is not loaded."}
    try:
        params = GenerationParams(**request["params"])
        count = max(1, min(int(request.get("count", 1)), MAX_SUGGESTIONS))
        turns = [Turn(*t) for t in request["turns"]] if request.get("turns") is not None else None
    except (TypeError, ValueError) as exc:
        return {"error": "bad_request", "message": str(exc)}

    loop = asyncio.get_running_loop()
    stream = stream_key(job_id)

    def on_text(text: str) -> None:  # from the model thread: hand the write to the event loop
        asyncio.run_coroutine_threadsafe(redis.xadd(stream, {"text": text}, maxlen=512), loop)

    adapter = request.get("adapter")  # the provider's active LoRA: {"id", "label", "path"} or None
    try:
        # tokens go to the stream only when someone watches it (the UI); streaming costs the model CPU
        prompt, found = await on_model_thread(
            run_generation, engine, turns, request.get("prompt"), list(request.get("stop") or BASE_STOPS),
            adapter["path"] if adapter else None, params, count, on_text if request.get("stream") else None)
    except PromptTooLong as exc:
        return {"error": "prompt_too_long", "message": str(exc)}
    except RuntimeError as exc:
        return {"error": "adapter_unavailable", "message": f"The active adapter cannot be used: {exc}"}
    if not found:
        return {"error": "empty_reply", "message": "The model produced an empty reply; try again."}
    result = {
        "response": found[0].text, "confidence": found[0].confidence,
        "suggestions": [{"text": g.text, "confidence": g.confidence} for g in found],
        "modelVersion": cache.model_version(engine.status.model_id, adapter["label"] if adapter else None),
        "prompt": prompt, "tokens": found[0].tokens,
        "generationMs": round((time.perf_counter() - started) * 1000, 1),
        "decoded": sum(g.decoded for g in found), "decodeMs": round(sum(g.seconds for g in found) * 1000, 1),
        "queuedMs": _queued_ms(ctx),
    }
    log.info("reply job=%s tokens=%d suggestions=%d ms=%.0f", job_id, result["tokens"], len(found),
             result["generationMs"])
    return result
