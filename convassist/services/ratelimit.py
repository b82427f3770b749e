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

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from redis.exceptions import RedisError

from convassist import keys, redis_sync
from convassist.services.errors import DomainError, Unavailable

KEY_PREFIX = keys.RATE_LIMIT_PREFIX
T = TypeVar("T")


@dataclass(frozen=True)
class Limit:
    """At most `count` events per `window` seconds for one key of `bucket`; a per_address limit's keys are
    client addresses, counted by network (network_of)."""

    bucket: str
    count: int
    window: int
    per_address: bool = False


def network_of(address: str) -> str:
    """What a per-address limit counts: an IPv4 address itself, an IPv6 address by its /64 (one subscriber
    or one cloud machine gets a whole /64: counted address by address, each of its 2^64 addresses would
    bring a budget of its own); anything that is not an address as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 4:
        return str(ip)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network((ip, 64), strict=False))


class TooManyAttempts(DomainError):
    code = "too_many_attempts"
    status = 429


def forwarded_client(peer: str, forwarded_for: str, trusted_hops: int) -> str:
    """The client's address behind `trusted_hops` reverse proxies, each appending the address it saw to
    X-Forwarded-For: the address the farthest trusted one saw (Reflex's rule for the page's events,
    rx.Config.trusted_proxy_hops). Without trusted proxies, or with fewer addresses than proxies, the peer."""
    forwarded = [ip.strip() for ip in forwarded_for.split(",") if ip.strip()]
    return forwarded[-trusted_hops] if trusted_hops and len(forwarded) >= trusted_hops else peer


def _key(limit: Limit, key: str) -> str:
    return f"{KEY_PREFIX}{limit.bucket}:{network_of(key) if limit.per_address else key}"


def _wait_message(seconds: int) -> str:
    minutes = (seconds + 59) // 60
    return f"{minutes} minute{'s' if minutes != 1 else ''}" if seconds > 60 else f"{seconds} seconds"


def hit(limit: Limit, key: str) -> None:
    """Count one request for key; 429 `rate_limited` (with Retry-After) past limit.count per window."""
    name = _key(limit, key)
    try:
        pipe = redis_sync.client().pipeline()
        pipe.incr(name).expire(name, limit.window, nx=True).ttl(name)
        count, _, ttl = pipe.execute()
    except RedisError:
        return
    if count > limit.count:
        wait = max(1, int(ttl))
        raise DomainError(f"Too many requests; try again in {_wait_message(wait)}.", code="rate_limited",
                          status=429, retry_after=wait)


# Reserve one try under every key at once, or none: refused (the longest wait) while any key's budget
# is spent. Checking and counting in one step means concurrent guesses cannot all slip through a
# check before any of them is counted. KEYS: counters; ARGV: count, window for each key in turn.
_RESERVE = """
local wait = 0
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[2 * i - 1]) then
    wait = math.max(wait, redis.call('TTL', key), 1)
  end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  redis.call('INCR', key)
  if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, ARGV[2 * i]) end
end
return 0
"""
# Give a reserved try back (it succeeded, or failed in a way that is not a guess); never below zero
# and never creating a key whose window has already ended.
_REFUND = """
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
end
return 0
"""


class FailureBudget:
    """Failed tries of one secret, counted under several (limit, key) pairs at once.

    Every try is counted *before* it is made and given back when it turns out not to be a failed
    guess, so a try in flight already uses the budget: 100 concurrent guesses against a budget of 5
    make 5 tries, not 100."""

    def __init__(self, what: str, charges: list[tuple[Limit, str]]):
        self.what = what  # for the message: "wrong codes", "failed sign-ins"
        self.charges = charges

    def _names(self) -> list[str]:
        return [_key(limit, key) for limit, key in self.charges]

    def _run(self, script: str, args: list[int]) -> int:
        try:
            return int(redis_sync.client().eval(script, len(self.charges), *self._names(), *args))
        except RedisError as exc:  # without Redis nobody can count the guesses: nothing is tried
            raise Unavailable("Cannot check sign-in limits right now; try again shortly.",
                              code="limits_unavailable") from exc

    def reserve(self) -> None:
        """Count one try under every key; TooManyAttempts (429, Retry-After) if any budget is spent."""
        wait = self._run(_RESERVE, [n for limit, _ in self.charges for n in (limit.count, limit.window)])
        if wait:
            raise TooManyAttempts(f"Too many {self.what}. Try again in {_wait_message(wait)}.", retry_after=wait)

    def refund(self) -> None:
        """Give back a reserved try that was not a failed guess."""
        self._run(_REFUND, [])

    def guard(self, attempt: Callable[[], T], *, failed: type[DomainError] | tuple = DomainError,
              counts: Callable[[DomainError], bool] = lambda exc: True) -> T:
        """attempt() within the budgets: a failure it raises (of type `failed`, for which counts(exc)
        is true) stays counted under every key; anything else gives the reserved try back."""
        self.reserve()
        charged = False
        try:
            result = attempt()
        except failed as exc:
            charged = counts(exc)
            raise
        finally:
            if not charged:
                self.refund()
        return result
