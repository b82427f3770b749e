"""Device pairing (a 6-digit code, in the spirit of RFC 8628's device flow) and device management.

1. The agent registers → a pending device (no owner) and a code shown at the Mac.
2. The provider, logged in, approves the code → the device is theirs.
3. The agent polls verify with its device id and the code → a device token, once approved.

Codes come from a CSPRNG, are stored only as an HMAC, compared in constant time, live 10 minutes,
die after 5 wrong tries and are usable once. Wrong codes entered on the approving side are counted
per account, per client address and for everyone (see APPROVE_FAILURES_*), on every path that
approves (API route, Reflex event), because the limit lives here.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Optional
from datetime import datetime, timedelta

import sqlalchemy as sa
from pydantic import Field
from sqlmodel import Session, select

from convassist.models import Conversation, Device, Provider, as_utc, utcnow
from convassist.schemas import CamelModel
from convassist.services import live
from convassist.services.errors import DomainError, Forbidden, NotFound, Unauthorized
from convassist.services.ratelimit import FailureBudget, Limit, hit
from convassist.services.tokens import DEVICE_AUDIENCE, issue_token, read_token
from convassist.settings import get_settings

CODE_TTL = timedelta(minutes=10)
MAX_WRONG_TRIES = 5

# Guessing a pairing code from the approving side. A code is one of 10^6 and lives 10 minutes; a
# wrong guess matches no code, so the only defence is how many wrong guesses anyone gets (RFC 8628
# §5.1). The global budget bounds every attacker together, whatever accounts and addresses they use:
# 30 wrong codes per 10-minute window, and a code's 10-minute life overlaps at most 2 windows, so at
# most 60 guesses can land while it is live: P(a given code is hit) <= 60 / 10^6 = 1 in 16,667 per
# pairing. Per account (5) and per address (10) keep one clumsy or hostile user from spending the
# global budget alone. Past any budget every approval — the right code too — is refused with 429
# until the window ends, so a lucky guess after the block pairs nothing.
APPROVE_FAILURES_PER_ACCOUNT = Limit("approve-fail:account", 5, 10 * 60)
APPROVE_FAILURES_PER_ADDRESS = Limit("approve-fail:address", 10, 10 * 60, per_address=True)
APPROVE_FAILURES_GLOBAL = Limit("approve-fail:global", 30, 10 * 60)
REGISTRATIONS_PER_ADDRESS = Limit("device-register:address", 20, 10 * 60, per_address=True)


class RegisterInput(CamelModel):
    name: str = Field(min_length=1, max_length=200)
    hardware_id: str = Field(min_length=1, max_length=200)
    platform: str = Field(default="macos", min_length=1, max_length=50)
    os_version: str | None = Field(default=None, max_length=50)


class ApproveInput(CamelModel):
    code: str = Field(max_length=20)


class VerifyInput(CamelModel):
    device_id: uuid.UUID
    code: str = Field(max_length=20)


@dataclass(frozen=True)
class Registration:
    device_id: uuid.UUID
    code: str
    expires_at: datetime


@dataclass(frozen=True)
class DeviceToken:
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class PairedDevice(DeviceToken):
    """A fresh device token and the account that approved the pairing (the agent asks the person at
    the Mac to confirm it before using the token)."""

    account_name: str
    account_email: str


def _hash_code(code: str) -> str:
    key = get_settings().resolved_jwt_secret.encode()
    return hmac.new(key, b"pairing-code:" + code.encode(), hashlib.sha256).hexdigest()


def _new_code(session: Session) -> tuple[str, str]:
    """A fresh code whose hash no live pending device holds (so approval by code is unambiguous)."""
    while True:
        code = f"{secrets.randbelow(1_000_000):06d}"
        code_hash = _hash_code(code)
        clash = session.exec(select(Device.id).where(Device.pairing_code_hash == code_hash,
                                                     Device.pairing_expires_at > utcnow())).first()
        if clash is None:
            return code, code_hash


def register(session: Session, data: RegisterInput, *, client: str) -> Registration:
    """Start pairing: a pending device (re-used for the same hardware id) and a fresh code."""
    hit(REGISTRATIONS_PER_ADDRESS, client)
    device = session.exec(select(Device).where(Device.hardware_id == data.hardware_id,
                                               Device.provider_id.is_(None)).with_for_update()).first()
    if device is None:
        device = Device(name=data.name, hardware_id=data.hardware_id, platform=data.platform)
    device.name, device.platform, device.os_version = data.name, data.platform, data.os_version
    code, device.pairing_code_hash = _new_code(session)
    device.pairing_expires_at = utcnow() + CODE_TTL
    device.pairing_attempts = 0
    session.add(device)
    session.flush()
    return Registration(device.id, code, device.pairing_expires_at)


STALE_REGISTRATION = timedelta(days=1)  # how long a registration nobody approved is kept after its code expired


def forget_stale_registrations(session: Session) -> int:
    """Delete the registrations nobody approved, a day after their code expired (anyone may register, so
    they would pile up); how many. Run by every worker's sweep."""
    gone = session.execute(sa.delete(Device).where(Device.provider_id.is_(None),
                                                   Device.pairing_expires_at < utcnow() - STALE_REGISTRATION))
    return gone.rowcount or 0


