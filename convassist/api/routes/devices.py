"""Device pairing (no auth for the agent's side) and the provider's device list."""

import uuid
from datetime import datetime
from typing import Annotated, Optional

from fastapi import APIRouter, Depends, Response
from pydantic import Field

from convassist.api.deps import CurrentProvider, DbSession, client_address
from convassist.schemas import CamelModel
from convassist.services import devices, ratelimit

router = APIRouter(prefix="/devices", tags=["devices"])

REGISTER_LIMIT = (20, 600)  # per client address: 20 registrations per 10 minutes
APPROVE_LIMIT = (20, 600)  # per provider: 20 code entries per 10 minutes


class RegisterRequest(CamelModel):
    name: str = Field(min_length=1, max_length=200)
    hardware_id: str = Field(min_length=1, max_length=200)
    platform: str = Field(default="macos", min_length=1, max_length=50)
    os_version: Optional[str] = Field(default=None, max_length=50)


class RegisterResponse(CamelModel):
    device_id: uuid.UUID
    code: str
    expires_at: datetime


class ApproveRequest(CamelModel):
    code: str = Field(max_length=20)


class VerifyRequest(CamelModel):
    device_id: uuid.UUID
    code: str = Field(max_length=20)


class DeviceTokenResponse(CamelModel):
    token: str
    expires_at: datetime


class DeviceOut(CamelModel):
    id: uuid.UUID
    name: str
    platform: str
    os_version: Optional[str]
    verified: bool
    active: bool
    last_sync_at: Optional[datetime]
    created_at: datetime
    conversation_count: int
    message_count: int


@router.post("/register", status_code=201, response_model=RegisterResponse)
def register(body: RegisterRequest, session: DbSession, address: Annotated[str, Depends(client_address)]):
    """Start pairing a Mac: returns the 6-digit code to show its user."""
    ratelimit.hit("device-register", address, limit=REGISTER_LIMIT[0], window_seconds=REGISTER_LIMIT[1])
    reg = devices.register(session, name=body.name, hardware_id=body.hardware_id, platform=body.platform,
                           os_version=body.os_version)
    return RegisterResponse(device_id=reg.device_id, code=reg.code, expires_at=reg.expires_at)


@router.post("/approve", response_model=DeviceOut)
def approve(body: ApproveRequest, session: DbSession, provider: CurrentProvider):
    """The provider claims the Mac showing this code."""
    ratelimit.hit("device-approve", str(provider.id), limit=APPROVE_LIMIT[0], window_seconds=APPROVE_LIMIT[1])
    device = devices.approve(session, provider_id=provider.id, code=body.code)
    return next(d for d in devices.list_devices(session, provider.id) if d["id"] == device.id)


@router.post("/verify", response_model=DeviceTokenResponse)
def verify(body: VerifyRequest, session: DbSession):
    """The agent polls this until the provider approved its code."""
    token = devices.verify(session, device_id=body.device_id, code=body.code)
    return DeviceTokenResponse(token=token.token, expires_at=token.expires_at)


@router.get("", response_model=list[DeviceOut])
def list_devices(session: DbSession, provider: CurrentProvider):
    """The provider's devices."""
    return devices.list_devices(session, provider.id)


@router.delete("/{device_id}", status_code=204)
def deactivate(device_id: uuid.UUID, session: DbSession, provider: CurrentProvider):
    """Deactivate a device: its token is refused from the next request on."""
    devices.deactivate(session, provider_id=provider.id, device_id=device_id)
    return Response(status_code=204)
