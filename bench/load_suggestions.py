"""30 providers asking for a suggestion at once, one of them flooding (12 requests), through the API
in granian against the real worker(s) — cache off, so every request generates.

Baseline of the same run: one provider's single request on an idle worker. Prints the light
providers' p50/p95 wait and its ratio to the baseline, how many of the flood were refused (429: its
in-flight share is 4), and errors; with BENCH_WORKERS=2 (default 1) the same on two workers.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from _stack import ROOT, bench_stack

sys.path.insert(0, str(ROOT / "agent"))
from tests.faults.load import accounts  # noqa: E402

WORKERS = int(os.environ.get("BENCH_WORKERS", "1"))
PROVIDERS, FLOOD = 30, 12


def ask(base: str, token: str, text: str) -> tuple[int, float]:
    import httpx

    started = time.perf_counter()
    answer = httpx.post(base + "/api/ml/generate", headers={"Authorization": f"Bearer {token}"}, timeout=180,
                        json={"prompt": f"Them: {text}\nMe:", "max_tokens": 12, "temperature": 0})
    return answer.status_code, time.perf_counter() - started


def main() -> int:
    from colocated_workers import start_workers

    with bench_stack() as stack:
        stack["env"].update(ML_SERVICE_REDIS_ENABLED="false")
        base = stack["start_api"]()
        people = accounts(stack["env"]["DATABASE_URL"], PROVIDERS)
        workers = start_workers(stack["env"], WORKERS, {})
        try:
            ask(base, people[0]["token"], "warm-up question")
            baseline = statistics.median(ask(base, people[0]["token"], f"Is slot {i} free?")[1] for i in range(3))
            jobs = [(0, f"flood {n}") for n in range(FLOOD)] + [(p, f"Can I book, I am {p}?")
                                                               for p in range(1, PROVIDERS)]
            with ThreadPoolExecutor(len(jobs)) as pool:
                answers = list(pool.map(lambda job: (job[0], *ask(base, people[job[0]]["token"], job[1])), jobs))
        finally:
            for process in workers:
                process.terminate()
                process.wait(timeout=30)
    light = sorted(seconds for who, status, seconds in answers if who != 0 and status == 200)
    errors = [status for who, status, _ in answers if who != 0 and status != 200]
    refused = sum(1 for who, status, _ in answers if who == 0 and status == 429)
    p50, p95 = statistics.median(light), statistics.quantiles(light, n=20)[-1]
    print(f"{PROVIDERS} providers at once on {WORKERS} worker(s): baseline one request {baseline:.2f} s; light "
          f"providers p50 {p50:.2f} s ({p50 / baseline:.1f}x), p95 {p95:.2f} s ({p95 / baseline:.1f}x); "
          f"flood: {refused} of {FLOOD} refused (429); light-provider errors: {len(errors)}")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
