"""System health: database, Redis, worker and model, each with a status."""

from __future__ import annotations

import asyncio
import json

from redis.exceptions import RedisError

from convassist.db import database_ok
from convassist.services import queue
from convassist.services.errors import Unavailable
from convassist.settings import get_settings
from ml.status import health_check_key, model_status_key


async def check_health() -> dict:
    """Every component's status; `status` is ok only when all of them are."""
    settings = get_settings()
    db_ok = await asyncio.to_thread(database_ok)
    components: dict[str, dict] = {"database": {"status": "ok" if db_ok else "down",
                                                "backend": settings.resolved_database_url.split(":", 1)[0]}}
    try:
        pool = await queue.get_pool()
        await asyncio.wait_for(pool.ping(), 1.0)
        components["redis"] = {"status": "ok"}
        alive, raw_model = await asyncio.wait_for(
            asyncio.gather(pool.exists(health_check_key(settings.ml_service_queue)),
                           pool.get(model_status_key(settings.ml_service_queue))), 1.0)
    except (OSError, RedisError, asyncio.TimeoutError, Unavailable):
        components["redis"] = {"status": "down"}
        alive, raw_model = False, None

    worker: dict = {"status": "down"}
    if alive:
        try:
            worker = {"status": "ok", "roundTripMs": round(await queue.ping_worker(timeout=2.0), 2)}
        except Unavailable as exc:
            worker = {"status": "down", "error": exc.code}
    components["worker"] = worker

    model = json.loads(raw_model) if raw_model else None
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
