"""The app's blocking Redis client (limits, live-page messages, suggestions ahead): one per URL and
process, with short timeouts so that a Redis outage costs a request a second, not a hang."""

from __future__ import annotations

from functools import lru_cache

import redis

from convassist.settings import get_settings


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


def client() -> redis.Redis:
    return _client(get_settings().redis_url)
