"""GET /api/health: database, Redis, worker and model."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from convassist.services.health import check_health

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> JSONResponse:
    """200 when every component is ok, 503 otherwise; the body says which."""
    report = await check_health()
    return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)
