"""What the person sees, and what is logged, when a UI event fails unexpectedly.

Reflex's default handler logs the whole traceback with the exception's text (which can hold message
content, e.g. a validation error quoting its input) and shows "Contact the website administrator".
Here the log gets the exception's type only, and the person gets plain words: a lost connection to
Redis or PostgreSQL says the app is reconnecting, so they know to try again in a moment.
"""

import logging

import reflex as rx
import sqlalchemy as sa
from redis.exceptions import RedisError
from reflex.event import EventSpec

log = logging.getLogger("convassist.ui")

RECONNECTING = "Reconnecting to the server… that did not go through; try again in a moment."
FAILED = "Something went wrong; try again."


# (no `from __future__ import annotations`: Reflex checks this signature's annotations as objects)
def backend_exception_handler(exception: Exception) -> EventSpec:
    if isinstance(exception, (RedisError, ConnectionError, sa.exc.OperationalError, sa.exc.InterfaceError)):
        log.warning("ui event failed: a service is unreachable type=%s", type(exception).__name__)
        return rx.toast.warning(RECONNECTING, id="reconnecting", position="top-center")
    log.error("ui event failed type=%s", type(exception).__name__)
    return rx.toast.error(FAILED, id="backend_error", position="top-center")
