"""Redis keys the worker publishes and the app reads (health). No message content, ever."""

from __future__ import annotations


def health_check_key(queue_name: str) -> str:
    """arq's own liveness key (refreshed every health_check_interval)."""
    return f"{queue_name}:health-check"


def model_status_key(queue_name: str) -> str:
    """JSON of ml.engine.ModelStatus, written by the worker after it loads the model."""
    return f"{queue_name}:model-status"


def wake_key(queue_name: str) -> str:
    """A list the app pushes to after queueing a job; the worker blocks on it between polls."""
    return f"{queue_name}:wake"
