"""The arq worker: `WorkerSettings` is its whole configuration. Start it with `python -m convassist.worker`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import signal
import sys
import time
import uuid

from arq import func
from arq.connections import RedisSettings
from arq.constants import job_key_prefix
from arq.worker import Worker, get_kwargs
from redis.exceptions import RedisError

from convassist import keys
from convassist.keys import worker_key, workers_key
from convassist.settings import get_settings
from convassist.worker import ahead as ahead_loop
from convassist.worker import codec
from convassist.worker.arq_seams import ReconnectingWorker, WakeableWorker
from convassist.worker.replies import generate_reply
from convassist.worker.status import TTL_HEARTBEATS, WorkerModel, WorkerStatus
from ml.engine import FakeEngine, LlamaEngine, ReplyEngine, on_model_thread
from ml.quantize import serving_copy
from ml.registry import resolve_model

log = logging.getLogger("convassist.worker")

QUEUED_GRACE = 60  # seconds a queued job may lack its arq job (the app commits the job, then enqueues it)
HEALTH_CHECK_INTERVAL = 10  # arq's own health-check key (`arq --check`); the app reads worker.status's entries


def load_engine() -> ReplyEngine:
    """Resolve and load the configured model (blocking: call it off the event loop). With
    ML_SERVICE_ENGINE=fake, a fixed-reply stand-in (fast tests of everything around the model)."""
    settings = get_settings()
    if settings.ml_service_engine == "fake":
        return FakeEngine()
    resolved = resolve_model(settings.ml_service_model_id, settings.ml_service_model_path,
                             settings.convassist_data_dir / "models")
    resolved = serving_copy(resolved, settings.convassist_data_dir / "models" / "converted",
                            settings.ml_service_requantize)
    return LlamaEngine.load(resolved, context_size=settings.ml_service_context_size,
                            gpu_layers=settings.ml_service_gpu_layers, threads=settings.ml_service_threads,
                            kv_memory_mb=settings.ml_service_kv_memory_mb,
                            sequences=settings.ml_service_parallel_replies)


async def train_adapter(ctx: dict, job_id: str) -> dict:
    """Run the trainer for a TrainingJob in a child process: generation keeps its process and model.
    Runs on the training queue's worker (one job at a time), never in a slot replies need. While it runs,
    the job's trainer key says so (refreshed every heartbeat, with a TTL): any worker's sweep fails a
    training job whose key is gone (its worker was killed), and only such a job."""
    from convassist.services import training

    interval = get_settings().ml_service_heartbeat_seconds
    alive = keys.trainer_key(job_id)
    await _mark_alive(ctx["redis"], alive, interval)  # before the child marks the job training
    keeper = asyncio.create_task(_keep(ctx["redis"], alive, interval))
    try:
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "convassist.worker.training", job_id,
                                                       stdin=asyncio.subprocess.DEVNULL)
        try:
            code = await process.wait()
        except asyncio.CancelledError:
            process.kill()
            await process.wait()
            await asyncio.to_thread(training.fail_job, job_id, "Training was cancelled.")
            raise
    finally:
        keeper.cancel()
        with contextlib.suppress(OSError, RedisError):
            await ctx["redis"].delete(alive)
    if code != 0:  # a trainer that died without saying why (killed, out of memory)
        await asyncio.to_thread(training.fail_job, job_id, f"The trainer exited with code {code}.")
    log.info("training finished job=%s exit=%d", job_id, code)
    return {"exitCode": code}


async def _mark_alive(redis, key: str, interval: int) -> None:
    """A key that says this worker is at something, gone TTL_HEARTBEATS heartbeats after its last refresh."""
    await redis.set(key, os.getpid(), ex=interval * TTL_HEARTBEATS)


async def _keep(redis, key: str, interval: int) -> None:
    """Refresh _mark_alive's key every heartbeat until cancelled (Redis away: next time)."""
    while True:
        await asyncio.sleep(interval)
        with contextlib.suppress(OSError, RedisError):
            await _mark_alive(redis, key, interval)


