"""System health: database, Redis, worker and model, each with a status."""

from __future__ import annotations

import asyncio

from convassist.db import database_ok
from convassist.services import queue
from convassist.services.errors import Unavailable
from convassist.settings import get_settings


async def overall_status() -> str:
    """"ok" when the database, Redis and a live worker with a loaded model are there; else "degraded".
    Two cheap reads: no job is queued."""
    db_ok = await asyncio.to_thread(database_ok)
    try:
        workers = await queue.live_workers(timeout=1.0)
    except Unavailable:
        return "degraded"
    return "ok" if db_ok and any(w["model"].get("loaded") for w in workers) else "degraded"


async def check_health() -> dict:
    """Every component's status; `status` is ok only when all of them are."""
    settings = get_settings()
    db_ok = await asyncio.to_thread(database_ok)
    components: dict[str, dict] = {"database": {"status": "ok" if db_ok else "down",
                                                "backend": settings.resolved_database_url.split(":", 1)[0]}}
    try:
        workers = await queue.live_workers(timeout=1.0)
        components["redis"] = {"status": "ok"}
    except Unavailable:
        components["redis"] = {"status": "down"}
        workers = []

    worker: dict = {"status": "down", "count": len(workers)}
    if workers:
        try:
            round_trip = await queue.ping_worker(timeout=2.0)
            worker = {"status": "ok", "count": len(workers), "roundTripMs": round(round_trip, 2)}
        except Unavailable as exc:
            worker = {"status": "down", "count": len(workers), "error": exc.code}
    components["worker"] = worker

    loaded = [w["model"] for w in workers if w["model"]["loaded"]]
    model = loaded[0] if loaded else (workers[0]["model"] if workers else None)
    if model is None:
        components["model"] = {"status": "unknown", "id": settings.ml_service_model_id}
    else:
        components["model"] = {
            "status": "ok" if model["loaded"] else "down",
            "loaded": model["loaded"],
            "id": model["model_id"],
            "path": model["path"],
            "gpuAvailable": model["gpu_available"],
            "error": model["error"],
            "searched": model["searched"],
        }
    overall = "ok" if all(c["status"] == "ok" for c in components.values()) else "degraded"
    # every running worker and its model: one that stops leaves; one that dies leaves within its TTL
    components["workers"] = [{"id": w["id"], "host": w["host"], "pid": w["pid"], "threads": w["threads"],
                              "model": w["model"]["model_id"], "loaded": w["model"]["loaded"]} for w in workers]
    # the reply cache is optional: reported, but "disabled" does not degrade the system
    components["cache"] = ({"status": "disabled"} if not settings.ml_service_redis_enabled else
                           {"status": components["redis"]["status"], "ttlSeconds": settings.ml_service_redis_cache_ttl})
    return {"status": overall, **components}
