"""System health: database, Redis, worker and model, each with a status."""

from __future__ import annotations

import asyncio
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from convassist.db import database_ok
from convassist.services import queue
from convassist.services.errors import Unavailable
from convassist.settings import get_settings

Status = Literal["ok", "down", "unknown", "disabled"]


class _Part(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class DatabaseHealth(_Part):
    status: Status
    backend: str


class RedisHealth(_Part):
    status: Status


class WorkerHealth(_Part):
    status: Status
    count: int
    round_trip_ms: Optional[float] = Field(None, alias="roundTripMs")
    error: Optional[str] = None


class ModelHealth(_Part):
    status: Status
    id: str
    loaded: Optional[bool] = None
    path: Optional[str] = None
    gpu_available: Optional[bool] = Field(None, alias="gpuAvailable")
    error: Optional[str] = None
    searched: Optional[list[str]] = None


class WorkerEntry(_Part):
    id: str
    host: str
    pid: int
    threads: int
    model: str
    loaded: bool


class CacheHealth(_Part):
    status: Status
    ttl_seconds: Optional[int] = Field(None, alias="ttlSeconds")


class HealthReport(_Part):
    """`status` is ok only when the database, Redis, a worker and its model are; the cache is optional."""

    status: Literal["ok", "degraded"]
    database: DatabaseHealth
    redis: RedisHealth
    worker: WorkerHealth
    model: ModelHealth
    workers: list[WorkerEntry]  # every running worker: one that stops leaves, one that dies within its TTL
    cache: CacheHealth

    def public(self) -> dict:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


async def overall_status() -> str:
    """"ok" when the database, Redis and a live worker with a loaded model are there; else "degraded".
    Two cheap reads: no job is queued."""
    db_ok = await asyncio.to_thread(database_ok)
    try:
        workers = await queue.live_workers(timeout=1.0)
    except Unavailable:
        return "degraded"
    return "ok" if db_ok and any(w.model.loaded for w in workers) else "degraded"


async def check_health() -> HealthReport:
    """Every component's status, with a real round trip through a worker."""
    settings = get_settings()
    db_ok = await asyncio.to_thread(database_ok)
    database = DatabaseHealth(status="ok" if db_ok else "down", backend=settings.resolved_database_url.split(":", 1)[0])
    try:
        workers = await queue.live_workers(timeout=1.0)
        redis = RedisHealth(status="ok")
    except Unavailable:
        redis, workers = RedisHealth(status="down"), []

    worker = WorkerHealth(status="down", count=len(workers))
    if workers:
        try:
            round_trip = await queue.ping_worker(timeout=2.0)
            worker = WorkerHealth(status="ok", count=len(workers), round_trip_ms=round(round_trip, 2))
        except Unavailable as exc:
            worker = WorkerHealth(status="down", count=len(workers), error=exc.code)

    loaded = [w.model for w in workers if w.model.loaded]
    served = loaded[0] if loaded else (workers[0].model if workers else None)
    if served is None:
        model = ModelHealth(status="unknown", id=settings.ml_service_model_id)
    else:
        model = ModelHealth(status="ok" if served.loaded else "down", id=served.model_id, loaded=served.loaded,
                            path=served.path, gpu_available=served.gpu_available, error=served.error,
                            searched=served.searched)
    ok = all(part.status == "ok" for part in (database, redis, worker, model))
    return HealthReport(
        status="ok" if ok else "degraded", database=database, redis=redis, worker=worker, model=model,
        workers=[WorkerEntry(id=w.id, host=w.host, pid=w.pid, threads=w.threads, model=w.model.model_id,
                             loaded=w.model.loaded) for w in workers],
        cache=CacheHealth(status="disabled") if not settings.ml_service_redis_enabled else
        CacheHealth(status=redis.status, ttl_seconds=settings.ml_service_redis_cache_ttl))
