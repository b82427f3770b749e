"""Dependencies: a database session per request and the caller's identity."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from convassist.db import session_scope
from convassist.models import Device, Provider
from convassist.services import accounts, devices
from convassist.services.errors import Unauthorized

_bearer = HTTPBearer(auto_error=False)


def db_session() -> Iterator[Session]:
    with session_scope() as session:
        yield session


DbSession = Annotated[Session, Depends(db_session)]


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
    return request.client.host if request.client else "unknown"
