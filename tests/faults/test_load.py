"""50 Macs (25 providers × 2 Macs with the same history) syncing at once through the real agent code:
exact message counts per provider, no server error. Figures at scale: bench/load_agents.py."""

from __future__ import annotations

import statistics

import sqlalchemy as sa

from convassist.models import Message
from tests.faults.load import accounts, build_history, paired_macs, run_agents

PROVIDERS, MACS, MESSAGES = 25, 2, 600


def test_fifty_agents_syncing_overlapping_histories(api_server, db, database_url, tmp_path):
    history = tmp_path / "chat.db"
    build_history(history, MESSAGES)
    macs = paired_macs(database_url, PROVIDERS, MACS)
    result = run_agents(api_server.url, macs, history)
    assert result.errors == []
    with db.connect() as conn:
        counts = dict(conn.execute(sa.select(Message.provider_id, sa.func.count())
                                   .group_by(Message.provider_id)).all())
    assert sorted(counts) == sorted({provider for provider, _ in macs})
    assert set(counts.values()) == {MESSAGES}  # each provider's history once, whichever Mac sent it first
    latencies = sorted(result.batch_ms)
    print(f"{len(macs)} agents, {len(latencies)} batches, {PROVIDERS * MACS * MESSAGES} messages sent in "
          f"{result.seconds:.1f} s: batch p50 {statistics.median(latencies):.0f} ms, "
          f"p95 {statistics.quantiles(latencies, n=20)[-1]:.0f} ms")


def test_thirty_providers_asking_at_once_are_all_served_fairly(api, database_url, worker_process):
    """30 providers ask for a suggestion at the same moment while one of them floods the API: every
    light provider is served, the flooding one gets 429 past its in-flight share (so nobody waits
    behind its whole queue)."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    providers = accounts(database_url, 30)

    def ask(job: tuple[int, int]) -> tuple[int, int, float]:
        who, n = job
        started = time.perf_counter()
        answer = api.post("/api/ml/generate", headers={"Authorization": f"Bearer {providers[who]['token']}"}, json={
            "prompt": f"Them: Do you have a slot on day {n} for client {who}?\nMe:", "max_tokens": 8})
        return who, answer.status_code, time.perf_counter() - started

    jobs = [(0, n) for n in range(12)] + [(who, 0) for who in range(1, 30)]
    with ThreadPoolExecutor(len(jobs)) as pool:
        answers = list(pool.map(ask, jobs))
    light = [(status, seconds) for who, status, seconds in answers if who != 0]
    flooded = [status for who, status, _ in answers if who == 0]
    assert [status for status, _ in light] == [200] * 29
    assert flooded.count(200) >= 4 and set(flooded) <= {200, 429}  # its share, then "too many in flight"
    waits = sorted(seconds for _, seconds in light)
    print(f"29 light providers + 1 flooding ({flooded.count(429)} of its 12 refused): p50 "
          f"{statistics.median(waits):.2f} s, p95 {statistics.quantiles(waits, n=20)[-1]:.2f} s, "
          f"max {waits[-1]:.2f} s")
