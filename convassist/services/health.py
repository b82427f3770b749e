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
        alive, model = await queue.worker_status(timeout=1.0)
    except Unavailable:
        return "degraded"
    return "ok" if db_ok and alive and model is not None and model.get("loaded") else "degraded"


async def check_health() -> dict:
    """Every component's status; `status` is ok only when all of them are."""
    settings = get_settings()
    db_ok = await asyncio.to_thread(database_ok)
    components: dict[str, dict] = {"database": {"status": "ok" if db_ok else "down",
                                                "backend": settings.resolved_database_url.split(":", 1)[0]}}
    try:
        alive, model = await queue.worker_status(timeout=1.0)
        components["redis"] = {"status": "ok"}
    except Unavailable:
        components["redis"] = {"status": "down"}
        alive, model = False, None

    worker: dict = {"status": "down"}
    if alive:
        try:
            worker = {"status": "ok", "roundTripMs": round(await queue.ping_worker(timeout=2.0), 2)}
        except Unavailable as exc:
            worker = {"status": "down", "error": exc.code}
    components["worker"] = worker

    if model is None or not alive:
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
    # the reply cache is optional: reported, but "disabled" does not degrade the system
    components["cache"] = ({"status": "disabled"} if not settings.ml_service_redis_enabled else
                           {"status": components["redis"]["status"], "ttlSeconds": settings.ml_service_redis_cache_ttl})
    return {"status": overall, **components}
