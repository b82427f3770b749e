"""Signed bearer tokens (JWT, HS256). Provider and device tokens carry distinct audiences."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import jwt

from convassist.services.errors import Unauthorized
from convassist.settings import get_settings

PROVIDER_AUDIENCE = "convassist:provider"
DEVICE_AUDIENCE = "convassist:device"
_ALGORITHM = "HS256"


@dataclass(frozen=True)
class TokenClaims:
    """What a valid token says: whose it is and, for provider tokens, the account's token version
    when it was issued (bumped by "log out everywhere" and password changes)."""

    subject: uuid.UUID
    version: int = 0


def issue_token(subject: uuid.UUID, audience: str, version: int = 0) -> tuple[str, datetime]:
    """A token for subject valid for JWT_EXPIRES_IN (a device's: JWT_DEVICE_EXPIRES_IN); returns (token,
    expires_at)."""
    settings = get_settings()
    now = datetime.now(timezone.utc)
    expires_at = now + (settings.jwt_device_expires_in if audience == DEVICE_AUDIENCE else settings.jwt_expires_in)
    claims = {"sub": str(subject), "aud": audience, "ver": version, "iat": now, "exp": expires_at,
              "jti": uuid.uuid4().hex}
    return jwt.encode(claims, settings.resolved_jwt_secret, algorithm=_ALGORITHM), expires_at


def read_token(token: str, audience: str) -> TokenClaims:
    """The claims of a valid token for audience; Unauthorized otherwise (HS256 only: `alg: none` and
    every other algorithm are refused)."""
    try:
        claims = jwt.decode(token, get_settings().resolved_jwt_secret, algorithms=[_ALGORITHM],
                            audience=audience, options={"require": ["sub", "exp", "aud"]})
        version = claims.get("ver", 0)
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError("ver")
        return TokenClaims(uuid.UUID(claims["sub"]), version)
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The token has expired; log in again.", code="token_expired") from None
    except (jwt.InvalidTokenError, ValueError, TypeError, AttributeError):
        raise Unauthorized("The token is not valid.", code="invalid_token") from None