def approve(session: Session, *, provider_id: uuid.UUID, data: ApproveInput, client: str) -> Device:
    """The provider claims the pending device showing this code (within the wrong-code budgets)."""
    code = data.code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():  # not a guess: nothing to count
        raise DomainError("Enter the 6-digit code shown on your Mac.", code="invalid_code")
    budget = FailureBudget("wrong codes", [(APPROVE_FAILURES_PER_ACCOUNT, str(provider_id)),
                                           (APPROVE_FAILURES_PER_ADDRESS, client),
                                           (APPROVE_FAILURES_GLOBAL, "all")])
    return budget.guard(lambda: _claim(session, provider_id, code), failed=DomainError,
                        counts=lambda exc: exc.code == "invalid_code")


def _claim(session: Session, provider_id: uuid.UUID, code: str) -> Device:
    # an expired registration may hold the same code as the live one (_new_code only avoids live ones):
    # the newest registration first, so the live one is claimed and an expired code still says so
    device = session.exec(select(Device).where(Device.pairing_code_hash == _hash_code(code))
                          .order_by(Device.pairing_expires_at.desc()).limit(1).with_for_update()).first()
    if device is None or (device.approved_at is not None and device.provider_id != provider_id):
        raise DomainError("No Mac is waiting with this code. Check the code on your Mac.", code="invalid_code")
    if device.pairing_attempts >= MAX_WRONG_TRIES:
        raise DomainError("This code is locked after too many wrong tries; pair again.", code="code_locked")
    if as_utc(device.pairing_expires_at) <= utcnow():
        raise DomainError("This code has expired; pair again to get a new one.", code="expired_code")
    if device.provider_id is None:
        _replace_previous_pairing(session, provider_id, device)
    device.provider_id = provider_id
    device.approved_at = device.approved_at or utcnow()
    device.active = True
    session.add(device)
    session.flush()
    live.changed(session, provider_id, "devices")
    return device


def _replace_previous_pairing(session: Session, provider_id: uuid.UUID, device: Device) -> None:
    """Re-pairing the same Mac: its conversations move to the new device row, the old row goes."""
    old = session.exec(select(Device).where(Device.provider_id == provider_id,
                                            Device.hardware_id == device.hardware_id)).first()
    if old is None:
        return
    session.execute(sa.update(Conversation).where(Conversation.device_id == old.id).values(device_id=device.id))
    session.delete(old)
    session.flush()


def verify(session: Session, data: VerifyInput) -> PairedDevice:
    """Exchange (device id, code) for a device token once the provider approved it."""
    device_id, code = data.device_id, data.code
    device = session.exec(select(Device).where(Device.id == device_id).with_for_update()).first()
    if device is None or device.pairing_code_hash is None:
        raise DomainError("The code is not valid.", code="invalid_code")
    if device.pairing_attempts >= MAX_WRONG_TRIES:
        raise DomainError("Too many wrong codes; pair again for a new one.", code="code_locked")
    if as_utc(device.pairing_expires_at) <= utcnow():
        raise DomainError("The code has expired; pair again for a new one.", code="expired_code")
    if not hmac.compare_digest(device.pairing_code_hash, _hash_code(code.strip())):
        device.pairing_attempts += 1
        session.add(device)
        session.commit()  # the wrong try counts even though we answer with an error
        left = MAX_WRONG_TRIES - device.pairing_attempts
        if left <= 0:
            raise DomainError("Too many wrong codes; pair again for a new one.", code="code_locked")
        raise DomainError(f"The code is not valid ({left} tries left).", code="invalid_code")
    if device.provider_id is None:
        raise Forbidden("Waiting for the provider to enter the code.", code="authorization_pending")
    device.pairing_code_hash = None  # usable once
    device.pairing_expires_at = None
    device.verified = True
    session.add(device)
    live.changed(session, device.provider_id, "devices")
    token, expires_at = issue_token(device.id, DEVICE_AUDIENCE)
    account = session.get(Provider, device.provider_id)
    return PairedDevice(token, expires_at, account.name, account.email)


