"""Signed bearer tokens (JWT, HS256). Provider and device tokens carry distinct audiences."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import jwt

from convassist.services.errors import Unauthorized
from convassist.settings import get_settings

PROVIDER_AUDIENCE = "convassist:provider"
DEVICE_AUDIENCE = "convassist:device"
_ALGORITHM = "HS256"


def issue_token(subject: uuid.UUID, audience: str) -> tuple[str, datetime]:
    """A token for subject valid for JWT_EXPIRES_IN; returns (token, expires_at)."""
    settings = get_settings()
    now = datetime.now(timezone.utc)
    expires_at = now + settings.jwt_expires_in
    claims = {"sub": str(subject), "aud": audience, "iat": now, "exp": expires_at, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, settings.resolved_jwt_secret, algorithm=_ALGORITHM), expires_at


def read_token(token: str, audience: str) -> uuid.UUID:
    """The subject of a valid token for audience; Unauthorized otherwise."""
    try:
        claims = jwt.decode(token, get_settings().resolved_jwt_secret, algorithms=[_ALGORITHM],
                            audience=audience, options={"require": ["sub", "exp", "aud"]})
        return uuid.UUID(claims["sub"])
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The token has expired; log in again.", code="token_expired") from None
    except (jwt.InvalidTokenError, ValueError):
        raise Unauthorized("The token is not valid.", code="invalid_token") from None
