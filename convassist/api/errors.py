"""One error shape for every failure: {"error": "<stable_code>", "message": "..."}."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from convassist.schemas import describe
from convassist.services.errors import DomainError

log = logging.getLogger("convassist.api")

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
               415: "unsupported_media_type", 429: "rate_limited", 503: "service_unavailable"}


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        if exc.retry_after is not None:
            headers["Retry-After"] = str(exc.retry_after)
        return error_response(exc.status, exc.code, exc.message, headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        return error_response(422, "validation_error", describe(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(sa.exc.OperationalError)
    @app.exception_handler(sa.exc.InterfaceError)
    @app.exception_handler(sa.exc.TimeoutError)
    async def _database_unavailable(request: Request, exc: Exception):
        """PostgreSQL restarting, unreachable or too slow to hand out a connection: a retryable 503 (the pool
        reconnects by itself)."""
        log.warning("database unavailable path=%s type=%s", request.url.path, type(exc.orig).__name__
                    if getattr(exc, "orig", None) is not None else type(exc).__name__)
        return error_response(503, "database_unavailable", "The database is not reachable; try again shortly.",
                              {"Retry-After": "5"})

    @app.exception_handler(RedisError)
    async def _redis_unavailable(request: Request, exc: RedisError):
        """Redis restarting or unreachable: a retryable 503 (connections are made again on the next call)."""
        log.warning("redis unavailable path=%s type=%s", request.url.path, type(exc).__name__)
        return error_response(503, "queue_unavailable", "Redis is not reachable; try again shortly.",
                              {"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.error("unhandled error path=%s type=%s", request.url.path, type(exc).__name__)
        return error_response(500, "internal_error", "Something went wrong on the server.")
