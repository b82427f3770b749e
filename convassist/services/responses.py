"""Reply suggestions: build the prompt from the conversation, answer from the cache or the worker,
record the response, and turn the provider's verdict into a training sample.

The app owns every GeneratedResponse write; the worker (convassist/worker/replies.py) only generates and caches.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Literal, Optional

import sqlalchemy as sa
from arq.jobs import JobStatus
from pydantic import BaseModel, Field
from redis.exceptions import RedisError
from sqlmodel import Session

from convassist import keys
from convassist.db import run_in_transaction, session_scope, transaction
from convassist.models import Conversation, GeneratedResponse, Message, TrainingSample, as_utc, utcnow
from convassist.schemas import CamelModel, CleanStr
from convassist.services import cache, contacts, live, queue, ratelimit, training
from convassist.services.errors import Conflict, DomainError, NotFound, Unavailable
from convassist.services.examples import examples_for, shows_examples, with_examples, without_examples
from convassist.settings import get_settings
from convassist.worker.contracts import (AdapterRef, GenerateFailure, GenerateRequest, GenerateResult, Outcome,
                                         Suggestion, parse_outcome)
from convassist.worker.status import WorkerModel
from ml import garbage
from ml.params import GenerationParams
from ml.prompt import DEFAULT_MAX_HISTORY, Turn, render, speaker_for
from ml.suggestions import MAX_SUGGESTIONS

log = logging.getLogger(__name__)

GENERATION_TIMEOUT = 120.0  # seconds a caller waits for the worker before giving up
MAX_HISTORY_LIMIT = 50
AGAIN_TEMPERATURE = 0.8  # suggestions asked for again after a verdict: sampled, so they differ
AGAIN_SEED_STEP = 1000  # … with a seed of their own for each new set
_background: set[asyncio.Task] = set()  # keeps fire-and-forget tasks alive


@dataclass(frozen=True)
class ReplyRequest:
    """What to generate for whom: conversation turns (trimmed by the worker) or a raw prompt, with
    the provider's active adapter (None: the base model)."""

    provider_id: uuid.UUID
    prompt: str
    turns: list[list[str]] | None
    params: GenerationParams
    count: int = 1
    adapter: training.ActiveAdapter | None = None
    ahead: bool = False  # computed ahead in the background (services.ahead): its own budget
    session: str | None = None  # the conversation (owner:id), whose reading the worker may keep


# -- the worker's model ----------------------------------------------------------------------------
async def worker_model() -> WorkerModel:
    """The model status a running worker published; Unavailable (503) when Redis, every worker or the
    model is down. Any one live worker with its model loaded is enough."""
    try:
        workers = await queue.live_workers()
    except Unavailable as exc:
        raise Unavailable("Redis is not reachable; suggestions are unavailable.", code=exc.code) from exc
    if not workers:
        raise Unavailable("The reply worker is not running.", code="worker_unavailable")
    loaded = [w.model for w in workers if w.model.loaded]
    if not loaded:
        raise Unavailable(f"The model is not loaded: {workers[0].model.error}", code="model_unavailable")
    return loaded[0]


# -- prompts ---------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _window_query() -> sa.Select:
    """The last :max_history messages up to and including :message_id of :provider_id's, newest
    first. Built once: constructing it costs more Python time than running it."""
    target = sa.select(Message.conversation_id, Message.sent_at, Message.id).where(
        Message.id == sa.bindparam("message_id"), Message.provider_id == sa.bindparam("provider_id")).cte("target")
    return (sa.select(Message.direction, Message.sender_id, Message.text, Conversation.is_group,
                      Message.conversation_id, Message.sent_at, Conversation.last_message_at,
                      Conversation.message_count)
            .join(target, Message.conversation_id == target.c.conversation_id)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.retracted.is_(False),
                   sa.or_(Message.sent_at < target.c.sent_at,
                          sa.and_(Message.sent_at == target.c.sent_at, Message.id <= target.c.id)))
            .order_by(Message.sent_at.desc(), Message.id.desc()).limit(sa.bindparam("max_history")))


