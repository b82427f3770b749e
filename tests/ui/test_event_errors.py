"""A failed UI event: the log names the exception's type only (its text may quote message content),
and the person is told plainly — "reconnecting" when Redis or PostgreSQL is unreachable."""

import logging

import sqlalchemy as sa
from pydantic import BaseModel, ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError

from convassist.state.errors import FAILED, RECONNECTING, backend_exception_handler


def test_lost_services_say_reconnecting_and_nothing_of_the_error_is_logged(caplog):
    caplog.set_level(logging.DEBUG)
    secret = "SECRET client message: see you at 10pm"

    class Form(BaseModel):
        n: int

    try:
        Form(n=secret)
    except ValidationError as exc:
        failed = backend_exception_handler(exc)
    reconnecting = backend_exception_handler(RedisConnectionError(f"Error connecting: {secret}"))
    database = backend_exception_handler(sa.exc.OperationalError("SELECT", {}, Exception(secret)))
    assert secret not in caplog.text and "type=ValidationError" in caplog.text
    assert RECONNECTING in str(reconnecting) and RECONNECTING in str(database) and FAILED in str(failed)
