"""The app's side of the job queue: an arq pool per event loop, enqueue (waking the worker),
enqueue-and-wait with tight polling, and the suggestion path's cache-or-enqueue in one round trip."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.jobs import Job
from arq.utils import timestamp_ms
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from convassist.services.errors import Unavailable
from convassist.settings import get_settings
from convassist.keys import wake_key, worker_key, workers_key
from convassist.worker import codec
from convassist.worker.arq_seams import job_write
from convassist.worker.status import LIVE_WORKERS_SCRIPT, WorkerStatus

RESULT_POLL_DELAY = 0.002  # arq's default (0.5 s) would dominate every round trip
WAKE_TTL = 60  # seconds an unanswered wake stays in the list
# One wake per queued job, up to this many waiting: each worker takes one job at a time, so jobs
# queued together must wake as many idle workers (a wake too many costs one empty poll).
MAX_WAKES = 16
_pools: dict[int, ArqRedis] = {}


async def get_pool() -> ArqRedis:
    """The arq Redis pool of the running event loop (Reflex/granian workers each have their own)."""
    loop_id = id(asyncio.get_running_loop())
    pool = _pools.get(loop_id)
    if pool is None:
        settings = get_settings()
        redis_settings = RedisSettings.from_dsn(settings.redis_url)
        redis_settings.conn_timeout = 1
        redis_settings.conn_retries = 0
        pool = await create_pool(redis_settings, default_queue_name=settings.ml_service_queue,
                                 job_serializer=codec.dumps, job_deserializer=codec.loads)
        _pools[loop_id] = pool
    return pool


def job_handle(job_id: str, pool: ArqRedis, queue_name: str | None = None) -> Job:
    """arq's Job for job_id, reading results with our JSON codec."""
    return Job(job_id, pool, _queue_name=queue_name or get_settings().ml_service_queue, _deserializer=codec.loads)


async def close_pools() -> None:
    for pool in list(_pools.values()):
        await pool.aclose()
    _pools.clear()


async def enqueue(function: str, *args: Any, **kwargs: Any) -> Job | None:
    """arq's enqueue_job, then wake the worker so it starts the job now rather than at its next poll
    (convassist.worker.main.WakeableWorker); the list holds up to MAX_WAKES."""
    pool = await get_pool()
    job = await pool.enqueue_job(function, *args, **kwargs)
    if job is not None:
        key = wake_key(kwargs.get("_queue_name") or pool.default_queue_name)
        async with pool.pipeline(transaction=False) as pipe:
            pipe.lpush(key, 1).ltrim(key, 0, MAX_WAKES - 1).expire(key, WAKE_TTL)
            await pipe.execute()
    return job


# KEYS: cache, claim, arq job, arq queue, wake list, the owner's rate counter, the owner's in-flight jobs.
# ARGV: look in the cache ("1"/"0"), job id, claim seconds, job expiry ms, serialized job, score, wake TTL,
#       rate limit, rate window seconds, in-flight limit, now ms.
_CACHED_OR_ENQUEUE = """
local hit = ARGV[1] == '1' and redis.call('GET', KEYS[1])
if hit then return {'cached', hit} end
local running = redis.call('GET', KEYS[2])
if running then return {'running', running} end
local generations = redis.call('INCR', KEYS[6])
if generations == 1 then redis.call('EXPIRE', KEYS[6], ARGV[9]) end
if generations > tonumber(ARGV[8]) then return {'rate_limited', tostring(redis.call('TTL', KEYS[6]))} end
redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', ARGV[11])
if redis.call('ZCARD', KEYS[7]) >= tonumber(ARGV[10]) then return {'busy', ''} end
redis.call('ZADD', KEYS[7], ARGV[11] + ARGV[3] * 1000, ARGV[2])
redis.call('EXPIRE', KEYS[7], ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
redis.call('PSETEX', KEYS[3], ARGV[4], ARGV[5])
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[2])
redis.call('LPUSH', KEYS[5], 1)
redis.call('LTRIM', KEYS[5], 0, %d)
redis.call('EXPIRE', KEYS[5], ARGV[7])
return {'queued', ARGV[2]}
""" % (MAX_WAKES - 1)
_cached_or_enqueue_script: AsyncScript | None = None


@dataclass(frozen=True)
class OwnerLimits:
    """One owner's (provider's) share of the worker: new generations per window, and at once."""

    rate_key: str
    rate: int
    window: int
    in_flight_key: str
    in_flight: int


