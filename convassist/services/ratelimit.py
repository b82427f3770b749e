"""Limits in Redis, shared by every app process: request rates, and failure budgets that guard secrets.

Two kinds:
- `hit(limit, key)` counts a request and answers 429 `rate_limited` past the limit. It fails open
  when Redis is down: a rate limit must not take the API down with it.
- `FailureBudget` counts only *failed* tries of a secret (a password, a pairing code) under several
  keys at once (account, client address, everyone). Once any key's budget is spent, every try is
  refused with 429 `too_many_attempts` — the right secret too — until its window ends. It fails
  closed: without Redis nobody could count the guesses, so nothing is tried.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

import redis
from redis.exceptions import RedisError

from convassist.services.errors import DomainError, Unavailable
from convassist.settings import get_settings

KEY_PREFIX = "convassist:limit:"
T = TypeVar("T")


@dataclass(frozen=True)
class Limit:
    """At most `count` events per `window` seconds for one key of `bucket`."""

    bucket: str
    count: int
    window: int


class TooManyAttempts(DomainError):
    code = "too_many_attempts"
    status = 429


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


def _redis() -> redis.Redis:
    return _client(get_settings().redis_url)


def _key(limit: Limit, key: str) -> str:
    return f"{KEY_PREFIX}{limit.bucket}:{key}"


def _wait_message(seconds: int) -> str:
    minutes = (seconds + 59) // 60
    return f"{minutes} minute{'s' if minutes != 1 else ''}" if seconds > 60 else f"{seconds} seconds"


def hit(limit: Limit, key: str) -> None:
    """Count one request for key; 429 `rate_limited` (with Retry-After) past limit.count per window."""
    name = _key(limit, key)
    try:
        pipe = _redis().pipeline()
        pipe.incr(name).expire(name, limit.window, nx=True).ttl(name)
        count, _, ttl = pipe.execute()
    except RedisError:
        return
    if count > limit.count:
        wait = max(1, int(ttl))
        raise DomainError(f"Too many requests; try again in {_wait_message(wait)}.", code="rate_limited",
                          status=429, retry_after=wait)


class FailureBudget:
    """Failed tries of one secret, counted under several (limit, key) pairs at once."""

    def __init__(self, what: str, charges: list[tuple[Limit, str]]):
        self.what = what  # for the message: "wrong codes", "wrong passwords"
        self.charges = charges

    def _names(self) -> list[str]:
        return [_key(limit, key) for limit, key in self.charges]

    def check(self) -> None:
        """TooManyAttempts (429, Retry-After) if any budget is spent; Unavailable without Redis."""
        names = self._names()
        try:
            pipe = _redis().pipeline(transaction=False)
            pipe.mget(names)
            for name in names:
                pipe.ttl(name)
            counts, *ttls = pipe.execute()
        except RedisError as exc:
            raise Unavailable("Cannot check sign-in limits right now; try again shortly.",
                              code="limits_unavailable") from exc
        waits = [max(1, int(ttl)) for (limit, _), count, ttl in zip(self.charges, counts, ttls)
                 if count is not None and int(count) >= limit.count]
        if waits:
            wait = max(waits)
            raise TooManyAttempts(f"Too many {self.what}. Try again in {_wait_message(wait)}.", retry_after=wait)

    def fail(self) -> None:
        """Count one failed try under every key."""
        try:
            pipe = _redis().pipeline(transaction=False)
            for (limit, _), name in zip(self.charges, self._names()):
                pipe.incr(name).expire(name, limit.window, nx=True)
            pipe.execute()
        except RedisError as exc:
            raise Unavailable("Cannot check sign-in limits right now; try again shortly.",
                              code="limits_unavailable") from exc

    def guard(self, attempt: Callable[[], T], *, failed: type[DomainError] | tuple = DomainError,
              counts: Callable[[DomainError], bool] = lambda exc: True) -> T:
        """attempt() if no budget is spent; a failure it raises (of type `failed`, for which
        counts(exc) is true) is charged to every budget before it propagates."""
        self.check()
        try:
            return attempt()
        except failed as exc:
            if counts(exc):
                self.fail()
            raise
