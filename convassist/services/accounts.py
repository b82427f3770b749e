"""Provider accounts: sign-up, login, and resolving a provider from a token."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from convassist.models import Provider, utcnow
from convassist.services.errors import Conflict, DomainError, Forbidden, Unauthorized
from convassist.services.tokens import PROVIDER_AUDIENCE, issue_token, read_token
from convassist.settings import get_settings

_hasher = PasswordHasher()
# verified against when the email is unknown, so both paths cost the same time
_DUMMY_HASH = _hasher.hash("convassist-timing-equaliser")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 8


@dataclass(frozen=True)
class LoginSession:
    """A logged-in provider: the bearer token and when it expires."""

    provider_id: uuid.UUID
    name: str
    email: str
    token: str
    expires_at: datetime


def normalise_email(email: str) -> str:
    return email.strip().lower()


def signup(session: Session, *, email: str, password: str, name: str) -> Provider:
    """Create a provider account (only while ALLOW_SIGNUP is on)."""
    if not get_settings().allow_signup:
        raise Forbidden("Sign-up is closed on this server.", code="signup_disabled")
    email = normalise_email(email)
    name = name.strip()
    if not _EMAIL.match(email) or len(email) > 320:
        raise DomainError("Enter a valid email address.", code="invalid_email", status=422)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DomainError(f"The password needs at least {MIN_PASSWORD_LENGTH} characters.",
                          code="weak_password", status=422)
    if not name or len(name) > 200:
        raise DomainError("Enter a name (up to 200 characters).", code="invalid_name", status=422)
    if session.exec(select(Provider.id).where(Provider.email == email)).first():
        raise Conflict("An account with this email already exists.", code="email_taken")
    provider = Provider(email=email, name=name, password_hash=_hasher.hash(password))
    session.add(provider)
    try:
        session.flush()
    except sa.exc.IntegrityError:  # a concurrent sign-up won the race
        session.rollback()
        raise Conflict("An account with this email already exists.", code="email_taken") from None
    return provider


def login(session: Session, *, email: str, password: str) -> LoginSession:
    """Check the credentials and issue a provider token."""
    provider = session.exec(select(Provider).where(Provider.email == normalise_email(email))).first()
    try:
        _hasher.verify(provider.password_hash if provider else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        provider = None
    if provider is None or not provider.is_active:
        raise Unauthorized("Wrong email or password.", code="invalid_credentials")
    if _hasher.check_needs_rehash(provider.password_hash):
        provider.password_hash = _hasher.hash(password)
    provider.last_login_at = utcnow()
    session.add(provider)
    return open_session(provider)


def open_session(provider: Provider) -> LoginSession:
    token, expires_at = issue_token(provider.id, PROVIDER_AUDIENCE)
    return LoginSession(provider.id, provider.name, provider.email, token, expires_at)


def provider_from_token(session: Session, token: str) -> Provider:
    """The active provider a bearer token belongs to; Unauthorized otherwise."""
    return active_provider(session, read_token(token, PROVIDER_AUDIENCE))


def active_provider(session: Session, provider_id: uuid.UUID) -> Provider:
    """The provider a valid token names, if the account still exists and is active; Unauthorized otherwise."""
    provider = session.get(Provider, provider_id)
    if provider is None or not provider.is_active:
        raise Unauthorized("The account no longer exists.", code="invalid_token")
    return provider
