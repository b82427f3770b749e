"""Canary for what we take from arq beyond its public API (convassist/worker/arq_seams.py): an arq
upgrade that changes any of it fails here, by name, before it breaks the worker or the queue."""

from __future__ import annotations

import asyncio
import inspect
import re

import arq
from arq.connections import RedisSettings, create_pool
from arq.jobs import Job, JobStatus
from arq.worker import Worker

from convassist.worker import arq_seams, codec
from tests.conftest import ROOT


def test_arq_is_the_version_the_seams_were_checked_against():
    pinned = re.search(r"^arq==(\S+)$", (ROOT / "requirements-nodeps.txt").read_text(), re.M).group(1)
    assert arq.VERSION == pinned == arq_seams.ARQ_VERSION


def test_the_worker_internals_we_override_are_still_there():
    assert inspect.iscoroutinefunction(Worker._poll_iteration)
    assert list(inspect.signature(Worker._poll_iteration).parameters) == ["self"]
    async def noop(ctx):
        return None

    worker = Worker(functions=[arq.func(noop, name="noop")], redis_settings=RedisSettings(), poll_delay=0.25,
                    handle_signals=False)
    assert worker.poll_delay_s == 0.25  # WakeableWorker takes its idle wait from here
    # arq's main loop calls _poll_iteration, then sleeps poll_delay_s
    main_loop = inspect.getsource(Worker.main) + inspect.getsource(Worker)
    assert "await self._poll_iteration()" in main_loop and "poll_delay_s" in main_loop
    # a busy WakeableWorker waits for its own job's end: run_job is the job's task, job_counter and
    # max_jobs say whether a slot is free, and the slot is freed in the task's done callback
    assert list(inspect.signature(Worker.run_job).parameters) == ["self", "job_id", "score"]
    # a graceful stop (convassist.worker.main.run): arq's handler that stops taking jobs (allow_pick_jobs, which
    # its poll reads and WakeableWorker too) and waits job_completion_wait before cancelling
    assert list(inspect.signature(Worker.handle_sig_wait_for_completion).parameters) == ["self", "signum"]
    assert "self.allow_pick_jobs = False" in inspect.getsource(Worker.handle_sig_wait_for_completion)
    assert "if self.allow_pick_jobs:" in inspect.getsource(Worker._poll_iteration)
    assert worker.job_counter == 0 and worker.max_jobs >= 1
    start_jobs = inspect.getsource(Worker.start_jobs)
    assert "create_task(self.run_job(" in start_jobs and "add_done_callback" in start_jobs


def test_a_job_we_write_is_the_job_arq_reads_and_runs(db, redis_server):
    """job_write's fields, put in Redis as our Lua script does, are read back by arq's Job and run by
    arq's Worker exactly like a job from enqueue_job."""

    async def ping(ctx, payload):
        return {"echo": payload}

    async def scenario():
        settings = RedisSettings.from_dsn(redis_server.url)
        pool = await create_pool(settings, default_queue_name="seams-test", job_serializer=codec.dumps,
                                 job_deserializer=codec.loads)
        job = arq_seams.job_write(pool, "ping", {"a": 1}, "seams-1")
        await pool.psetex(job.key, job.expires_ms, job.body)
        await pool.zadd("seams-test", {"seams-1": job.enqueued_ms})
        handle = Job("seams-1", pool, _queue_name="seams-test", _deserializer=codec.loads)
        info = await handle.info()
        queued = await handle.status()
        worker = Worker(functions=[arq.func(ping, name="ping")], redis_settings=settings, queue_name="seams-test",
                        burst=True, poll_delay=0, handle_signals=False, job_serializer=codec.dumps,
                        job_deserializer=codec.loads)
        await worker.main()
        result = await handle.result(timeout=5, poll_delay=0.01)
        await worker.close()
        await pool.aclose()
        return info, queued, result

    info, queued, result = asyncio.run(scenario())
    assert info.function == "ping" and list(info.args) == [{"a": 1}] and info.job_try is None
    assert queued == JobStatus.queued and result == {"echo": {"a": 1}}
