"""Provider accounts: sign-up, login, password changes, revoking sessions, resolving a token."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import Field
from sqlmodel import Session, select

from convassist.models import Provider, utcnow
from convassist.schemas import CamelModel, CleanStr
from convassist.services.errors import Conflict, DomainError, Forbidden, Unauthorized, Unavailable
from convassist.services.ratelimit import FailureBudget, Limit, hit
from convassist.services.tokens import PROVIDER_AUDIENCE, TokenClaims, issue_token, read_token
from convassist.settings import get_settings

T = TypeVar("T")
_hasher = PasswordHasher()
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 8

# Guessing passwords: 10 wrong ones per account and 30 per client address in 15 minutes, then every
# try (the right password too) waits for the window to end — the owner is slowed down, never locked
# out for good. 10 per 15 min is ~1,000 guesses a day against a password of 8+ characters.
LOGIN_FAILURES_PER_ACCOUNT = Limit("login-fail:account", 10, 15 * 60)
LOGIN_FAILURES_PER_ADDRESS = Limit("login-fail:address", 30, 15 * 60, per_address=True)
SIGNUPS_PER_ADDRESS = Limit("signup:address", 20, 60 * 60, per_address=True)

# Each argon2 hash takes 64 MiB and a core for ~50 ms: at most one per core at a time, so a burst of
# logins queues here instead of exhausting memory; one that waits too long gets a 503 to retry.
_hashing = threading.BoundedSemaphore(os.cpu_count() or 1)
HASH_WAIT_SECONDS = 10.0


class SignupInput(CamelModel):
    email: CleanStr = Field(max_length=320)
    password: str = Field(max_length=1024)  # hashed, never stored as text
    name: CleanStr = Field(max_length=200)


class LoginInput(CamelModel):
    email: CleanStr = Field(max_length=320)
    password: str = Field(max_length=1024)


class PasswordChange(CamelModel):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


@dataclass(frozen=True)
class LoginSession:
    """A logged-in provider: the bearer token and when it expires."""

    provider_id: uuid.UUID
    name: str
    email: str
    token: str
    expires_at: datetime


def _hashed(work: Callable[[], T]) -> T:
    """Run an argon2 hash or verification within the per-process cap."""
    if not _hashing.acquire(timeout=HASH_WAIT_SECONDS):
        raise Unavailable("The server is busy; try again in a few seconds.", code="busy", retry_after=5)
    try:
        return work()
    finally:
        _hashing.release()


# verified against when the email is unknown, so both paths cost the same time
_DUMMY_HASH = _hasher.hash("convassist-timing-equaliser")


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DomainError(f"The password needs at least {MIN_PASSWORD_LENGTH} characters.",
                          code="weak_password", status=422)


def create_account(session: Session, data: SignupInput) -> Provider:
    """A new provider account (no sign-up switch: for `python -m convassist create-account`)."""
    email = normalise_email(data.email)
    name = data.name.strip()
    if not _EMAIL.match(email):
        raise DomainError("Enter a valid email address.", code="invalid_email", status=422)
    _check_new_password(data.password)
    if not name:
        raise DomainError("Enter a name (up to 200 characters).", code="invalid_name", status=422)
    if session.exec(select(Provider.id).where(Provider.email == email)).first():
        raise Conflict("An account with this email already exists.", code="email_taken")
    provider = Provider(email=email, name=name, password_hash=_hashed(lambda: _hasher.hash(data.password)))
    session.add(provider)
    try:
        session.flush()
    except sa.exc.IntegrityError:  # a concurrent sign-up won the race
        session.rollback()
        raise Conflict("An account with this email already exists.", code="email_taken") from None
    return provider


def signup(session: Session, data: SignupInput, *, client: str) -> Provider:
    """Create an account from the sign-up form, only while sign-up is open (ALLOW_SIGNUP)."""
    if not get_settings().signup_open:
        raise Forbidden("Sign-up is closed on this server; ask its operator for an account.",
                        code="signup_disabled")
    hit(SIGNUPS_PER_ADDRESS, client)
    return create_account(session, data)


def _account_key(email: str) -> str:
    """The per-account limit's key: a hash, so Redis never holds the address itself."""
    return hashlib.sha256(email.encode()).hexdigest()[:32]


def _verify_password(provider: Provider | None, password: str) -> Provider:
    """The provider if the password is theirs; Unauthorized (the same for an unknown email) otherwise."""
    try:
        _hashed(lambda: _hasher.verify(provider.password_hash if provider else _DUMMY_HASH, password))
    except (VerificationError, InvalidHashError):
        provider = None
    if provider is None or not provider.is_active:
        raise Unauthorized("Wrong email or password.", code="invalid_credentials")
    return provider


def _sign_in_budget(email: str, client: str) -> FailureBudget:
    return FailureBudget("failed sign-ins", [(LOGIN_FAILURES_PER_ACCOUNT, _account_key(email)),
                                             (LOGIN_FAILURES_PER_ADDRESS, client)])


def login(session: Session, credentials: LoginInput, *, client: str) -> LoginSession:
    """Check the credentials (within the failure limits) and issue a provider token."""
    email = normalise_email(credentials.email)

    def attempt() -> Provider:
        found = session.exec(select(Provider).where(Provider.email == email)).first()
        return _verify_password(found, credentials.password)

    provider = _sign_in_budget(email, client).guard(attempt, failed=Unauthorized)
    if _hasher.check_needs_rehash(provider.password_hash):
        provider.password_hash = _hashed(lambda: _hasher.hash(credentials.password))
    provider.last_login_at = utcnow()
    session.add(provider)
    return open_session(provider)


def change_password(session: Session, provider: Provider, change: PasswordChange, *, client: str) -> LoginSession:
    """Set a new password: every earlier token stops working; returns a fresh session."""
    _sign_in_budget(provider.email, client).guard(lambda: _verify_password(provider, change.current_password),
                                                  failed=Unauthorized)
    _check_new_password(change.new_password)
    provider.password_hash = _hashed(lambda: _hasher.hash(change.new_password))
    provider.token_version += 1
    session.add(provider)
    session.flush()
    return open_session(provider)


def log_out_everywhere(session: Session, provider: Provider) -> None:
    """Revoke every token issued so far for this account (browsers and API clients alike)."""
    provider.token_version += 1
    session.add(provider)
    session.flush()


def open_session(provider: Provider) -> LoginSession:
    token, expires_at = issue_token(provider.id, PROVIDER_AUDIENCE, provider.token_version)
    return LoginSession(provider.id, provider.name, provider.email, token, expires_at)


def provider_from_token(session: Session, token: str) -> Provider:
    """The active provider a bearer token belongs to; Unauthorized otherwise."""
    return active_provider(session, read_token(token, PROVIDER_AUDIENCE))


def active_provider(session: Session, claims: TokenClaims) -> Provider:
    """The provider a valid token names, if the account is still active and the token not revoked."""
    provider = session.get(Provider, claims.subject)
    if provider is None or not provider.is_active:
        raise Unauthorized("The account no longer exists.", code="invalid_token")
    if provider.token_version != claims.version:
        raise Unauthorized("This session was ended; log in again.", code="token_revoked")
    return provider
