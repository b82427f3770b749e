"""App → Redis → worker → app round trip of a trivial job (goal: p50 <= 25 ms).

Times `convassist.services.queue.ping_worker` — the call `/api/health` makes — against the real worker
process (`python -m convassist.worker`, model loaded). The baseline of the same run is a bare Redis round trip
(SET+GET) on the same connection: the ratio is what the queue adds over Redis itself.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time

from _stack import bench_stack

N = int(os.environ.get("BENCH_N", "500"))


async def measure() -> tuple[list[float], list[float]]:
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
    return redis_ms, job_ms


def main() -> int:
    with bench_stack(worker=True):
        base, job = asyncio.run(measure())
    p50, p95 = statistics.median(job), statistics.quantiles(job, n=20)[-1]
    b50 = statistics.median(base)
    print(f"worker round trip over {N} jobs: p50 {p50:.2f} ms, p95 {p95:.2f} ms "
          f"(goal p50 <= 25 ms: {'PASS' if p50 <= 25 else 'FAIL'})")
    print(f"baseline bare Redis SET+GET: p50 {b50:.3f} ms; job/baseline p50 ratio {p50 / b50:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
