"""The HTTP API: a FastAPI app mounted at /api, so every /api path (unknown ones included) answers
in our JSON error shape instead of falling through to Reflex's HTML pages."""

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount

from convassist.api.errors import install_error_handlers
from convassist.api.limits import BodySizeLimit
from convassist.api.routes import auth, conversations, devices, health, inbox, ml, responses, sync, training
from convassist.services.sync import MAX_BODY_BYTES

API_PREFIX = "/api"


def create_api_app() -> FastAPI:
    """The FastAPI app itself (paths relative to /api); docs at /api/docs."""
    api = FastAPI(title="ConvAssist API", version="0.1.0", docs_url="/docs", openapi_url="/openapi.json",
                  redoc_url=None)
    install_error_handlers(api)
    for module in (health, auth, devices, sync, conversations, inbox, responses, ml, training):
        api.include_router(module.router)
    api.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    return api


def create_api() -> Starlette:
    """What Reflex's `api_transformer` receives: the API under /api; Reflex mounts its app after it."""
    return Starlette(routes=[Mount(API_PREFIX, app=create_api_app())])
