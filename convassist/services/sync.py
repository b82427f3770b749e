"""Message sync from a device: idempotent, all-or-nothing batches.

A replay inserts nothing; an edit updates the text; an unsend marks the message retracted; tapbacks
become reactions on their target and never conversation messages. On PostgreSQL a batch is one
`INSERT … SELECT FROM jsonb_to_recordset(…) ON CONFLICT … RETURNING` (one round trip for 500 messages); other
databases take a portable path with the same results.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Literal, Optional

import sqlalchemy as sa
from pydantic import Field, field_validator
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from convassist.models import Conversation, Device, Message, Reaction, utcnow
from convassist.schemas import CamelModel, CleanStr
from convassist.services import ahead, live
from convassist.services.errors import DomainError

log = logging.getLogger(__name__)

MAX_MESSAGES = 1000
MAX_BODY_BYTES = 5 * 1024 * 1024
TAPBACK_TYPES = set(range(2000, 2008)) | set(range(3000, 3008))


class SyncMessage(CamelModel):
    imessage_guid: CleanStr = Field(min_length=1, max_length=200)
    sender_id: Optional[CleanStr] = Field(default=None, max_length=320)
    direction: Literal["incoming", "outgoing"]
    message_type: CleanStr = Field(default="text", min_length=1, max_length=30)
    text: Optional[CleanStr] = Field(default=None, max_length=100_000)
    sent_at: datetime
    edited_at: Optional[datetime] = None
    retracted: bool = False
    associated_message_guid: Optional[CleanStr] = Field(default=None, max_length=200)
    associated_message_type: Optional[int] = Field(default=None, ge=-(2**31), le=2**31 - 1)  # an int column

    @field_validator("sent_at", "edited_at")
    @classmethod
    def _utc(cls, value: Optional[datetime]) -> Optional[datetime]:
        """In UTC: PostgreSQL refuses offsets beyond ±15:59 that ISO 8601 (and Python) allow."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        try:
            return value.astimezone(timezone.utc)
        except OverflowError:  # year 1 or 9999 pushed past the calendar's edge
            raise ValueError("date out of range") from None

    @property
    def is_tapback(self) -> bool:
        return self.associated_message_type in TAPBACK_TYPES and bool(self.associated_message_guid)


class MessageBatch(CamelModel):
    """One conversation's messages. Every text is stored cleaned: NUL characters are removed and lone
    UTF-16 surrogates become U+FFFD (see convassist.schemas.clean_text), so one bad character never
    fails a batch."""

    conversation_id: CleanStr = Field(min_length=1, max_length=300, description="the iMessage chat id")
    display_name: Optional[CleanStr] = Field(default=None, max_length=300)
    is_group: bool = False
    participants: list[Annotated[CleanStr, Field(max_length=320)]] = Field(default_factory=list, max_length=500)
    messages: list[SyncMessage]


@dataclass(frozen=True)
class SyncResult:
    received: int
    inserted: int
    updated: int
    duplicates: int


def target_guid(associated: str) -> str:
    """`p:0/GUID` or `bp:GUID` → GUID."""
    if associated.startswith("bp:"):
        return associated[3:]
    if associated.startswith("p:") and "/" in associated:
        return associated.split("/", 1)[1]
    return associated


def checked_in(session: Session, device: Device) -> None:
    """The Mac synced and had nothing new to send: it is up to date as of now. (Without this a quiet Mac, at
    night or over a weekend, showed as "No sync for N hours" like a dead one.)"""
    session.execute(sa.update(Device).where(Device.id == device.id).values(last_sync_at=utcnow()))
    live.changed(session, device.provider_id, "devices")


