"""The workers' registry in Redis: each worker publishes its status, the app reads it (health, and
whether anyone can serve a suggestion). No message content, ever.

Every worker publishes its own status under its own key, with a TTL it refreshes: a worker that
stops removes only its own entry, and one that dies drops out within the TTL. The app serves while
any worker with a loaded model is registered.
"""

from __future__ import annotations

import time
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field

from convassist.keys import worker_key, workers_key

TTL_HEARTBEATS = 3  # an entry not refreshed for this many heartbeats (ML_SERVICE_HEARTBEAT_SECONDS) is gone


class WorkerModel(BaseModel):
    """The model a worker serves (ml.engine.ModelStatus, as published). No message content."""

    loaded: bool
    model_id: str
    path: Optional[str] = None
    searched: list[str] = []
    error: Optional[str] = None
    gpu_available: bool = False
    load_seconds: Optional[float] = None
    file_identity: Optional[str] = None


class WorkerStatus(BaseModel):
    """One worker's registry entry."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    host: str
    pid: int
    threads: int
    started_at: float = Field(alias="startedAt")
    model: WorkerModel

    def dump_json(self) -> str:
        return self.model_dump_json(by_alias=True)


# KEYS: the workers set. ARGV: now (ms), the prefix of the worker keys. Drops expired members and
# returns the statuses of the rest, in one round trip.
LIVE_WORKERS_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local found = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local status = redis.call('GET', ARGV[2] .. id)
  if status then table.insert(found, status) end
end
return found
"""


def registered_pids(client, queue_name: str) -> set[int]:
    """The process ids of the workers registered on queue_name (a sync redis-py client: for the dev
    supervisor, tests and benches waiting for a worker they started)."""
    raw = client.eval(LIVE_WORKERS_SCRIPT, 1, workers_key(queue_name), int(time.time() * 1000),
                      worker_key(queue_name, ""))
    return {WorkerStatus.model_validate_json(item).pid for item in raw}
