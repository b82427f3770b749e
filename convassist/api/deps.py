"""Dependencies: a database session per request and the caller's identity."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from convassist.db import get_engine
from convassist.models import Device, Provider
from convassist.services import accounts, devices
from convassist.services.errors import Unauthorized
from convassist.services.ratelimit import forwarded_client
from convassist.settings import get_settings

_bearer = HTTPBearer(auto_error=False)


async def db_session() -> AsyncIterator[Session]:
    """The request's session. Opening one does no I/O, so it is made here on the event loop (no
    thread hop on every request's path); its commit or rollback runs in a thread, only when a
    transaction is open.

    It ends with the route function, before the response is sent (`scope="function"` below): FastAPI's
    default ends a yield dependency after the response has left, so a client that acted on an answer at
    once (approving the code a Mac was just given) could find the write not yet committed, and a
    failed commit would follow an answer that already said it succeeded."""
    session = Session(get_engine(), expire_on_commit=False)
    try:
        yield session
        if session.in_transaction():
            await run_in_threadpool(session.commit)
    except BaseException:
        if session.in_transaction():
            await run_in_threadpool(session.rollback)
        raise
    finally:
        session.close()  # no I/O left: the connection went back to the pool with the commit/rollback


DbSession = Annotated[Session, Depends(db_session, scope="function")]


async def bearer_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("Send an Authorization: Bearer <token> header.", code="missing_token")
    return credentials.credentials


def current_provider(session: DbSession, token: Annotated[str, Depends(bearer_token)]) -> Provider:
    return accounts.provider_from_token(session, token)


CurrentProvider = Annotated[Provider, Depends(current_provider)]


def current_device(session: DbSession, token: Annotated[str, Depends(bearer_token)]) -> Device:
    """The paired, still-active device a device token belongs to (re-checked on every request)."""
    return devices.device_from_token(session, token)


CurrentDevice = Annotated[Device, Depends(current_device)]


def client_address(request: Request) -> str:
    """The client's address, limits are counted by (behind CONVASSIST_TRUSTED_PROXY_HOPS proxies: the one
    they forwarded, services.ratelimit.forwarded_client)."""
    return forwarded_client(request.client.host if request.client else "unknown",
                            request.headers.get("x-forwarded-for", ""), get_settings().convassist_trusted_proxy_hops)


ClientAddress = Annotated[str, Depends(client_address)]
