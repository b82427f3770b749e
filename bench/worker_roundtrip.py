"""App → Redis → worker → app round trip of a trivial job (goal: p50 ≤ 25 ms).

Starts its own private PostgreSQL-free stack: a Redis and a real worker process (`python -m ml`,
with the real model loaded), then times `convassist.services.queue.ping_worker` — the same call
`/api/health` makes. The baseline measured in the same run is a bare Redis round trip (SET+GET)
on the same connection, so the ratio says what the queue adds over Redis itself.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devstack.redis import RedisServer  # noqa: E402

N = int(os.environ.get("BENCH_N", "500"))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def measure() -> dict:
    from convassist.services import queue

    pool = await queue.get_pool()
    for _ in range(20):  # warm-up
        await queue.ping_worker(timeout=5)
    redis_ms, job_ms = [], []
    for i in range(N):
        started = time.perf_counter()
        await pool.set("bench:k", i)
        await pool.get("bench:k")
        redis_ms.append((time.perf_counter() - started) * 1000)
        job_ms.append(await queue.ping_worker(timeout=5))
    await queue.close_pools()
    return {"redis": redis_ms, "job": job_ms}


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(Path(tmp) / "redis", persist=False)
        redis.start()
        env = {**os.environ, "REDIS_URL": redis.url, "CONVASSIST_DATA_DIR": tmp,
               "ML_SERVICE_QUEUE": "convassist:bench", "DATABASE_URL": f"sqlite:///{tmp}/bench.db"}
        os.environ.update(env)
        worker = subprocess.Popen([sys.executable, "-m", "ml"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            import redis as redis_py

            client = redis_py.Redis.from_url(redis.url)
            deadline = time.monotonic() + 120
            while not client.exists("convassist:bench:model-status"):
                if time.monotonic() > deadline or worker.poll() is not None:
                    raise SystemExit("worker did not start")
                time.sleep(0.1)
            result = asyncio.run(measure())
        finally:
            worker.terminate()
            worker.wait(timeout=20)
            redis.stop()
    job, base = result["job"], result["redis"]
    p50, p95 = statistics.median(job), pct(job, 0.95)
    b50 = statistics.median(base)
    print(f"worker round trip over {N} jobs: p50 {p50:.2f} ms, p95 {p95:.2f} ms "
          f"(goal p50 <= 25 ms: {'PASS' if p50 <= 25 else 'FAIL'})")
    print(f"baseline bare Redis SET+GET: p50 {b50:.3f} ms; job/baseline p50 ratio {p50 / b50:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
