"""Everything we take from arq beyond its public API, in one place (tests/worker/test_arq_seams.py
fails loudly when an arq upgrade changes any of it).

- The worker overrides `Worker._poll_iteration`: to survive a Redis restart (arq lets a lost
  connection end the worker), and to block on a wake list between polls instead of sleeping.
- A graceful stop uses arq's `handle_sig_wait_for_completion` and its `allow_pick_jobs` flag (set on the
  training worker too, convassist.worker.main.run), which the wake-list wait reads as well.
- The app writes a job exactly as `ArqRedis.enqueue_job` does (job key, serialized job, queue score,
  expiry) but inside its own Lua script, so that the suggestion path's cache check, in-flight claim,
  owner limits, job write and wake are one round trip (services.queue.cached_or_enqueue).

Measured (bench/worker_roundtrip.py): with the wake a trivial job's round trip is a few ms; without
it, the worker's poll interval decides (arq's default 0.5 s, or a busy poll that takes CPU from the
model).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis
from arq.constants import job_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms
from arq.worker import Worker
from redis.exceptions import RedisError

from convassist.keys import wake_key

ARQ_VERSION = "0.28.0"  # the version these seams were checked against (requirements-nodeps.txt)
log = logging.getLogger("convassist.worker")


@dataclass(frozen=True)
class JobWrite:
    """What enqueue_job would write for one job: its key, its serialized body, its queue score (the
    enqueue time, ms) and how long the key lives (ms)."""

    key: str
    body: bytes
    enqueued_ms: int
    expires_ms: int


def job_write(pool: ArqRedis, function: str, payload: Any, job_id: str, *, expires_ms: int | None = None) -> JobWrite:
    """What arq's enqueue_job writes for a job (expiring after expires_ms; arq's default: a day)."""
    enqueued_ms = timestamp_ms()
    return JobWrite(key=job_key_prefix + job_id,
                    body=serialize_job(function, (payload,), {}, None, enqueued_ms, serializer=pool.job_serializer),
                    enqueued_ms=enqueued_ms, expires_ms=expires_ms or pool.expires_extra_ms)


class ReconnectingWorker(Worker):
    """arq's worker that outlives a Redis restart: arq lets a lost connection end the worker; this
    one logs it, waits a second and polls again (redis-py reconnects on the next command)."""

    async def _poll_iteration(self) -> None:
        try:
            await self._poll_once()
        except (OSError, RedisError) as exc:
            log.warning("redis unavailable (%s); polling again in 1 s", type(exc).__name__)
            await asyncio.sleep(1.0)

    async def _poll_once(self) -> None:
        await super()._poll_iteration()


class WakeableWorker(ReconnectingWorker):
    """arq's worker, woken the moment the app queues a job instead of polling Redis every few ms.

    Polling often enough for snappy replies (every 10 ms) delays each job by half the interval and
    takes CPU from the model for the whole generation. Between polls this worker blocks on the wake
    list (BLPOP) the app pushes to after each enqueue (services.queue.enqueue); `poll_delay` becomes
    the longest idle wait, which still finds jobs queued without a wake.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.idle_poll_s, self.poll_delay_s = self.poll_delay_s, 0.0  # arq's own loop then never sleeps
        self.ctx["queue_name"] = self.queue_name  # workers register per queue
        self._job_ended: asyncio.Event | None = None

    async def run_job(self, job_id: str, score: int) -> None:
        try:
            await super().run_job(job_id, score)
        finally:
            self._ended().set()

    def _ended(self) -> asyncio.Event:
        if self._job_ended is None:  # created on the worker's own loop
            self._job_ended = asyncio.Event()
        return self._job_ended

    async def _poll_once(self) -> None:
        engine = self.ctx.get("engine")
        if engine is not None and not engine.status.loaded:
            # no model (it failed to load): take no reply job — it could only fail it, while a worker with a
            # model would serve it; stay registered (the heartbeat goes on), so health says why
            await asyncio.sleep(self.idle_poll_s or 1.0)
            return
        await super()._poll_once()
        if self.idle_poll_s <= 0:
            return
        if self.job_counter >= self.max_jobs:
            # busy: wait for our own job to end, then poll at once (a queued job must not wait for the
            # next idle poll), and leave the wakes to the workers that are free to take a job
            ended = self._ended()
            try:
                await asyncio.wait_for(ended.wait(), timeout=self.idle_poll_s)
            except asyncio.TimeoutError:
                return
            ended.clear()
            for _ in range(3):  # arq frees the job's slot in the task's done callback, just after
                if self.job_counter < self.max_jobs:
                    break
                await asyncio.sleep(0)
        elif not self.allow_pick_jobs:  # stopping: the wakes are for the workers that still take jobs
            await asyncio.sleep(self.idle_poll_s)
        else:  # a wake pushed while we polled is still in the list: no job is missed
            await self.pool.blpop([wake_key(self.queue_name)], timeout=self.idle_poll_s)