async def cached_or_enqueue(function: str, payload: Any, *, job_id: str, cache_key: str | None,
                            claim_key: str, claim_seconds: int, limits: OwnerLimits) -> tuple[str, bytes]:
    """In one round trip (a Lua script, so atomic) either:

    - ("cached", value): the value stored under cache_key (None: do not look);
    - ("running", job id): the job that already holds claim_key (the same request in flight);
    - ("rate_limited", seconds left in the window): the owner asked for more than limits.rate new
      generations in this window (cache hits and joins above cost nothing and are not counted);
    - ("busy", b""): the owner already has limits.in_flight generations queued or running;
    - ("queued", job_id): claim_key is now job_id's, job_id counts against the owner's in-flight
      limit (until the worker finishes it, or claim_seconds pass), function(payload) is queued
      exactly as arq's enqueue_job writes it (job key, queue score; it expires with the claim), and the
      worker is woken.

    job_id must be new (arq's enqueue_job checks; a fresh uuid needs no check).
    """
    global _cached_or_enqueue_script
    pool = await get_pool()
    if _cached_or_enqueue_script is None:  # sent by its SHA1 (EVALSHA), loaded again if Redis lost it
        _cached_or_enqueue_script = pool.register_script(_CACHED_OR_ENQUEUE)
    # the job lives as long as its claim: past it nobody waits for the reply (the caller answered worker_timeout
    # and a new request queues a job of its own), so arq drops it instead of a worker spending a generation on it
    job = job_write(pool, function, payload, job_id, expires_ms=claim_seconds * 1000)
    outcome, value = await _cached_or_enqueue_script(
        keys=[cache_key or "", claim_key, job.key, pool.default_queue_name,
              wake_key(pool.default_queue_name), limits.rate_key, limits.in_flight_key],
        args=["1" if cache_key else "0", job_id, claim_seconds, job.expires_ms, job.body, job.enqueued_ms, WAKE_TTL,
              limits.rate, limits.window, limits.in_flight, job.enqueued_ms],
        client=pool)
    return outcome.decode(), value


# KEYS: a claim, the owner's in-flight jobs. ARGV: the job id. (Also run by the worker when its job ends.)
RELEASE_CLAIM = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('ZREM', KEYS[2], ARGV[1])
"""


async def release_claim(claim_key: str, in_flight_key: str, job_id: str) -> None:
    """Undo what cached_or_enqueue claimed for job_id (a job whose worker died): the claim, if it is
    still job_id's, and job_id's place among the owner's in-flight jobs."""
    pool = await get_pool()
    await pool.eval(RELEASE_CLAIM, 2, claim_key, in_flight_key, job_id)


async def run_job(function: str, *args: Any, timeout: float = 2.0, **kwargs: Any) -> Any:
    """Enqueue function on the worker and wait for its result; Unavailable after timeout seconds."""
    try:
        # _expires: a job nobody started in time is dropped, not run later for a caller long gone
        kwargs.setdefault("_expires", timeout)
        job: Job | None = await asyncio.wait_for(enqueue(function, *args, **kwargs), timeout)
    except (OSError, asyncio.TimeoutError, RedisError) as exc:
        raise Unavailable("The job queue (Redis) is not reachable.", code="queue_unavailable") from exc
    if job is None:  # a job with this id is already queued or running
        raise Unavailable("The same job is already running.", code="job_in_progress", status=409)
    try:
        return await job.result(timeout=timeout, poll_delay=RESULT_POLL_DELAY)
    except asyncio.TimeoutError:
        raise Unavailable("The worker did not answer in time.", code="worker_unavailable") from None
    except (OSError, RedisError) as exc:
        raise Unavailable("The job queue (Redis) is not reachable.", code="queue_unavailable") from exc


_live_workers_script: AsyncScript | None = None


async def live_workers(timeout: float = 1.5) -> list[WorkerStatus]:
    """The statuses the running workers publish (convassist.worker.status), in one round trip; expired ones are
    dropped. Unavailable when Redis is unreachable."""
    global _live_workers_script
    queue_name = get_settings().ml_service_queue
    try:
        pool = await get_pool()
        if _live_workers_script is None:
            _live_workers_script = pool.register_script(LIVE_WORKERS_SCRIPT)
        # client=pool: the script object outlives a pool made again for new settings
        raw = await asyncio.wait_for(_live_workers_script(keys=[workers_key(queue_name)], client=pool,
                                                          args=[timestamp_ms(), worker_key(queue_name, "")]), timeout)
    except (OSError, RedisError, asyncio.TimeoutError) as exc:
        raise Unavailable("Redis is not reachable.", code="queue_unavailable") from exc
    return [WorkerStatus.model_validate_json(item) for item in raw]


async def worker_alive(worker_id: str) -> bool:
    """Whether this worker's entry is still there (it stopped, or died more than its TTL ago, if not)."""
    pool = await get_pool()
    return bool(await pool.exists(worker_key(get_settings().ml_service_queue, worker_id)))


async def ping_worker(timeout: float = 2.0) -> float:
    """Round trip of a trivial job through Redis and the worker, in milliseconds."""
    started = time.perf_counter()
    await run_job("ping", timeout=timeout)
    return (time.perf_counter() - started) * 1000
