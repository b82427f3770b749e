"""50 Macs syncing at once against the production-mode API (granian, 2 workers, as `make run`).

25 providers × 2 Macs holding the same history (BENCH_LOAD_MESSAGES each, default 4,000), every agent
running the real agent code in its own thread. Baseline of the same run: one Mac alone syncing the
same history. Prints throughput and batch p50/p95, and the ratios to the baseline; checks that every
provider ends with exactly its history and that no request failed.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

from _stack import ROOT, bench_stack

sys.path.insert(0, str(ROOT / "agent"))
from tests.faults.load import build_history, paired_macs, run_agents  # noqa: E402

MESSAGES = int(os.environ.get("BENCH_LOAD_MESSAGES", "4000"))
PROVIDERS, MACS = 25, 2


def summary(label: str, result, sent: int) -> str:
    ms = sorted(result.batch_ms)
    return (f"{label}: {sent} messages in {result.seconds:.1f} s = {sent / result.seconds:,.0f} msg/s; "
            f"batch p50 {statistics.median(ms):.0f} ms, p95 {statistics.quantiles(ms, n=20)[-1]:.0f} ms")


def main() -> int:
    import sqlalchemy as sa

    from convassist.db import engine_for
    from convassist.models import Message

    with tempfile.TemporaryDirectory() as tmp, bench_stack(("solo", "load")) as stack:
        history = Path(tmp) / "chat.db"
        build_history(history, MESSAGES)
        solo = run_agents(stack["start_api"](database_url=stack["db"]["solo"]),
                          paired_macs(stack["db"]["solo"], 1, 1), history)
        macs = paired_macs(stack["db"]["load"], PROVIDERS, MACS)
        load = run_agents(stack["start_api"](database_url=stack["db"]["load"]), macs, history)
        with engine_for(stack["db"]["load"]).connect() as conn:
            counts = conn.execute(sa.select(sa.func.count()).select_from(Message)
                                  .group_by(Message.provider_id)).scalars().all()
    exact = len(counts) == PROVIDERS and set(counts) == {MESSAGES}
    print(summary("baseline, one Mac alone", solo, MESSAGES))
    print(summary(f"{PROVIDERS * MACS} Macs at once", load, PROVIDERS * MACS * MESSAGES))
    throughput = (PROVIDERS * MACS * MESSAGES / load.seconds) / (MESSAGES / solo.seconds)
    print(f"ratios to the baseline: throughput {throughput:.1f}x, "
          f"batch p50 {statistics.median(load.batch_ms) / statistics.median(solo.batch_ms):.1f}x; "
          f"failed requests {len(load.errors) + len(solo.errors)}; "
          f"exact counts per provider: {'PASS' if exact else 'FAIL'}")
    return 0 if exact and not load.errors else 1


if __name__ == "__main__":
    sys.exit(main())