def ingest_messages(session: Session, device: Device, batch: MessageBatch) -> SyncResult:
    """Store a batch from a device into its provider's data, in the caller's transaction."""
    if len(batch.messages) > MAX_MESSAGES:
        raise DomainError(f"At most {MAX_MESSAGES} messages per call; split the batch.",
                          code="too_many_messages", status=413)
    started = time.perf_counter()
    # the last copy of a GUID within one batch wins (ON CONFLICT may not touch a row twice)
    unique = {m.imessage_guid: m for m in batch.messages}
    regular = sorted((m for m in unique.values() if not m.is_tapback), key=lambda m: m.imessage_guid)
    tapbacks = sorted((m for m in unique.values() if m.is_tapback), key=lambda m: m.imessage_guid)

    provider_id = device.provider_id
    conversation_id = _conversation_id(session, provider_id, device.id, batch)
    postgres = session.get_bind().dialect.name == "postgresql"
    upsert = _upsert_messages_postgres if postgres else _upsert_messages_portable
    inserted, updated = upsert(session, provider_id, conversation_id, regular)
    reactions = _insert_reactions(session, provider_id, conversation_id, tapbacks)

    _touch_conversation(session, conversation_id, batch, device.id, added=inserted,
                        last_message_at=max((m.sent_at for m in regular), default=None))
    session.execute(sa.update(Device).where(Device.id == device.id).values(last_sync_at=utcnow()))
    result = SyncResult(len(batch.messages), inserted + reactions, updated,
                        len(batch.messages) - inserted - reactions - updated)
    live.changed(session, provider_id, "messages" if result.inserted or result.updated else "devices")
    newest = max(regular, key=lambda m: m.sent_at, default=None)
    if inserted and not batch.is_group and newest is not None and ahead.is_fresh_incoming(newest.direction,
                                                                                          newest.sent_at):
        ahead.wanted(session, provider_id, conversation_id)  # its suggestions, ready before it is opened
    log.info("sync device=%s conversation=%s received=%d inserted=%d updated=%d duplicates=%d ms=%.1f",
             device.id, conversation_id, result.received, result.inserted, result.updated, result.duplicates,
             (time.perf_counter() - started) * 1000)
    return result


def _insert_on_conflict_nothing(session: Session, table, values: dict | list[dict], keys: list[str]):
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).values(values).on_conflict_do_nothing(index_elements=keys)


def _conversation_id(session: Session, provider_id: uuid.UUID, device_id: uuid.UUID,
                     batch: MessageBatch) -> uuid.UUID:
    """The conversation's id, created if new. Its row stays locked to the end of the transaction, so
    concurrent batches of one conversation take their locks in the same order (no deadlocks)."""
    table = Conversation.__table__
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table).values(
        id=uuid.uuid4(), provider_id=provider_id, device_id=device_id, imessage_chat_id=batch.conversation_id,
        display_name=batch.display_name, is_group=batch.is_group, participants=batch.participants,
        message_count=0, created_at=utcnow(), updated_at=utcnow())
    statement = insert.on_conflict_do_update(index_elements=["provider_id", "imessage_chat_id"],
                                             set_={"updated_at": insert.excluded.updated_at})
    return session.execute(statement.returning(table.c.id)).scalar_one()


_PG_UPSERT = """
INSERT INTO message (id, provider_id, conversation_id, imessage_guid, sender_id, direction, message_type,
                     text, sent_at, edited_at, retracted, associated_message_guid, associated_message_type,
                     created_at, updated_at)
SELECT gen_random_uuid(), %(provider)s, %(conversation)s, t.*, now(), now()
FROM jsonb_to_recordset(%(rows)s::jsonb) AS t(imessage_guid text, sender_id text, direction text,
     message_type text, text text, sent_at timestamptz, edited_at timestamptz, retracted bool,
     associated_message_guid text, associated_message_type int)
ON CONFLICT (provider_id, imessage_guid) DO UPDATE SET
    text = COALESCE(EXCLUDED.text, message.text),
    edited_at = COALESCE(EXCLUDED.edited_at, message.edited_at),
    retracted = message.retracted OR EXCLUDED.retracted,
    updated_at = now()
WHERE (EXCLUDED.text IS NOT NULL AND EXCLUDED.text IS DISTINCT FROM message.text)
   OR (EXCLUDED.edited_at IS NOT NULL AND EXCLUDED.edited_at IS DISTINCT FROM message.edited_at)
   OR (EXCLUDED.retracted AND NOT message.retracted)
RETURNING (xmax = 0) AS inserted
"""