async def _lost(redis, jobs, now: float) -> set[str]:
    """Of these unfinished jobs, those nothing runs or will run: training without its trainer's key; queued
    for over QUEUED_GRACE seconds without its arq job (Redis lost it, or arq's expiry dropped it)."""
    async with redis.pipeline(transaction=False) as pipe:
        for job in jobs:
            pipe.exists(keys.trainer_key(job.id) if job.status == "training" else f"{job_key_prefix}train:{job.id}")
        there = await pipe.execute()
    return {job.id for job, found in zip(jobs, there)
            if not found and (job.status == "training" or now - job.created_at.timestamp() > QUEUED_GRACE)}


async def sweep_lost_jobs(ctx: dict) -> int:
    """Fail the training jobs nothing will finish (see _lost): each must be found lost twice, a heartbeat
    apart, since a trainer's key that Redis lost (restarted without its data) is written again within one.
    Returns how many were failed."""
    from convassist.services import training

    jobs = await asyncio.to_thread(training.unfinished_jobs)
    if not jobs:
        return 0
    lost = await _lost(ctx["redis"], jobs, time.time())
    if lost:
        await asyncio.sleep(ctx["settings"].ml_service_heartbeat_seconds + 1)
        lost &= await _lost(ctx["redis"], jobs, time.time())
    return await asyncio.to_thread(training.fail_lost_jobs, [job for job in jobs if job.id in lost])


def _forget_stale_registrations() -> int:
    from convassist.db import session_scope
    from convassist.services import devices

    with session_scope() as session:
        return devices.forget_stale_registrations(session)


async def _sweeping(ctx: dict) -> None:
    """Every TTL of a heartbeat, on every worker: a training job whose worker was killed is failed within
    about two TTLs, by whichever worker is still up (none needs to restart); a running one is left alone.
    Suggestions nobody waits for any more are settled too (services.responses.settle_abandoned), and device
    registrations nobody approved are deleted a day after their code expired."""
    from convassist.services import responses

    while True:
        try:
            failed = await sweep_lost_jobs(ctx)
            if failed:
                log.warning("marked %d lost training job(s) failed", failed)
            settled = await responses.settle_abandoned()
            if settled:
                log.info("settled %d abandoned suggestion(s)", settled)
            forgotten = await asyncio.to_thread(_forget_stale_registrations)
            if forgotten:
                log.info("deleted %d stale device registration(s)", forgotten)
        except Exception as exc:  # Redis or the database away, or anything else: the next sweep tries again
            log.warning("sweeping failed: %s", type(exc).__name__)
        await asyncio.sleep(ctx["settings"].ml_service_heartbeat_seconds * TTL_HEARTBEATS)


async def startup(ctx: dict) -> None:
    engine = await on_model_thread(load_engine)
    engine.defer_keeping = True  # replies.py keeps the conversation's state after the result is sent
    settings = get_settings()
    ctx["engine"], ctx["settings"] = engine, settings
    ctx["worker_id"] = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    ctx["worker_status"] = WorkerStatus(id=ctx["worker_id"], host=socket.gethostname(), pid=os.getpid(),
                                        threads=settings.ml_service_threads, started_at=time.time(),
                                        model=WorkerModel(**engine.status.as_dict()))
    await publish_status(ctx)
    ctx["heartbeat"] = asyncio.create_task(_heartbeat(ctx))
    ctx["sweep"] = asyncio.create_task(_sweeping(ctx))
    if settings.ml_service_ahead and engine.status.loaded:
        ctx["ahead"] = asyncio.create_task(ahead_loop.run(ctx))
    if engine.status.loaded:
        log.info("worker ready id=%s model=%s load_seconds=%s", ctx["worker_id"], engine.status.model_id,
                 engine.status.load_seconds)
    else:
        log.error("worker started without a model: %s", engine.status.error)


async def publish_status(ctx: dict) -> None:
    """This worker's own health entry, with a TTL, and its expiry in the queue's set of workers."""
    ttl = ctx["settings"].ml_service_heartbeat_seconds * TTL_HEARTBEATS
    queue_name = ctx["queue_name"]
    async with ctx["redis"].pipeline(transaction=True) as pipe:
        pipe.set(worker_key(queue_name, ctx["worker_id"]), ctx["worker_status"].dump_json(), ex=ttl)
        pipe.zadd(workers_key(queue_name), {ctx["worker_id"]: int((time.time() + ttl) * 1000)})
        await pipe.execute()


