"""Device pairing (no auth for the agent's side) and the provider's device list."""

import uuid
from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import Field

from convassist.api.deps import ClientAddress, CurrentDevice, CurrentProvider, DbSession
from convassist.schemas import CamelModel
from convassist.services import devices

router = APIRouter(prefix="/devices", tags=["devices"])


class RegisterResponse(CamelModel):
    device_id: uuid.UUID
    code: str
    expires_at: datetime


class DeviceTokenResponse(CamelModel):
    token: str
    expires_at: datetime


class ApprovingAccount(CamelModel):
    name: str
    email: str


class PairedResponse(DeviceTokenResponse):
    account: ApprovingAccount = Field(description="the account that approved this Mac: the agent asks the "
                                                  "person at the Mac to confirm it before using the token")


@router.post("/register", status_code=201, response_model=RegisterResponse)
def register(body: devices.RegisterInput, session: DbSession, client: ClientAddress):
    """Start pairing a Mac: returns the 6-digit code to show its user."""
    reg = devices.register(session, body, client=client)
    return RegisterResponse(device_id=reg.device_id, code=reg.code, expires_at=reg.expires_at)


@router.post("/approve", response_model=devices.DevicePublic)
def approve(body: devices.ApproveInput, session: DbSession, provider: CurrentProvider, client: ClientAddress):
    """The provider claims the Mac showing this code (429 `too_many_attempts` with Retry-After once
    too many wrong codes were entered by this account, this address or everyone)."""
    device = devices.approve(session, provider_id=provider.id, data=body, client=client)
    return next(d for d in devices.list_devices(session, provider.id) if d.id == device.id)


@router.post("/verify", response_model=PairedResponse)
def verify(body: devices.VerifyInput, session: DbSession):
    """The agent polls this until the provider approved its code."""
    paired = devices.verify(session, body)
    return PairedResponse(token=paired.token, expires_at=paired.expires_at,
                          account=ApprovingAccount(name=paired.account_name, email=paired.account_email))


@router.post("/refresh", response_model=DeviceTokenResponse)
def refresh(device: CurrentDevice):
    """A new token for this (still active) device, before the current one expires."""
    token = devices.refresh_token(device)
    return DeviceTokenResponse(token=token.token, expires_at=token.expires_at)


@router.post("/decline", status_code=204)
def decline(device: CurrentDevice, session: DbSession):
    """The person at the Mac does not recognise the approving account: the device is revoked."""
    devices.decline(session, device)
    return Response(status_code=204)


@router.get("", response_model=list[devices.DevicePublic])
def list_devices(session: DbSession, provider: CurrentProvider):
    """The provider's devices."""
    return devices.list_devices(session, provider.id)


@router.delete("/{device_id}", status_code=204)
def deactivate(device_id: uuid.UUID, session: DbSession, provider: CurrentProvider):
    """Deactivate a device: its token is refused from the next request on."""
    devices.deactivate(session, provider_id=provider.id, device_id=device_id)
    return Response(status_code=204)
