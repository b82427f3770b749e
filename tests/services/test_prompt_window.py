"""A conversation's prompt keeps beginning where it began while the conversation grows (so the worker
reads only the new messages), moving its start only every few messages; a reply to an older message
keeps the plain window."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from convassist.db import session_scope
from convassist.models import Device, Message
from convassist.services import responses, sync
from convassist.services.responses import conversation_turns, window_step
from tests.services.test_domain_rules import make_provider

EPOCH = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)


def add(session, device, i: int) -> None:
    sync.ingest_messages(session, device, sync.MessageBatch(
        conversation_id="iMessage;-;+15550009999", participants=["+15550009999"], messages=[sync.SyncMessage(
            imessage_guid=f"w-{i}", sender_id="+15550009999" if i % 2 == 0 else None,
            direction="incoming" if i % 2 == 0 else "outgoing", text=f"message {i}",
            sent_at=EPOCH + timedelta(minutes=i))]))


def newest_prompt(session, provider_id, history=10) -> list[str]:
    newest = session.execute(sa.select(Message.id).where(Message.provider_id == provider_id)
                             .order_by(Message.sent_at.desc()).limit(1)).scalar_one()
    turns, _, _ = conversation_turns(session, provider_id, newest, history)
    return [t.text for t in turns]


def test_the_prompt_start_moves_only_every_few_messages(db):
    with session_scope() as session:
        provider_id, _ = make_provider(session, "Ana")  # its Mac synced one message (the first)
        device = session.execute(sa.select(Device).where(Device.provider_id == provider_id)).scalar_one()
        starts, lengths, previous, extended = [], [], None, 0
        for i in range(1, 30):
            add(session, device, i)
            prompt = newest_prompt(session, provider_id)
            starts.append(prompt[0])
            lengths.append(len(prompt))
            if previous is not None and prompt[:len(previous)] == previous:
                extended += 1
            previous = prompt
    step = window_step(10)
    assert min(lengths[9:]) == 10 and max(lengths) == 10 + step - 1  # 10 to 14 messages, never fewer
    assert len(set(starts)) <= 1 + (30 - 10) // step + 1  # the start moved about every 5 messages
    assert extended >= 20  # most follow-ups extend the previous prompt: the worker reads only what is new


def test_a_reply_to_an_older_message_keeps_the_plain_window(db):
    with session_scope() as session:
        provider_id, _ = make_provider(session, "Bo")
        device = session.execute(sa.select(Device).where(Device.provider_id == provider_id)).scalar_one()
        for i in range(1, 20):
            add(session, device, i)
        older = session.execute(sa.select(Message.id).where(Message.provider_id == provider_id,
                                                            Message.text == "message 12")).scalar_one()
        turns, conversation_id, _ = conversation_turns(session, provider_id, older, 10)
    assert [t.text for t in turns] == [f"message {i}" for i in range(3, 13)]
    assert isinstance(conversation_id, uuid.UUID)
    assert responses.window_size([], 10, 5) == 0
