"""The reply job: a GenerateRequest in, suggestions from the worker's engine (ml.suggestions) out;
the result ends the job's stream, so a waiting caller wakes with it at once, and fills the cache."""

from __future__ import annotations

import asyncio
import json
import logging
import time

from pydantic import ValidationError
from redis.exceptions import RedisError

from convassist import keys
from convassist.services import cache, queue
from convassist.worker.contracts import GenerateFailure, GenerateRequest, GenerateResult, Outcome, Suggestion, dump
from ml.engine import ReplyEngine, on_model_thread, queue_on_model_thread
from ml.facts import unsupported
from ml.prompt import BASE_STOPS, Turn
from ml.suggestions import PromptTooLong, run_generation

log = logging.getLogger("convassist.worker.replies")
BOOKKEEPING_TRIES = 5

STREAM_TTL = 300  # seconds a job's stream is kept after its last entry


def _queued_ms(ctx: dict) -> float | None:
    """How long the job waited for the worker to pick it up."""
    enqueued = ctx.get("enqueue_time")
    if enqueued is None:
        return None
    return round((ctx["job_start"] - enqueued.timestamp()) * 1000, 1)


async def generate_reply(ctx: dict, payload: dict) -> dict:
    """arq job: a GenerateRequest (as JSON) in, the GenerateResult or GenerateFailure (as JSON) out.
    Never message text in the log."""
    redis = ctx["redis"]
    job_id = ctx.get("job_id", "")
    stream = keys.stream_key(job_id)
    ctx["job_start"] = time.time()
    # who runs it: a waiting caller answers at once if this worker stops, instead of at its timeout
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xadd(stream, {"worker": ctx.get("worker_id", "")}, maxlen=512)
        pipe.expire(stream, STREAM_TTL)
        await pipe.execute()
    try:
        request = GenerateRequest.model_validate(payload)
    except ValidationError as exc:
        request, outcome = None, GenerateFailure(error="bad_request", message=f"{exc.error_count()} invalid field(s).")
    else:
        try:
            outcome = await _generate(ctx, request)
        except Exception as exc:  # whatever went wrong, the caller gets an answer now and the bookkeeping below runs
            log.error("reply job=%s failed: %s", job_id, type(exc).__name__)  # the type only: no text
            outcome = GenerateFailure(error="generation_failed", message="The model could not make a reply; try again.")
    result = dump(outcome)

    def bookkeeping(pipe) -> None:  # one round trip
        if request is not None and request.cache_key and isinstance(outcome, GenerateResult) \
                and ctx["settings"].ml_service_redis_enabled:
            cache.store(pipe, request.cache_key, result, ctx["settings"].ml_service_redis_cache_ttl)
        pipe.xadd(stream, {"done": "1", "result": json.dumps(result)}, maxlen=512)
        pipe.expire(stream, STREAM_TTL)
        if request is not None:  # the claim, if still this job's (a newer job may hold it), and the owner's count
            pipe.eval(queue.RELEASE_CLAIM, 2, keys.claim_key(request.cache_key) if request.cache_key else "",
                      request.in_flight_key or "", job_id)

    # a Redis blip just now would lose the reply (its waiter would wait out its timeout): a few tries, 3 s of
    # pauses in all; the writes are idempotent but for the stream's "done" entry, which the waiter reads once
    for attempt in range(BOOKKEEPING_TRIES):
        try:
            async with redis.pipeline(transaction=False) as pipe:
                bookkeeping(pipe)
                await pipe.execute()
            break
        except (OSError, RedisError) as exc:
            if attempt == BOOKKEEPING_TRIES - 1:
                raise
            log.warning("reply job=%s bookkeeping failed (%s); trying again", job_id, type(exc).__name__)
            await asyncio.sleep(0.2 * 2 ** attempt)
    return result


async def stream_text(redis, stream: str, text: str) -> None:
    """The reply so far, to the job's stream, which expires again with each write: a generation that goes on
    after arq gave up on its job (timed out) must not leave reply text in Redis for good."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xadd(stream, {"text": text}, maxlen=512)
        pipe.expire(stream, STREAM_TTL)
        await pipe.execute()


_keeping: set[asyncio.Future] = set()  # saves of conversation state in flight (kept alive until done)


def _kept(future: asyncio.Future) -> None:
    _keeping.discard(future)
    if not future.cancelled() and future.exception() is not None:
        log.warning("keeping the conversation's state failed: %s", type(future.exception()).__name__)


async def _generate(ctx: dict, request: GenerateRequest) -> Outcome:
    engine: ReplyEngine = ctx["engine"]
    redis = ctx["redis"]
    job_id = ctx.get("job_id", "")
    started = time.perf_counter()
    if not engine.status.loaded:
        return GenerateFailure(error="model_unavailable", message=engine.status.error or "The model is not loaded.")
    turns = [Turn(*t) for t in request.turns] if request.turns is not None else None
    if turns is None and request.prompt is None:
        return GenerateFailure(error="bad_request", message="Either turns or a prompt is required.")

    loop = asyncio.get_running_loop()
    stream = keys.stream_key(job_id)

    def on_text(text: str) -> None:  # from the model thread: hand the write to the event loop
        asyncio.run_coroutine_threadsafe(stream_text(redis, stream, text), loop)

    adapter = request.adapter
    try:
        # tokens go to the stream only when someone watches it (the UI); streaming costs the model CPU
        prompt, found = await on_model_thread(
            run_generation, engine, turns, request.prompt, list(BASE_STOPS), adapter.path if adapter else None,
            request.params, request.count, on_text if request.stream else None, request.session)
        # what the model read of the conversation is kept next on the model thread (≈7 ms for 8 MB), while
        # the result travels: a follow-up then reads only what is new (ml.engine.ConversationMemory)
        _keeping.add(keeping := queue_on_model_thread(engine.keep_pending))
        keeping.add_done_callback(_kept)
    except PromptTooLong as exc:
        return GenerateFailure(error="prompt_too_long", message=str(exc))
    except RuntimeError as exc:
        return GenerateFailure(error="adapter_unavailable", message=f"The active adapter cannot be used: {exc}")
    if not found:
        return GenerateFailure(error="empty_reply", message="The model produced an empty reply; try again.")
    result = GenerateResult(
        response=found[0].text, confidence=found[0].confidence,
        suggestions=[Suggestion(text=g.text, confidence=g.confidence,
                                unsupported_numbers=unsupported(g.text, [prompt])) for g in found],
        model_version=cache.model_version(engine.status.model_id, adapter.label if adapter else None),
        prompt=prompt, tokens=found[0].tokens, generation_ms=round((time.perf_counter() - started) * 1000, 1),
        decoded=sum(g.decoded for g in found), decode_ms=round(sum(g.seconds for g in found) * 1000, 1),
        queued_ms=_queued_ms(ctx), prompt_evaluated=found[0].prompt_evaluated,
        first_token_ms=round(found[0].first_token_seconds * 1000, 2))
    log.info("reply job=%s tokens=%d suggestions=%d ms=%.0f", job_id, result.tokens, len(found),
             result.generation_ms)
    return result