async def _heartbeat(ctx: dict) -> None:
    interval = ctx["settings"].ml_service_heartbeat_seconds
    while True:
        await asyncio.sleep(interval)
        try:
            await publish_status(ctx)
            interval = ctx["settings"].ml_service_heartbeat_seconds
        except (OSError, RedisError) as exc:
            # Redis away (restarted, its data maybe lost): try every second, so that this worker is
            # registered again within a second of Redis being back, not a whole heartbeat later
            log.warning("heartbeat failed: %s", type(exc).__name__)
            interval = 1


async def shutdown(ctx: dict) -> None:
    """Remove this worker's entry only: the others keep serving."""
    for task in ("heartbeat", "ahead", "sweep"):
        if task in ctx:
            ctx[task].cancel()
    if "worker_id" in ctx:
        async with ctx["redis"].pipeline(transaction=True) as pipe:
            pipe.delete(worker_key(ctx["queue_name"], ctx["worker_id"]))
            pipe.zrem(workers_key(ctx["queue_name"]), ctx["worker_id"])
            await pipe.execute()


async def ping(ctx: dict) -> dict:
    """A trivial job: proves the app→Redis→worker→app round trip."""
    return {"pong": True, "workerTime": time.time(), "modelLoaded": ctx["engine"].status.loaded}


def create_worker(**overrides) -> WakeableWorker:
    return WakeableWorker(**{**get_kwargs(WorkerSettings), **overrides})


def create_training_worker(**overrides) -> Worker:
    return ReconnectingWorker(**{**get_kwargs(TrainingWorkerSettings), **overrides})


def run() -> None:
    """`python -m convassist.worker`: the replies worker and the training worker on one event loop. A signal stops
    the replies worker (arq's handler), which stops the training worker (its trainer is killed and
    the job marked failed)."""
    replies = create_worker()
    trainer = create_training_worker(handle_signals=False)
    replies.on_stop = trainer.handle_sig

    def stop(signum: int) -> None:  # while the reply being written finishes, no new training job starts either
        trainer.allow_pick_jobs = False
        replies.handle_sig_wait_for_completion(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        replies.loop.add_signal_handler(signum, stop, signum)
    loop = replies.loop
    replies.main_task = loop.create_task(replies.main())
    trainer.main_task = loop.create_task(trainer.main())
    try:
        loop.run_until_complete(asyncio.gather(replies.main_task, trainer.main_task, return_exceptions=True))
    finally:
        loop.run_until_complete(replies.close())
        loop.run_until_complete(trainer.close())


class WorkerSettings:
    """The replies worker; run by WakeableWorker (`python -m convassist.worker`), which is woken per job."""

    functions = [ping, func(generate_reply, keep_result=3600, max_tries=1)]
    on_startup = startup
    on_shutdown = shutdown
    queue_name = get_settings().ml_service_queue
    redis_settings = RedisSettings.from_dsn(get_settings().redis_url)
    poll_delay = 0.5  # the longest wait for a job queued without a wake
    health_check_interval = HEALTH_CHECK_INTERVAL
    # One model, one job at a time: a job this worker cannot start yet stays in Redis, where any free
    # worker takes it (with 10, one worker took ten jobs and served them one by one while another idled).
    max_jobs = 1
    # a stop signal (deploy, scale down) lets the reply being written finish, taking no new job, for up to this
    # many seconds (below systemd's TimeoutStopSec=30, docs/deploy.md); arq's default cancels it at once
    job_completion_wait = 25
    job_timeout = 300
    keep_result = 300
    allow_abort_jobs = False  # nothing aborts jobs; checking for aborts costs a round trip per poll
    log_results = False  # results may hold reply text; our jobs log metadata themselves
    job_serializer = codec.dumps
    job_deserializer = codec.loads


class TrainingWorkerSettings:
    """The training worker: its own queue, one job at a time, so queued training never holds a slot
    that replies need however many providers start training."""

    functions = [func(train_adapter, keep_result=3600, max_tries=1, timeout=6 * 3600)]
    queue_name = get_settings().training_queue
    redis_settings = WorkerSettings.redis_settings
    poll_delay = 0.5
    health_check_interval = HEALTH_CHECK_INTERVAL
    max_jobs = 1
    keep_result = 300
    allow_abort_jobs = False
    log_results = False
    job_serializer = codec.dumps
    job_deserializer = codec.loads
