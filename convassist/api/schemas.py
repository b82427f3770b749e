"""Request/response bodies. JSON field names are camelCase, as the agent expects."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from convassist.schemas import CamelModel


class ErrorBody(CamelModel):
    error: str = Field(description="stable machine-readable code")
    message: str


class TokenResponse(CamelModel):
    token: str
    expires_at: datetime
    provider_id: str
    name: str
    email: str


class ProviderOut(CamelModel):
    id: str
    email: str
    name: str
    created_at: datetime
