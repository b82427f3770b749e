"""GET /api/health (public: just a status, cheap) and GET /api/health/details (a signed-in provider
or the ops token: every component, the worker's model and a real round trip through the worker)."""

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from convassist.api.deps import ClientAddress, DbSession, bearer_token
from convassist.services import accounts
from convassist.services.health import check_health, overall_status
from convassist.services.ratelimit import Limit, hit
from convassist.settings import get_settings

router = APIRouter(tags=["health"])
PUBLIC_CHECKS_PER_ADDRESS = Limit("health:address", 60, 60, per_address=True)
# each details check queues a job on the replies queue (the worker round trip): a provider looping on it
# would put other providers' suggestions behind pings; the ops token's monitoring is not limited
DETAILS_PER_PROVIDER = Limit("health-details:provider", 60, 60)


@router.get("/health")
async def health(client: ClientAddress) -> JSONResponse:
    """200 `{"status": "ok"}` when the database, Redis and a worker are up, 503 `degraded` otherwise.
    Says nothing else to strangers, queues no job, and is rate-limited per address."""
    await run_in_threadpool(hit, PUBLIC_CHECKS_PER_ADDRESS, client)
    status = await overall_status()
    return JSONResponse({"status": status}, status_code=200 if status == "ok" else 503)


def _ops_or_provider(token: Annotated[str, Depends(bearer_token)], session: DbSession) -> None:
    ops_token = get_settings().convassist_ops_token
    if ops_token and hmac.compare_digest(token.encode(), ops_token.encode()):
        return
    hit(DETAILS_PER_PROVIDER, str(accounts.provider_from_token(session, token).id))


@router.get("/health/details", dependencies=[Depends(_ops_or_provider)])
async def health_details() -> JSONResponse:
    """Every component's status (database, Redis, worker round trip, model, cache); for a signed-in
    provider or `Authorization: Bearer $CONVASSIST_OPS_TOKEN`."""
    report = await check_health()
    return JSONResponse(report.public(), status_code=200 if report.status == "ok" else 503)
