"""A real arq worker on the installed redis-py (arq pins redis<6; we run it on Reflex's redis-py)."""

import asyncio

import pytest
import redis as redis_py
from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker

from ml import worker as ml_worker
from ml.engine import FakeEngine


def test_installed_redis_py_is_the_one_reflex_needs():
    major = int(redis_py.__version__.split(".")[0])
    assert major >= 6, "Reflex 0.10 needs redis-py >= 6.4"


def test_arq_burst_worker_runs_jobs_on_installed_redis_py(db, redis_server):
    async def scenario():
        settings = RedisSettings.from_dsn(redis_server.url)
        pool = await create_pool(settings, default_queue_name="burst-test")
        jobs = [await pool.enqueue_job("ping", _queue_name="burst-test") for _ in range(5)]

        async def startup(ctx):
            ctx["engine"] = FakeEngine()

        worker = Worker(functions=[ml_worker.ping], redis_settings=settings, queue_name="burst-test",
                        burst=True, poll_delay=0, on_startup=startup, handle_signals=False)
        await worker.main()
        results = [await job.result(timeout=5, poll_delay=0.01) for job in jobs]
        await worker.close()
        await pool.aclose()
        return worker, results

    worker, results = asyncio.run(scenario())
    assert worker.jobs_complete == 5 and worker.jobs_failed == 0
    assert all(r["pong"] is True and r["modelLoaded"] is True for r in results)


def test_a_queued_job_wakes_the_worker_and_one_queued_without_a_wake_is_still_found(db, redis_server):
    """The worker blocks between polls; the app's enqueue wakes it. With a 3 s idle poll, a woken job
    starts at once, and a job queued behind arq's back (no wake) waits for the next poll but runs."""
    import time

    from convassist.services import queue

    async def scenario():
        settings = RedisSettings.from_dsn(redis_server.url)

        async def startup(ctx):
            ctx["engine"] = FakeEngine()

        worker = ml_worker.create_worker(functions=[ml_worker.ping], redis_settings=settings, queue_name="wake-test",
                                         poll_delay=3.0, on_startup=startup, handle_signals=False,
                                         health_check_interval=3600)
        running = asyncio.create_task(worker.main())
        await asyncio.sleep(0.5)  # the worker is now blocked in its idle wait
        started = time.monotonic()
        job = await queue.enqueue("ping", _queue_name="wake-test")
        woken = await job.result(timeout=10, poll_delay=0.01)
        woken_after = time.monotonic() - started

        await asyncio.sleep(0.5)
        pool = await queue.get_pool()
        started = time.monotonic()
        job = await pool.enqueue_job("ping", _queue_name="wake-test")  # no wake
        polled = await job.result(timeout=10, poll_delay=0.01)
        polled_after = time.monotonic() - started
        running.cancel()
        await worker.close()
        await queue.close_pools()
        return woken, woken_after, polled, polled_after

    woken, woken_after, polled, polled_after = asyncio.run(scenario())
    assert woken["pong"] is True and woken_after < 1.0
    assert polled["pong"] is True and 1.0 < polled_after < 6.0


def test_app_round_trip_through_the_real_worker_process(db, worker_process):
    from convassist.services import queue

    async def scenario():
        times = [await queue.ping_worker(timeout=5) for _ in range(20)]
        await queue.close_pools()
        return times

    times = asyncio.run(scenario())
    assert len(times) == 20 and max(times) < 2000


def test_no_worker_gives_unavailable_within_the_timeout(db, monkeypatch):
    import time

    from convassist.services import queue
    from convassist.services.errors import Unavailable
    from convassist.settings import get_settings

    monkeypatch.setenv("ML_SERVICE_QUEUE", "queue-with-no-worker")
    get_settings.cache_clear()

    async def scenario():
        started = time.monotonic()
        with pytest.raises(Unavailable) as err:
            await queue.run_job("ping", timeout=0.5)
        await queue.close_pools()
        return time.monotonic() - started, err.value

    try:
        elapsed, error = asyncio.run(scenario())
        assert error.code == "worker_unavailable" and elapsed < 2
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