def _upsert_messages_postgres(session: Session, provider_id, conversation_id, messages: list[SyncMessage]):
    if not messages:
        return 0, 0
    # One JSON parameter that PostgreSQL unpacks itself: much cheaper to send than 10 typed arrays.
    rows = json.dumps([{
        "imessage_guid": m.imessage_guid, "sender_id": m.sender_id, "direction": m.direction,
        "message_type": m.message_type, "text": m.text, "sent_at": m.sent_at.isoformat(),
        "edited_at": m.edited_at.isoformat() if m.edited_at else None, "retracted": m.retracted,
        "associated_message_guid": m.associated_message_guid,
        "associated_message_type": m.associated_message_type} for m in messages])
    result = session.connection().exec_driver_sql(
        _PG_UPSERT, {"provider": provider_id, "conversation": conversation_id, "rows": rows}).fetchall()
    inserted = sum(1 for (was_insert,) in result if was_insert)
    return inserted, len(result) - inserted


def _upsert_messages_portable(session: Session, provider_id, conversation_id, messages: list[SyncMessage]):
    """The same semantics as the PostgreSQL statement, for SQLite (the no-PostgreSQL fallback)."""
    if not messages:
        return 0, 0
    table = Message.__table__
    existing = {row.imessage_guid: row for row in session.execute(
        sa.select(table.c.id, table.c.imessage_guid, table.c.text, table.c.edited_at, table.c.retracted)
        .where(table.c.provider_id == provider_id,
               table.c.imessage_guid.in_([m.imessage_guid for m in messages])))}
    new_rows, updated = [], 0
    now = utcnow()
    for m in messages:
        old = existing.get(m.imessage_guid)
        if old is None:
            new_rows.append({"id": uuid.uuid4(), "provider_id": provider_id, "conversation_id": conversation_id,
                             "imessage_guid": m.imessage_guid, "sender_id": m.sender_id,
                             "direction": m.direction, "message_type": m.message_type, "text": m.text,
                             "sent_at": m.sent_at, "edited_at": m.edited_at, "retracted": m.retracted,
                             "associated_message_guid": m.associated_message_guid,
                             "associated_message_type": m.associated_message_type,
                             "created_at": now, "updated_at": now})
            continue
        old_edited = old.edited_at.replace(tzinfo=timezone.utc) if old.edited_at and not old.edited_at.tzinfo \
            else old.edited_at
        changes = {}
        if m.text is not None and m.text != old.text:
            changes["text"] = m.text
        if m.edited_at is not None and m.edited_at != old_edited:
            changes["edited_at"] = m.edited_at
        if m.retracted and not old.retracted:
            changes["retracted"] = True
        if changes:
            session.execute(sa.update(table).where(table.c.id == old.id).values(**changes, updated_at=now))
            updated += 1
    if new_rows:
        session.execute(_insert_on_conflict_nothing(session, table, new_rows, ["provider_id", "imessage_guid"]))
    return len(new_rows), updated


def _insert_reactions(session: Session, provider_id, conversation_id, tapbacks: list[SyncMessage]) -> int:
    if not tapbacks:
        return 0
    table = Reaction.__table__
    now = utcnow()
    rows = [{"id": uuid.uuid4(), "provider_id": provider_id, "conversation_id": conversation_id,
             "imessage_guid": m.imessage_guid, "target_guid": target_guid(m.associated_message_guid),
             "sender_id": m.sender_id if m.direction == "incoming" else None,
             "reaction_type": m.associated_message_type, "sent_at": m.sent_at, "created_at": now}
            for m in tapbacks]
    statement = _insert_on_conflict_nothing(session, table, rows, ["provider_id", "imessage_guid"])
    return len(session.execute(statement.returning(table.c.id)).all())


def _touch_conversation(session: Session, conversation_id: uuid.UUID, batch: MessageBatch,
                        device_id: uuid.UUID, *, added: int, last_message_at: datetime | None) -> None:
    table = Conversation.__table__
    values: dict = {"message_count": table.c.message_count + added, "is_group": batch.is_group,
                    "device_id": device_id, "updated_at": utcnow()}
    if batch.display_name:
        values["display_name"] = batch.display_name
    if batch.participants:
        values["participants"] = batch.participants
    if last_message_at is not None:
        values["last_message_at"] = sa.case(
            (sa.or_(table.c.last_message_at.is_(None), table.c.last_message_at < last_message_at),
             last_message_at), else_=table.c.last_message_at)
    session.execute(sa.update(table).where(table.c.id == conversation_id).values(**values))