def refresh_token(device: Device) -> DeviceToken:
    """A new token for an active device (from device_from_token): an agent that syncs stays paired
    without a new code; a revoked device never gets here."""
    return DeviceToken(*issue_token(device.id, DEVICE_AUDIENCE))


def decline(session: Session, device: Device) -> None:
    """The person at the Mac refused the account that approved it, or unpaired the Mac: the device is revoked
    at once."""
    device.active = False
    session.add(device)
    session.flush()
    if device.provider_id is not None:
        live.changed(session, device.provider_id, "devices")


def device_from_token(session: Session, token: str) -> Device:
    """The active, owned device a device token belongs to."""
    found = session.execute(sa.select(Device, Provider.is_active)
                            .join(Provider, Provider.id == Device.provider_id)
                            .where(Device.id == read_token(token, DEVICE_AUDIENCE).subject)).first()
    if found is None:  # unknown, or never claimed by an account
        raise Unauthorized("This device is not paired.", code="invalid_token")
    device, owner_active = found
    if not device.active or not owner_active:  # a disabled account receives nothing more from its Macs
        raise Unauthorized("This device was removed by its owner; pair it again.", code="device_revoked")
    return device


class DevicePublic(CamelModel):
    """A device as its provider sees it (API and UI)."""

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
    problem: Optional[str] = None  # what needs the provider's attention, in plain words


def install_command(public_url: str) -> str:
    """What to run on the Mac, from the agent's folder: install, pair with this server, start at login.
    A plain-http address (a local test server) needs the agent's explicit --allow-http."""
    url = str(public_url).rstrip("/")
    return f"agent/install.sh {url}" + (" --allow-http" if url.startswith("http://") else "")


SILENT_AFTER = timedelta(minutes=15)  # an agent syncs every 5 minutes: three missed syncs is a problem


def device_problem(device: Device, now: datetime | None = None) -> str | None:
    """What is wrong with a device, for its provider to act on (None: syncing as it should)."""
    if not device.active:
        return "Deactivated: this Mac no longer syncs. Pair it again to resume."
    if not device.verified:
        return "Pairing is not finished: run the agent on the Mac again."
    if device.last_sync_at is None:
        return "Has not synced yet: is the agent running on the Mac?"
    silent = (now or utcnow()) - as_utc(device.last_sync_at)
    if silent > SILENT_AFTER:
        minutes = int(silent.total_seconds() // 60)
        span = f"{minutes} minutes" if minutes < 120 else f"{minutes // 60} hours"
        return f"No sync for {span}: is the Mac awake, online and the agent running?"
    return None


def list_devices(session: Session, provider_id: uuid.UUID) -> list[DevicePublic]:
    """The provider's devices with their conversation and message counts."""
    conversations = (sa.select(Conversation.device_id, sa.func.count().label("n"),
                               sa.func.coalesce(sa.func.sum(Conversation.message_count), 0).label("m"))
                     .where(Conversation.provider_id == provider_id)
                     .group_by(Conversation.device_id).subquery())
    rows = session.execute(
        sa.select(Device, sa.func.coalesce(conversations.c.n, 0), sa.func.coalesce(conversations.c.m, 0))
        .outerjoin(conversations, conversations.c.device_id == Device.id)
        .where(Device.provider_id == provider_id)
        .order_by(Device.active.desc(), Device.created_at.desc())
    ).all()
    return [DevicePublic(id=device.id, name=device.name, platform=device.platform, os_version=device.os_version,
                         verified=device.verified, active=device.active, last_sync_at=as_utc(device.last_sync_at),
                         created_at=as_utc(device.created_at), conversation_count=int(n), message_count=int(m),
                         problem=device_problem(device))
            for device, n, m in rows]


def deactivate(session: Session, *, provider_id: uuid.UUID, device_id: uuid.UUID) -> Device:
    """Revoke a device: its token is refused from the next request on."""
    device = session.get(Device, device_id)
    if device is None or device.provider_id != provider_id:
        raise NotFound("No such device.")
    device.active = False
    session.add(device)
    session.flush()
    live.changed(session, provider_id, "devices")
    return device

