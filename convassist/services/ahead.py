"""Suggestions computed ahead: when a sync brings a client's new message into a one-to-one
conversation, its suggestions are generated in the background, so that the provider who opens the
conversation finds them there (and a click on Suggest is a cache hit).

- The sync notes the conversation after its commit (`wanted`): one entry per conversation in a Redis
  sorted set, so a newer message supersedes the older one's entry; the set keeps the newest
  MAX_PENDING entries.
- Workers take entries only while no user-facing generation is queued or running
  (convassist.worker.ahead), newest first, and `run_one` checks again what is true by then: the
  newest message is still the client's, nobody answered or marked it handled, it has no suggestions
  yet. Group chats are skipped (noisy: most messages there are not for the provider to answer), and so
  is history older than FRESH (a first sync of years of messages must not queue thousands of jobs).
- Per provider, background generations have their own budget (AHEAD_PER_MINUTE, one at a time), so
  they never use up the provider's own.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import timedelta
from typing import Literal

import sqlalchemy as sa
from redis.exceptions import RedisError
from sqlmodel import Session

from convassist import db, keys, redis_sync
from convassist.db import session_scope
from convassist.models import Conversation, GeneratedResponse, Message, as_utc, utcnow
from convassist.settings import get_settings

log = logging.getLogger(__name__)

MAX_PENDING = 1000
FRESH = timedelta(hours=24)
COUNT = 3  # what the conversation page asks for: the same request, so the same cache entry

Outcome = Literal["generated", "answered", "group", "stale", "has_suggestions", "gone", "failed"]


def member(provider_id: uuid.UUID, conversation_id: uuid.UUID) -> str:
    return f"{provider_id}:{conversation_id}"


def parse_member(value: bytes | str) -> tuple[uuid.UUID, uuid.UUID]:
    provider, conversation = (value.decode() if isinstance(value, bytes) else value).split(":")
    return uuid.UUID(provider), uuid.UUID(conversation)


def wanted(session: Session, provider_id: uuid.UUID, conversation_id: uuid.UUID) -> None:
    """Note the conversation for suggestions ahead once `session` commits (after a sync that brought a
    fresh incoming message into a one-to-one conversation)."""
    db.after_commit(session, "ahead", member(provider_id, conversation_id), _note)


def _note(entries: set[str]) -> None:
    if not get_settings().ml_service_ahead:
        return
    now = time.time() * 1000
    try:
        key = keys.ahead_key(get_settings().ml_service_queue)
        pipe = redis_sync.client().pipeline()
        pipe.zadd(key, {entry: now for entry in entries})
        pipe.zremrangebyrank(key, 0, -MAX_PENDING - 1)
        pipe.execute()
    except RedisError as exc:  # only a head start is lost: Suggest still works
        log.warning("ahead not queued entries=%d error=%s", len(entries), type(exc).__name__)


def is_fresh_incoming(direction: str, sent_at) -> bool:
    return direction == "incoming" and as_utc(sent_at) >= utcnow() - FRESH


def _target(session: Session, provider_id: uuid.UUID, conversation_id: uuid.UUID) -> tuple[Outcome | None, uuid.UUID | None]:
    conv = session.get(Conversation, conversation_id)
    if conv is None or conv.provider_id != provider_id:
        return "gone", None
    if conv.is_group:
        return "group", None
    newest = session.execute(sa.select(Message.id, Message.direction, Message.sent_at, Message.retracted)
                             .where(Message.conversation_id == conversation_id)
                             .order_by(Message.sent_at.desc(), Message.id.desc()).limit(1)).one_or_none()
    if newest is None or newest.direction != "incoming" or newest.retracted:
        return "answered", None
    if conv.handled_through is not None and as_utc(conv.handled_through) >= as_utc(newest.sent_at):
        return "answered", None
    if not is_fresh_incoming(newest.direction, newest.sent_at):
        return "stale", None
    exists = session.execute(sa.select(GeneratedResponse.id).where(
        GeneratedResponse.provider_id == provider_id, GeneratedResponse.message_id == newest.id).limit(1)).first()
    if exists:
        return "has_suggestions", None
    return None, newest.id


async def run_one(provider_id: uuid.UUID, conversation_id: uuid.UUID) -> Outcome:
    """Generate the suggestions the conversation page would ask for, if they are still wanted."""
    from convassist.services import responses
    from convassist.services.errors import DomainError

    def read():
        with session_scope() as session:
            return _target(session, provider_id, conversation_id)

    skipped, message_id = await asyncio.to_thread(read)
    if skipped:
        return skipped
    try:
        await responses.generate_for_message(provider_id, message_id, count=COUNT, ahead=True)
    except DomainError as exc:  # rate-limited, the worker busy or gone: the provider can still click
        log.info("ahead failed conversation=%s code=%s", conversation_id, exc.code)
        return "failed"
    return "generated"
