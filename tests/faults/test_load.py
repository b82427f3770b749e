"""50 Macs (25 providers × 2 Macs with the same history) syncing at once through the real agent code:
exact message counts per provider, no server error. Figures at scale: bench/load_agents.py."""

from __future__ import annotations

import statistics

import sqlalchemy as sa

from convassist.models import Message
from tests.faults.load import build_history, paired_macs, run_agents

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
