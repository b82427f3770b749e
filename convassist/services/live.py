"""Live pages: a provider's open pages hear that their data changed, whichever process changed it.

A service that changes what a page shows calls `changed(session, provider_id, topic)`. After its
transaction commits (never before: a page that reloads at once must find the new rows), one message
goes to the provider's Redis channel. Every app process's open pages of that provider listen on the
channel (`follow`, from a Reflex background event) and reload what the topic touches.

A message carries topic names only — never ids of messages, never content. Delivery is best effort by
design: PostgreSQL is the truth, and a page that missed a message while Redis was away reloads when
the channel is back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Literal

import redis.asyncio
from redis.exceptions import RedisError
from sqlmodel import Session

from convassist import db, keys, redis_sync
from convassist.settings import get_settings

log = logging.getLogger(__name__)

Topic = Literal["messages", "devices", "training", "samples", "suggestions"]
EVERYTHING: frozenset[str] = frozenset(Topic.__args__)
IDLE_SECONDS = 10.0  # how often a listener wakes without news (to notice that its page closed)


def publish(provider_id: uuid.UUID, topics: set[str] | frozenset[str]) -> None:
    """Tell the provider's open pages, now (a process without a transaction, or after one)."""
    try:
        redis_sync.client().publish(keys.live_channel(str(provider_id)), json.dumps(sorted(topics)))
    except RedisError as exc:  # pages catch up at their next event or reload
        log.warning("live publish failed provider=%s error=%s", provider_id, type(exc).__name__)


def changed(session: Session, provider_id: uuid.UUID, topic: Topic) -> None:
    """Publish `topic` to the provider's pages once `session`'s transaction has committed."""
    db.after_commit(session, "live", (provider_id, topic), _publish_all)


def _publish_all(changes: set[tuple[uuid.UUID, str]]) -> None:
    by_provider: dict[uuid.UUID, set[str]] = {}
    for provider_id, topic in changes:
        by_provider.setdefault(provider_id, set()).add(topic)
    for provider_id, topics in by_provider.items():
        publish(provider_id, topics)


async def follow(provider_id: uuid.UUID) -> AsyncIterator[frozenset[str]]:
    """The topics of each change to the provider's data, as they come; an empty set every
    IDLE_SECONDS without news. After Redis was away, one `EVERYTHING` (what was missed is unknown)."""
    channel = keys.live_channel(str(provider_id))
    missed = False
    while True:
        client = redis.asyncio.Redis.from_url(get_settings().redis_url, socket_connect_timeout=1)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(channel)
            if missed:
                missed = False
                yield EVERYTHING
            while True:
                message = await pubsub.get_message(timeout=IDLE_SECONDS)
                yield _topics(message["data"]) if message else frozenset()
        except (RedisError, OSError) as exc:
            log.warning("live channel lost provider=%s error=%s", provider_id, type(exc).__name__)
            missed = True
        finally:
            await pubsub.aclose()
            await client.aclose()
        await asyncio.sleep(1.0)
        yield frozenset()  # lets the caller stop while Redis is away


def _topics(data: bytes) -> frozenset[str]:
    try:
        return frozenset(json.loads(data)) & EVERYTHING
    except (ValueError, TypeError):
        return EVERYTHING
