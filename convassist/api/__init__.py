"""FastAPI routers the agent and API clients call; mounted into Reflex by `api_transformer`."""

from convassist.api.app import create_api

__all__ = ["create_api"]