def window_step(max_history: int) -> int:
    """How far a conversation's window start moves at once (see window_size)."""
    return max(1, max_history // 2)


def window_size(rows, max_history: int, step: int) -> int:
    """How many of the newest messages (rows, newest first, up to the target) the prompt holds.

    Not always the last max_history: when the target is the conversation's newest message, the
    window's start moves only every `step` messages (so it holds max_history to max_history+step-1),
    and a follow-up prompt begins exactly as the previous one did — the worker then reads only the
    new messages (ml.engine.ConversationMemory) and the reply is the one a fresh read would give."""
    if not rows:
        return 0
    newest = rows[0]
    if newest.last_message_at is None or newest.sent_at < newest.last_message_at:
        return max_history  # an older message: the plain window
    count = newest.message_count
    return max_history if count <= max_history else max_history + (count - max_history) % step


def conversation_turns(session: Session, provider_id: uuid.UUID, message_id: uuid.UUID,
                       max_history: int, examples: int = 0) -> tuple[list[Turn], uuid.UUID, int]:
    """The prompt turns: the last max_history messages up to and including the target, oldest first
    (retracted left out; tapbacks are never messages), with up to `examples` of the provider's past
    exchanges like the client's newest messages before them (services/examples.py); the
    conversation's id; how many examples the turns hold. One query for the window: it is on every
    suggestion's path."""
    step = window_step(max_history)
    rows = session.execute(_window_query(), {"message_id": message_id, "provider_id": provider_id,
                                             "max_history": max_history + step - 1}).all()
    if not rows:
        exists = session.execute(sa.select(Message.id).where(Message.id == message_id,
                                                             Message.provider_id == provider_id)).first()
        if exists is None:
            raise NotFound("No such message.")
    conversation_id = rows[0].conversation_id if rows else None
    rows = [r for r in reversed(rows[:window_size(rows, max_history, step)]) if r.text and r.text.strip()]
    is_group = bool(rows) and rows[0].is_group
    names = contacts.names_for(session, provider_id, {r.sender_id for r in rows if r.sender_id}) if is_group else {}
    turns = [Turn(speaker_for(r.direction, names.get(r.sender_id) or r.sender_id, is_group), r.text) for r in rows]
    if not turns:
        raise DomainError("There is no message text to reply to.", code="nothing_to_reply_to", status=422)
    found = examples_for(session, provider_id, conversation_id, turns, is_group, examples)
    return with_examples(turns, found), conversation_id, len(found)


# -- generation ------------------------------------------------------------------------------------
def _cache_key(request: ReplyRequest, model: WorkerModel) -> str:
    # per provider: one provider's replies are never another's cache hit, even for the same text;
    # the adapter's id, not its label: every provider has a "lora-v1"
    return cache.cache_key(owner=str(request.provider_id), model_id=model.model_id,
                           file_identity=model.file_identity,
                           adapter_version=request.adapter.id if request.adapter else None, prompt=request.prompt,
                           params=request.params.model_dump(), count=request.count)


def _owner(provider_id: uuid.UUID, ahead: bool) -> str:
    """Whose generation budget a request counts against: the provider's, or their budget for suggestions
    computed ahead."""
    return str(provider_id) + (":ahead" if ahead else "")


async def start_generation(request: ReplyRequest, model: WorkerModel, *,
                           stream: bool = False) -> tuple[str | None, GenerateResult | None, str]:
    """Answer from the cache, or join the identical generation in flight, or enqueue one on the worker
    whose model status (worker_model) is `model`.

    Returns (job_id, cached_result, cache_key): exactly one of job_id / cached_result is set.
    """
    key = _cache_key(request, model)
    settings = get_settings()
    if not request.ahead:  # every request counts here, a cache hit or a join too: each stores a row or a result
        requests = ratelimit.Limit("generate-requests", settings.ml_service_requests_per_minute, 60)
        await asyncio.to_thread(ratelimit.hit, requests, str(request.provider_id))
    owner = _owner(request.provider_id, request.ahead)
    limits = queue.OwnerLimits(rate_key=ratelimit.KEY_PREFIX + "generate:" + owner,
                               rate=settings.ml_service_ahead_per_minute if request.ahead
                               else settings.ml_service_generations_per_minute, window=60,
                               in_flight_key=keys.in_flight_jobs_key(owner),
                               in_flight=1 if request.ahead else settings.ml_service_max_in_flight)
    try:
        payload = GenerateRequest(
            turns=request.turns, prompt=request.prompt if request.turns is None else None, params=request.params,
            count=request.count, cache_key=key, stream=stream, in_flight_key=limits.in_flight_key,
            session=request.session,
            adapter=AdapterRef(**request.adapter.__dict__) if request.adapter else None)
        outcome, value = await queue.cached_or_enqueue(
            "generate_reply", payload.model_dump(mode="json", by_alias=True), job_id=f"gen:{uuid.uuid4().hex}",
            cache_key=key if settings.ml_service_redis_enabled else None,
            # the same request in flight is generated once: later callers wait on the first one's job
            claim_key=keys.claim_key(key), claim_seconds=int(GENERATION_TIMEOUT), limits=limits)
    except (OSError, RedisError) as exc:
        raise Unavailable("Redis is not reachable; suggestions are unavailable.", code="queue_unavailable") from exc
    if outcome == "rate_limited":
        wait = max(1, int(value))
        raise DomainError(f"Too many suggestions asked for in a minute; try again in {wait} seconds.",
                          code="rate_limited", status=429, retry_after=wait)
    if outcome == "busy":
        raise DomainError(f"You already have {limits.in_flight} suggestions being written; wait for one to "
                          "finish.", code="too_many_in_flight", status=429, retry_after=2)
    if outcome == "cached":
        return None, GenerateResult.model_validate(cache.decode(value)), key
    job_id = value.decode()
    return job_id, None, key


async def job_result(job_id: str, timeout: float | None = GENERATION_TIMEOUT) -> Outcome | None:
    """The worker's outcome for job_id; None while it is still running (timeout=None: don't wait).

    Waiting blocks on the job's stream until its last entry, which carries the result, instead of
    polling: polling Redis every few milliseconds for a whole generation takes CPU from the model.
    """
    try:
        return await _job_result(job_id, timeout)
    except (OSError, RedisError) as exc:
        raise Unavailable("Redis is not reachable; try again shortly.", code="queue_unavailable") from exc


async def _job_result(job_id: str, timeout: float | None) -> Outcome | None:
    pool = await queue.get_pool()
    if timeout is not None:
        try:
            return await asyncio.wait_for(_until_done(pool, keys.stream_key(job_id)), timeout)
        except asyncio.TimeoutError:
            raise Unavailable("The worker did not answer in time.", code="worker_timeout") from None
    # not waiting: the stream's last entry (kept STREAM_TTL), else arq's stored result (kept an hour)
    last = await pool.xrevrange(keys.stream_key(job_id), count=1)
    result = _entry_result(last[0][1]) if last else None
    if result is not None:
        return result
    job = queue.job_handle(job_id, pool)
    if await job.status() != JobStatus.complete:
        return None
    try:
        return parse_outcome(await job.result(timeout=5.0, poll_delay=queue.RESULT_POLL_DELAY))
    except asyncio.TimeoutError:
        raise Unavailable("The worker did not answer in time.", code="worker_timeout") from None
    except Exception as exc:  # the job itself crashed in the worker
        return GenerateFailure(error="generation_failed",
                               message=f"Generation failed in the worker ({type(exc).__name__}).")


async def _job_outcome(job_id: str, cache_key: str, in_flight_key: str) -> Outcome:
    """The worker's result, or a GenerateFailure saying why there is none. A job whose worker died
    gives up its claims, so that asking again queues a new job instead of joining the dead one."""
    try:
        return await job_result(job_id)
    except Unavailable as exc:
        if exc.code == "worker_unavailable":
            try:
                await queue.release_claim(keys.claim_key(cache_key), in_flight_key, job_id)
            except (OSError, RedisError):
                pass  # Redis is gone too: the claims expire with it (claim_seconds)
        return GenerateFailure(error=exc.code, message=exc.message)


async def _still_served(worker: str | None) -> bool:
    """After a quiet moment on a job's stream: is the worker that took the job (or, before one did,
    any worker) still there?"""
    return await queue.worker_alive(worker) if worker else bool(await queue.live_workers())


def _field(fields: dict, name: str) -> str | None:
    """A stream entry's field as text (Redis hands back bytes)."""
    value = fields.get(name.encode(), fields.get(name))
    return value.decode() if isinstance(value, bytes) else value


def _entry_result(fields: dict) -> Outcome | None:
    """The outcome a stream entry carries (only the last one does)."""
    result = _field(fields, "result")
    return None if result is None else parse_outcome(json.loads(result))


async def _until_done(pool, key: str) -> Outcome:
    """Block on the job's stream until its last entry, which carries the result. A connection Redis dropped
    is read again once, on a new connection (the stream outlives it); Redis not answering that either is
    down, and the caller hears so at once (queue_unavailable)."""
    last_id, worker, retried = "0", None, False
    while True:
        try:
            entries = await pool.xread({key: last_id}, block=1000, count=500)
            if not entries and not await _still_served(worker):
                raise Unavailable("The reply worker stopped while writing this; try again.",
                                  code="worker_unavailable")
        except (OSError, RedisError):
            if retried:
                raise
            retried = True
            await asyncio.sleep(0.2)
            continue
        retried = False
        for _, items in entries or []:
            for entry_id, fields in items:
                last_id = entry_id
                worker = _field(fields, "worker") or worker
                result = _entry_result(fields)
                if result is not None:
                    return result


def _in_background(work) -> None:
    """Run a coroutine without waiting for it (kept referenced until it is done)."""
    task = asyncio.create_task(work)
    _background.add(task)
    task.add_done_callback(_background.discard)


# -- responses for messages ------------------------------------------------------------------------
class ResponsePublic(CamelModel):
    """A response as its provider sees it (API and UI)."""

    response_id: uuid.UUID
    message_id: uuid.UUID
    status: Literal["generating", "completed", "failed", "accepted", "edited", "rejected"]
    response: Optional[str]
    confidence: Optional[float]
    model_version: Optional[str]
    cached: bool
    suggestions: list[Suggestion]
    edited_response: Optional[str] = None  # what the provider sent instead, once edited
    chosen_suggestion: Optional[int] = None  # the suggestion used or edited (index in `suggestions`)
    error: Optional[str]
    stream_key: Optional[str]  # the job's stream, to read the reply as it is written (stream_text)
    created_at: datetime
    completed_at: Optional[datetime]


def response_view(row: GeneratedResponse) -> ResponsePublic:
    return ResponsePublic(
        response_id=row.id, message_id=row.message_id, status=row.status, response=row.response,
        confidence=row.confidence, model_version=row.model_version, cached=bool(row.cached),
        suggestions=row.suggestions or [], edited_response=row.edited_response,
        chosen_suggestion=row.chosen_suggestion, error=row.error,
        stream_key=keys.stream_key(row.job_id) if row.job_id else None,
        created_at=as_utc(row.created_at), completed_at=as_utc(row.completed_at))


def _result_fields(outcome: Outcome, *, cached: bool) -> dict[str, Any]:
    """The columns a worker's outcome fills in."""
    if isinstance(outcome, GenerateFailure):
        return {"status": "failed", "error": outcome.message, "completed_at": utcnow()}
    return {"status": "completed", "response": outcome.response, "confidence": outcome.confidence,
            "suggestions": [s.model_dump() for s in outcome.suggestions], "model_version": outcome.model_version,
            "prompt": outcome.prompt, "generation_ms": int(outcome.generation_ms), "cached": cached,
            "completed_at": utcnow()}


def _store_result(response_id: uuid.UUID, fields: dict[str, Any]) -> GeneratedResponse:
    """Complete a generating row in one UPDATE … RETURNING (a row finished meanwhile stays as it is)."""
    with session_scope() as session:
        row = session.execute(
            sa.update(GeneratedResponse)
            .where(GeneratedResponse.id == response_id, GeneratedResponse.status == "generating")
            .values(**fields).returning(GeneratedResponse)).scalar_one_or_none()
        if row is not None:  # an open conversation page shows suggestions that were computed ahead
            live.changed(session, row.provider_id, "suggestions")
        return row or session.get(GeneratedResponse, response_id)


async def _finish(response_id: uuid.UUID, job_id: str, cache_key: str,
                  in_flight_key: str) -> tuple[GeneratedResponse, Outcome]:
    """Wait for the job's outcome and store it on the response: how every generated response is
    completed, whether its caller waits (200) or not (202, the UI). A response whose waiter went away
    with its app process is completed by the next reader (get_response)."""
    outcome = await _job_outcome(job_id, cache_key, in_flight_key)
    row = await asyncio.to_thread(_store_result, response_id, _result_fields(outcome, cached=False))
    return row, outcome


async def _read_beside_worker_model(work, session: Session | None) -> tuple[Any, WorkerModel]:
    """work's result (see _read) and the worker's model status, fetched side by side: neither needs
    the other, and both are on every suggestion's path. The read's error comes first."""
    read, model = await asyncio.gather(asyncio.to_thread(_read, work, session), worker_model(),
                                       return_exceptions=True)
    for outcome in (read, model):
        if isinstance(outcome, BaseException):
            raise outcome
    return read, model


def _read(work, session: Session | None):
    """work(session) in the caller's session, ending its transaction so that no pooled connection is
    held while the worker generates; without one, in a session of its own."""
    if session is None:
        with session_scope() as own:
            return work(own)
    with transaction(session):
        return work(session)


async def generate_for_message(provider_id: uuid.UUID, message_id: uuid.UUID, *,
                               max_history: int = DEFAULT_MAX_HISTORY, count: int = 1, temperature: float = 0.0,
                               background: bool = False, ahead: bool = False,
                               session: Session | None = None) -> ResponsePublic:
    """Suggest replies to a message. background=True returns at once with status `generating`;
    ahead=True: computed before anyone asked (services.ahead), on its own budget.

    session: where to read the conversation (the API passes the request's); None opens one.
    """
    if not 1 <= max_history <= MAX_HISTORY_LIMIT:
        raise DomainError(f"maxHistory must be between 1 and {MAX_HISTORY_LIMIT}.", code="invalid_max_history",
                          status=422)
    if not 1 <= count <= MAX_SUGGESTIONS:
        raise DomainError(f"count must be between 1 and {MAX_SUGGESTIONS}.", code="invalid_count", status=422)

    def load(session: Session) -> tuple[tuple[list[Turn], uuid.UUID, int], training.ActiveAdapter | None, int]:
        return (conversation_turns(session, provider_id, message_id, max_history,
                                   get_settings().ml_service_examples),
                training.active_adapter(session, provider_id), _verdicts_on(session, provider_id, message_id))

    ((turns, conversation_id, shown), adapter, verdicts), model = await _read_beside_worker_model(load, session)
    # asked again after the provider used, edited or rejected a set: other replies, not that set again
    params = (GenerationParams(temperature=temperature) if not verdicts else
              GenerationParams(temperature=max(temperature, AGAIN_TEMPERATURE), seed=AGAIN_SEED_STEP * verdicts))
    request = ReplyRequest(provider_id, render(turns), [[t.speaker, t.text] for t in turns], params, count, adapter,
                           ahead=ahead, session=f"{provider_id}:{conversation_id}")
    job_id, hit, key = await start_generation(request, model, stream=background)

    def create() -> GeneratedResponse:
        with session_scope() as session:
            row = GeneratedResponse(provider_id=provider_id, message_id=message_id, prompt=request.prompt,
                                    # examples: how many of the provider's past exchanges the prompt shows
                                    params={"temperature": temperature, "count": count, "maxHistory": max_history,
                                            "examples": shown},
                                    job_id=job_id, cache_key=key, status="generating")
            if hit is not None:
                for column, value in _result_fields(hit, cached=True).items():
                    setattr(row, column, value)
            session.add(row)
            return row

    # the row is written while the worker generates (the job is already queued)
    row = await asyncio.to_thread(create)
    if hit is not None:
        return response_view(row)

    flying = keys.in_flight_jobs_key(_owner(provider_id, ahead))  # an ahead job's is its ahead budget's
    if background:
        _in_background(_finish(row.id, job_id, key, flying))
        return response_view(row)
    row, outcome = await _finish(row.id, job_id, key, flying)
    if isinstance(outcome, GenerateFailure):  # stored as failed; the caller gets a clear error, never an empty reply
        log.info("generation failed response=%s code=%s", row.id, outcome.error)
        raise DomainError(outcome.message, code=outcome.error, status=outcome.http_status)
    return response_view(row)


def ranked(suggestions: list[Suggestion]) -> list[tuple[int, Suggestion]]:
    """Suggestions in the order the provider should read them, each with its place in the response (what
    a verdict names): a reply that looks like garbage (a word over and over: what a small model writes
    when it has nothing to go on; ml.garbage) last; before it, those whose numbers all come
    from the conversation or the provider's examples (a made-up time or price is the worst kind of
    wrong), then the most confident."""
    return sorted(enumerate(suggestions), key=lambda pair: (garbage.problem(pair[1].text) is not None,
                                                            bool(pair[1].unsupported_numbers), -pair[1].confidence))


def _verdicts_on(session: Session, provider_id: uuid.UUID, message_id: uuid.UUID) -> int:
    """How many suggestion sets for this message the provider already used, edited or rejected."""
    return session.execute(sa.select(sa.func.count()).select_from(GeneratedResponse).where(
        GeneratedResponse.provider_id == provider_id, GeneratedResponse.message_id == message_id,
        GeneratedResponse.status.in_(("accepted", "edited", "rejected")))).scalar_one()


async def get_response(provider_id: uuid.UUID, response_id: uuid.UUID) -> ResponsePublic:
    """A response with its current status. One still `generating` whose waiter is gone (its app process
    died) is completed here from the job's outcome, or marked failed once no outcome can come."""
    def load():
        with session_scope() as session:
            row = session.get(GeneratedResponse, response_id)
            if row is None or row.provider_id != provider_id:
                raise NotFound("No such response.")
            return row

    row = await asyncio.to_thread(load)
    if row.status == "generating" and row.job_id:
        row = await _settle(row.id, row.job_id, as_utc(row.created_at)) or row
    return response_view(row)


ABANDONED_AFTER = timedelta(seconds=GENERATION_TIMEOUT + 30)  # no waiter is left for a row generating longer


async def _settle(response_id: uuid.UUID, job_id: str, created_at: datetime) -> GeneratedResponse | None:
    """Complete a row still `generating` from its job's outcome, if one came; past ABANDONED_AFTER, with
    none, mark it failed. Returns the row as stored then; None while its job may still answer."""
    try:
        result = await job_result(job_id, timeout=None)
    except Unavailable:
        result = None
    if result is None and utcnow() - created_at > ABANDONED_AFTER:
        result = GenerateFailure(error="worker_timeout", message="No reply came; try again.")
    if result is None:
        return None
    return await asyncio.to_thread(_store_result, response_id, _result_fields(result, cached=False))


async def settle_abandoned(limit: int = 100) -> int:
    """Rows still `generating` past ABANDONED_AFTER, whose waiter went away — its app process died, an API
    client never polled its 202, a worker stopped while computing suggestions ahead (nobody ever reads
    those with get_response, and the page shows only finished rows): completed from their job's outcome
    (the suggestions computed ahead then show), else failed. Run by every worker's sweep; returns how many
    it settled."""
    def stale():
        with session_scope() as session:
            return session.execute(
                sa.select(GeneratedResponse.id, GeneratedResponse.job_id, GeneratedResponse.created_at)
                .where(GeneratedResponse.status == "generating", GeneratedResponse.job_id.is_not(None),
                       GeneratedResponse.created_at < utcnow() - ABANDONED_AFTER)
                .order_by(GeneratedResponse.created_at).limit(limit)).all()

    settled = 0
    for response_id, job_id, created_at in await asyncio.to_thread(stale):
        row = await _settle(response_id, job_id, as_utc(created_at))
        settled += row is not None and row.status != "generating"
    return settled


def latest_for_message(session: Session, provider_id: uuid.UUID, message_id: uuid.UUID) -> ResponsePublic | None:
    """The newest response with suggestions to one of the provider's messages, with what was done
    with it: what the conversation shows when it is opened again."""
    row = session.execute(
        sa.select(GeneratedResponse)
        .where(GeneratedResponse.provider_id == provider_id, GeneratedResponse.message_id == message_id,
               GeneratedResponse.status.in_(("completed", "accepted", "edited", "rejected")))
        .order_by(GeneratedResponse.created_at.desc()).limit(1)).scalar_one_or_none()
    return None if row is None else response_view(row)


# -- the provider's verdict ------------------------------------------------------------------------
class Verdict(CamelModel):
    """What the provider did with a suggestion."""

    action: Literal["accept", "edit", "reject"]
    edited_response: Optional[CleanStr] = Field(None, max_length=5000)
    # which suggestion was used or edited (0, the response itself, unless said)
    suggestion_index: Optional[int] = Field(None, ge=0, lt=MAX_SUGGESTIONS)
    reason: Optional[CleanStr] = Field(None, max_length=1000)


def _sample_prompt(row: GeneratedResponse) -> str:
    """The prompt a used or edited suggestion teaches the voice with: as the model read it, examples and
    all, in half of the samples, and without its examples in the other half (the rule of every sample,
    services/examples.shows_examples)."""
    shown = int((row.params or {}).get("examples") or 0)
    return row.prompt if shows_examples(str(row.id)) else without_examples(row.prompt or "", shown)


def act(session: Session, provider_id: uuid.UUID, response_id: uuid.UUID, verdict: Verdict) -> GeneratedResponse:
    """accept → a sample of the chosen suggestion (quality = its confidence); edit → a sample of the
    edited text (quality 1.0); reject → status rejected with the reason, no sample. Acting twice is
    an error."""
    action, edited_response, reason = verdict.action, verdict.edited_response, verdict.reason
    row = session.execute(sa.select(GeneratedResponse).where(GeneratedResponse.id == response_id)
                          .with_for_update()).scalar_one_or_none()
    if row is None or row.provider_id != provider_id:
        raise NotFound("No such response.")
    if row.status in ("accepted", "edited", "rejected"):
        raise Conflict(f"This response was already {row.status}.", code="already_actioned")
    if row.status != "completed":
        raise Conflict("Only a completed response can be accepted, edited or rejected.", code="not_completed")
    chosen = verdict.suggestion_index or 0
    if action != "reject" and chosen >= max(1, len(row.suggestions or [])):
        raise DomainError(f"suggestionIndex {chosen} is not one of this response's suggestions.",
                          code="invalid_suggestion_index", status=422)
    if action == "edit":
        edited_response = (edited_response or "").strip()
        if not edited_response:
            raise DomainError("editedResponse is required to edit.", code="missing_edited_response", status=422)
        sample = TrainingSample(provider_id=provider_id, response_id=row.id, input_context=_sample_prompt(row),
                                expected_output=edited_response, source="edited", quality=1.0)
        row.edited_response = edited_response
        session.add(sample)
    elif action == "accept":  # the chosen suggestion as it was, weighted by the model's confidence in it
        used = (row.suggestions or [{"text": row.response, "confidence": row.confidence}])[chosen]
        session.add(TrainingSample(provider_id=provider_id, response_id=row.id, input_context=_sample_prompt(row),
                                   expected_output=used["text"], source="accepted",
                                   quality=float(used.get("confidence") or 0.0)))
    else:
        row.reject_reason = (reason or "").strip() or None
    if action != "reject":
        row.chosen_suggestion = chosen
        live.changed(session, provider_id, "samples")
    row.status = {"accept": "accepted", "edit": "edited", "reject": "rejected"}[action]
    row.actioned_at = utcnow()
    session.add(row)
    session.flush()
    return row


async def record_action(provider_id: uuid.UUID, response_id: uuid.UUID, verdict: Verdict) -> ResponsePublic:
    """act() in its own transaction."""
    return await asyncio.to_thread(run_in_transaction,
                                   lambda session: response_view(act(session, provider_id, response_id, verdict)))


# -- raw-prompt completions (/api/ml; snake_case fields, as their first clients expect) ------------
class MLAnswer(BaseModel):
    response: str
    confidence: float
    model_version: str
    cached: bool

    @classmethod
    def of(cls, result: GenerateResult, *, cached: bool) -> MLAnswer:
        return cls(response=result.response, confidence=result.confidence, model_version=result.model_version,
                   cached=cached)


class MLJobCreated(BaseModel):
    job_id: str


class MLJobStatus(BaseModel):
    job_id: str
    status: str  # arq's job status, or "failed"
    result: Optional[MLAnswer] = None
    error: Optional[str] = None


async def generate_from_prompt(provider_id: uuid.UUID, prompt: str, *, max_tokens: int, temperature: float,
                               background: bool = False,
                               session: Session | None = None) -> MLAnswer | MLJobCreated:
    """A completion of a raw prompt (no conversation, nothing stored in the database), or with
    background=True the job to poll (ml_job); session as for generate_for_message."""
    if not prompt.strip():
        raise DomainError("prompt must not be empty.", code="empty_prompt", status=422)
    adapter, model = await _read_beside_worker_model(lambda s: training.active_adapter(s, provider_id), session)
    request = ReplyRequest(provider_id, prompt, None,
                           GenerationParams(max_tokens=max_tokens, temperature=temperature), adapter=adapter)
    job_id, hit, key = await start_generation(request, model)
    cached = None if hit is None else MLAnswer.of(hit, cached=True)
    if background:
        pool = await queue.get_pool()
        if cached is not None:  # nothing to run: a finished pseudo-job that holds the cached answer
            job_id = f"cached:{uuid.uuid4().hex}"
            await pool.set(keys.ML_CACHED_RESULT_PREFIX + job_id, cached.model_dump_json(), ex=3600)
        # a job has one owner for good: set once, never overwritten (job ids are fresh per provider,
        # and a joined in-flight job is the same provider's since the claim key includes the owner)
        if not await pool.set(keys.ML_JOB_OWNER_PREFIX + job_id, str(provider_id), ex=3600, nx=True):
            owner = await pool.get(keys.ML_JOB_OWNER_PREFIX + job_id)
            if (owner.decode() if isinstance(owner, bytes) else owner) != str(provider_id):
                raise Conflict("This job belongs to someone else.", code="job_conflict")
        return MLJobCreated(job_id=job_id)
    if cached is not None:
        return cached
    result = await _job_outcome(job_id, key, keys.in_flight_jobs_key(_owner(provider_id, False)))
    if isinstance(result, GenerateFailure):
        raise DomainError(result.message, code=result.error, status=result.http_status)
    return MLAnswer.of(result, cached=False)


async def ml_job(provider_id: uuid.UUID, job_id: str) -> MLJobStatus:
    """Status (and result when complete) of a job started by generate_from_prompt(background=True)."""
    pool = await queue.get_pool()
    owner = await pool.get(keys.ML_JOB_OWNER_PREFIX + job_id)
    if owner is None or (owner.decode() if isinstance(owner, bytes) else owner) != str(provider_id):
        raise NotFound("No such job.")
    stored = await pool.get(keys.ML_CACHED_RESULT_PREFIX + job_id)
    if stored is not None:
        return MLJobStatus(job_id=job_id, status="complete", result=MLAnswer.model_validate_json(stored))
    status = await queue.job_handle(job_id, pool).status()
    if status == JobStatus.complete:
        result = await job_result(job_id, timeout=None)
        if isinstance(result, GenerateFailure):
            return MLJobStatus(job_id=job_id, status="failed", error=result.message)
        if result is not None:
            return MLJobStatus(job_id=job_id, status=status.value, result=MLAnswer.of(result, cached=False))
    return MLJobStatus(job_id=job_id, status=status.value)


async def stream_text(key: str, *, timeout: float = GENERATION_TIMEOUT):
    """The reply so far, as the worker streams it to `key` (a response's streamKey); ends when the job does."""
    pool = await queue.get_pool()
    last_id, worker = "0", None
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        entries = await pool.xread({key: last_id}, block=500, count=100)
        if not entries and not await _still_served(worker):
            return  # the worker is gone: the response is stored as failed, and the page says so
        for _, items in entries or []:
            for entry_id, fields in items:
                last_id = entry_id
                if _field(fields, "done"):
                    return
                worker = _field(fields, "worker") or worker  # the first entry names the worker
                text = _field(fields, "text")
                if text is not None:
                    yield text
