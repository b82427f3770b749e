"""Suggestions computed ahead, end to end with the real worker: a client's fresh message in a one-to-one
conversation gets its suggestions before anyone asks (the conversation's Suggest is then a cache hit);
group chats, old history, answered conversations and rolled-back syncs are left alone."""

import os
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import redis
import sqlalchemy as sa

from convassist import keys
from convassist.db import session_scope
from convassist.models import Conversation, GeneratedResponse
from convassist.services import ahead
from convassist.worker.contracts import Suggestion
from tests.api.conftest import batch, message

pytestmark = pytest.mark.usefixtures("worker_process")


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def responses_for(db, message_id: str) -> list[GeneratedResponse]:
    with db.connect() as conn:
        return list(conn.execute(sa.select(GeneratedResponse).where(
            GeneratedResponse.message_id == uuid.UUID(message_id))).all())


def wait_for(check, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
    return found


def test_a_fresh_client_message_gets_its_suggestions_before_anyone_asks(provider, db):
    device = provider.pair_device()
    now = datetime.now(timezone.utc)
    assert device.sync(batch(messages=[
        message("a1", "Hi! Could I book a haircut for Friday afternoon?", sent=iso(now - timedelta(minutes=2)))
    ])).status_code == 200
    conversation = provider.get("/api/conversations").json()["items"][0]["id"]
    target = provider.get(f"/api/conversations/{conversation}").json()["messages"][0]["id"]
    rows = wait_for(lambda: [r for r in responses_for(db, target) if r.status == "completed"])
    assert len(rows) == 1 and 1 <= len(rows[0].suggestions) <= 3  # one set, as the page asks (count 3)
    # the provider opens the conversation and presses Suggest: the same request, answered from the cache
    clicked = provider.post("/api/responses/generate", json={"messageId": target, "count": 3}).json()
    # the same suggestions (stored snake_case, served camelCase: compared as the typed contract)
    assert clicked["cached"] is True
    assert ([Suggestion.model_validate(s) for s in clicked["suggestions"]]
            == [Suggestion.model_validate(s) for s in rows[0].suggestions])


def test_groups_old_history_and_answered_conversations_are_not_computed_ahead(provider, db, redis_server):
    device = provider.pair_device()
    now = datetime.now(timezone.utc)
    client = redis.Redis.from_url(redis_server.url)
    pending = keys.ahead_key(os.environ["ML_SERVICE_QUEUE"])
    client.delete(pending)
    device.sync(batch(chat="iMessage;+;group", isGroup=True, participants=["+15551234567", "+15557654321"],
                      messages=[message("g1", "Who brings snacks?", sent=iso(now))]))
    device.sync(batch(chat="iMessage;-;+15550000001", participants=["+15550000001"],
                      messages=[message("o1", "An old question", sent=iso(now - timedelta(days=3)))]))
    device.sync(batch(chat="iMessage;-;+15550000002", participants=["+15550000002"], messages=[
        message("r1", "Thanks!", sent=iso(now - timedelta(minutes=3))),
        message("r2", "You're welcome!", direction="outgoing", sent=iso(now - timedelta(minutes=2)))]))
    assert client.zcard(pending) == 0
    time.sleep(2)
    with db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(GeneratedResponse)).scalar_one() == 0


def test_an_entry_is_checked_again_when_its_turn_comes(provider, db):
    """By the time a worker takes an entry the provider may have answered: nothing is generated then."""
    import asyncio

    device = provider.pair_device()
    now = datetime.now(timezone.utc)
    device.sync(batch(chat="iMessage;-;+15550000003", participants=["+15550000003"], messages=[
        message("x1", "Are you open Sunday?", sent=iso(now - timedelta(minutes=1))),
        message("x2", "Yes, 10 to 4!", direction="outgoing", sent=iso(now))]))
    with session_scope() as session:
        conversation = session.execute(sa.select(Conversation).where(
            Conversation.provider_id == uuid.UUID(provider.id))).scalar_one()
    assert asyncio.run(ahead.run_one(uuid.UUID(provider.id), conversation.id)) == "answered"
    assert asyncio.run(ahead.run_one(uuid.uuid4(), conversation.id)) == "gone"  # another provider's: nothing


def test_a_rolled_back_sync_notes_nothing(db, redis_server, settings_env):
    settings_env(ML_SERVICE_QUEUE="convassist:queue-nobody-serves")  # so that no worker takes the entry
    client = redis.Redis.from_url(redis_server.url)
    pending = keys.ahead_key("convassist:queue-nobody-serves")
    with pytest.raises(RuntimeError), session_scope() as session:
        ahead.wanted(session, uuid.uuid4(), uuid.uuid4())
        raise RuntimeError("the sync failed after noting")
    assert client.zcard(pending) == 0
    with session_scope() as session:
        ahead.wanted(session, uuid.uuid4(), uuid.uuid4())
    assert client.zcard(pending) == 1  # noted once committed
    client.delete(pending)
