"""Fixed-window rate limits in Redis, shared by every app process."""

from __future__ import annotations

from functools import lru_cache

import redis
from redis.exceptions import RedisError

from convassist.services.errors import DomainError
from convassist.settings import get_settings


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


def hit(bucket: str, key: str, *, limit: int, window_seconds: int) -> None:
    """Count one request for (bucket, key); DomainError 429 past `limit` per window.

    Fails open when Redis is down: a rate limit must not take the API down with it.
    """
    name = f"convassist:ratelimit:{bucket}:{key}"
    try:
        pipe = _client(get_settings().redis_url).pipeline()
        pipe.incr(name)
        pipe.expire(name, window_seconds, nx=True)
        count, _ = pipe.execute()
    except RedisError:
        return
    if count > limit:
        raise DomainError("Too many requests; try again in a few minutes.", code="rate_limited", status=429)
