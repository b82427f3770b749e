"""The arq worker: `WorkerSettings` is its whole configuration. Start it with `python -m ml`."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time

from arq import func
from arq.connections import RedisSettings
from arq.worker import Worker, get_kwargs

from convassist.settings import get_settings
from ml import codec
from ml.engine import LlamaEngine, ReplyEngine, on_model_thread
from ml.registry import resolve_model
from ml.replies import generate_reply
from ml.status import model_status_key, wake_key

log = logging.getLogger("ml.worker")

HEALTH_CHECK_INTERVAL = 10  # seconds; the app treats a missing key as "worker down"


def load_engine() -> ReplyEngine:
    """Resolve and load the configured model (blocking: call it off the event loop)."""
    settings = get_settings()
    resolved = resolve_model(settings.ml_service_model_id, settings.ml_service_model_path,
                             settings.convassist_data_dir / "models")
    return LlamaEngine.load(resolved, context_size=settings.ml_service_context_size,
                            gpu_layers=settings.ml_service_gpu_layers, threads=settings.ml_service_threads)


async def train_adapter(ctx: dict, job_id: str) -> dict:
    """Run the trainer for a TrainingJob in a child process: generation keeps its process and model.
    Runs on the training queue's worker (one job at a time), never in a slot replies need."""
    from convassist.services import training

    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "ml.train", job_id,
                                                   stdin=asyncio.subprocess.DEVNULL)
    try:
        code = await process.wait()
    except asyncio.CancelledError:
        process.kill()
        await process.wait()
        await asyncio.to_thread(training.fail_job, job_id, "Training was cancelled.")
        raise
    if code != 0:  # a trainer that died without saying why (killed, out of memory)
        await asyncio.to_thread(training.fail_job, job_id, f"The trainer exited with code {code}.")
    log.info("training finished job=%s exit=%d", job_id, code)
    return {"exitCode": code}


async def startup(ctx: dict) -> None:
    from convassist.services import training

    interrupted = await asyncio.to_thread(training.fail_interrupted_jobs)
    if interrupted:
        log.warning("marked %d interrupted training job(s) failed", interrupted)
    engine = await on_model_thread(load_engine)
    ctx["engine"] = engine
    ctx["settings"] = get_settings()
    status = engine.status.as_dict()
    await ctx["redis"].set(model_status_key(ctx["queue_name"]), json.dumps(status))
    if engine.status.loaded:
        log.info("worker ready model=%s load_seconds=%s", engine.status.model_id, engine.status.load_seconds)
    else:
        log.error("worker started without a model: %s", engine.status.error)


async def shutdown(ctx: dict) -> None:
    await ctx["redis"].delete(model_status_key(ctx["queue_name"]))


async def ping(ctx: dict) -> dict:
    """A trivial job: proves the app→Redis→worker→app round trip."""
    return {"pong": True, "workerTime": time.time(), "modelLoaded": ctx["engine"].status.loaded}


class WakeableWorker(Worker):
    """arq's worker, woken the moment the app queues a job instead of polling Redis every few ms.

    Polling often enough for snappy replies (every 10 ms) delays each job by half the interval and
    takes CPU from the model for the whole generation. Between polls this worker blocks on the wake
    list (BLPOP) the app pushes to after each enqueue (services.queue.enqueue); `poll_delay` becomes
    the longest idle wait, which still finds jobs queued without a wake.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.idle_poll_s, self.poll_delay_s = self.poll_delay_s, 0.0  # arq's own loop then never sleeps
        self.ctx["queue_name"] = self.queue_name  # the model status is published per queue

    async def _poll_iteration(self) -> None:
        await super()._poll_iteration()
        if self.idle_poll_s > 0:  # a wake pushed while we polled is still in the list: no job is missed
            await self.pool.blpop([wake_key(self.queue_name)], timeout=self.idle_poll_s)


def create_worker(**overrides) -> WakeableWorker:
    return WakeableWorker(**{**get_kwargs(WorkerSettings), **overrides})


def create_training_worker(**overrides) -> Worker:
    return Worker(**{**get_kwargs(TrainingWorkerSettings), **overrides})


def run() -> None:
    """`python -m ml`: the replies worker and the training worker on one event loop. A signal stops
    the replies worker (arq's handler), which stops the training worker (its trainer is killed and
    the job marked failed)."""
    replies = create_worker()
    trainer = create_training_worker(handle_signals=False)
    replies.on_stop = trainer.handle_sig
    loop = replies.loop
    replies.main_task = loop.create_task(replies.main())
    trainer.main_task = loop.create_task(trainer.main())
    try:
        loop.run_until_complete(asyncio.gather(replies.main_task, trainer.main_task, return_exceptions=True))
    finally:
        loop.run_until_complete(replies.close())
        loop.run_until_complete(trainer.close())


class WorkerSettings:
    """The replies worker; run by WakeableWorker (`python -m ml`), which is woken per job."""

    functions = [ping, func(generate_reply, keep_result=3600, max_tries=1)]
    on_startup = startup
    on_shutdown = shutdown
    queue_name = get_settings().ml_service_queue
    redis_settings = RedisSettings.from_dsn(get_settings().redis_url)
    poll_delay = 0.5  # the longest wait for a job queued without a wake
    health_check_interval = HEALTH_CHECK_INTERVAL
    max_jobs = 10
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
