"""Browsing a provider's conversations and their messages (newest first, cursor-paged)."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from convassist.models import Conversation, Message, Reaction, as_utc, utcnow
from convassist.schemas import check_page, clean_text
from convassist.services import contacts, live
from convassist.services.errors import DomainError, NotFound

PREVIEW_LENGTH = 80
TAPBACK_NAMES = {0: "love", 1: "like", 2: "dislike", 3: "laugh", 4: "emphasize", 5: "question",
                 6: "emoji", 7: "sticker"}


@dataclass
class ConversationSummary:
    id: uuid.UUID
    display_name: str
    is_group: bool
    participants: list[str]
    last_message_at: datetime | None
    message_count: int
    last_message_preview: str | None
    needs_reply: bool


@dataclass
class MessageView:
    id: uuid.UUID
    imessage_guid: str
    sender_id: str | None
    sender_name: str | None
    direction: str
    message_type: str
    text: str | None
    sent_at: datetime
    edited_at: datetime | None
    retracted: bool
    reactions: list[dict] = field(default_factory=list)


@dataclass
class ConversationPage:
    conversation: ConversationSummary
    messages: list[MessageView]  # newest first
    next_before: str | None  # cursor for the next (older) page


def _display_name(conv_name: str | None, participants: list[str], names: dict[str, str]) -> str:
    """Whom a conversation is with: for one person, the name the provider's AddressBook gives them
    (over the chat's own name); for a group, its name; else the people in it, named or readable."""
    if len(participants) == 1 and participants[0] in names:
        return names[participants[0]]
    if conv_name:
        return conv_name
    shown = [contacts.shown_name(p, names) for p in participants]
    return ", ".join(shown) if shown else "Unknown"


MAX_QUERY_LENGTH = 200
MAX_PAGE = 200


def list_conversations(session: Session, provider_id: uuid.UUID, *, query: str | None = None,
                       needs_reply: bool | None = None, limit: int = 50, offset: int = 0,
                       oldest_first: bool = False) -> tuple[list[ConversationSummary], int]:
    """The provider's conversations, newest first (or, oldest_first, the longest silent first: with
    needs_reply, who has waited longest), with a preview; returns (page, total)."""
    if query is not None:
        if len(query) > MAX_QUERY_LENGTH:
            raise DomainError(f"Search for at most {MAX_QUERY_LENGTH} characters.", code="query_too_long", status=422)
        query = clean_text(query)
    check_page(limit, offset, MAX_PAGE)

    def last(column):  # the newest message's column, via the (conversation_id, sent_at) index
        return (sa.select(column).where(Message.conversation_id == Conversation.id)
                .order_by(Message.sent_at.desc(), Message.id.desc()).limit(1)
                .correlate(Conversation).scalar_subquery())

    last_direction = last(Message.direction)
    statement = sa.select(Conversation).where(Conversation.provider_id == provider_id)
    if query and query.strip():
        escaped = query.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        matching_handles = _handles_matching_contacts(session, provider_id, pattern)
        statement = statement.where(sa.or_(
            sa.func.lower(Conversation.display_name).like(pattern, escape="\\"),
            sa.func.lower(sa.cast(Conversation.participants, sa.String)).like(pattern, escape="\\"),
            *[sa.cast(Conversation.participants, sa.String).like(f'%"{h}"%') for h in matching_handles],
            sa.exists().where(Message.conversation_id == Conversation.id,
                              Message.retracted.is_(False), sa.func.lower(Message.text).like(pattern, escape="\\")),
        ))
    if needs_reply is not None:
        owed = sa.and_(last_direction == "incoming", sa.or_(Conversation.handled_through.is_(None),
                                                             Conversation.handled_through < Conversation.last_message_at))
        statement = statement.where(owed if needs_reply else sa.not_(owed))
    total = session.execute(sa.select(sa.func.count()).select_from(statement.subquery())).scalar_one()
    newest = Conversation.last_message_at.asc() if oldest_first else Conversation.last_message_at.desc()
    statement = statement.order_by(newest.nulls_last(), Conversation.id)
    rows = session.execute(statement.add_columns(last(Message.text), last_direction, last(Message.retracted))
                           .limit(limit).offset(offset)).all()
    handles = {p for row in rows for p in row[0].participants}
    names = contacts.names_for(session, provider_id, handles)
    page = []
    for conv, text, direction, retracted in rows:
        preview = "Message unsent" if retracted else (text[:PREVIEW_LENGTH] if text else None)
        page.append(ConversationSummary(conv.id, _display_name(conv.display_name, conv.participants, names),
                                        conv.is_group, conv.participants, as_utc(conv.last_message_at),
                                        conv.message_count, preview, direction == "incoming" and not _handled(conv)))
    return page, total


def _handled(conv: Conversation) -> bool:
    """Marked handled by hand, and nothing newer came since."""
    return conv.handled_through is not None and (
        conv.last_message_at is None or as_utc(conv.handled_through) >= as_utc(conv.last_message_at))


def mark_handled(session: Session, provider_id: uuid.UUID, conversation_id: uuid.UUID) -> None:
    """The provider answered elsewhere (or no answer is needed): the conversation stops needing a reply
    until a newer message arrives."""
    conv = session.get(Conversation, conversation_id)
    if conv is None or conv.provider_id != provider_id:
        raise NotFound("No such conversation.")
    conv.handled_through = conv.last_message_at or utcnow()
    session.add(conv)
    session.flush()
    live.changed(session, provider_id, "messages")


def _handles_matching_contacts(session: Session, provider_id: uuid.UUID, pattern: str) -> list[str]:
    from convassist.models import Contact

    rows = session.execute(sa.select(Contact.phone_number, Contact.email).where(
        Contact.provider_id == provider_id, sa.func.lower(Contact.display_name).like(pattern, escape="\\"))
        .limit(200)).all()
    return [h for row in rows for h in row if h]


def encode_cursor(sent_at: datetime, message_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{as_utc(sent_at).isoformat()}|{message_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        sent, message_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return as_utc(datetime.fromisoformat(sent)), uuid.UUID(message_id)
    except (ValueError, UnicodeDecodeError):
        raise DomainError("The `before` cursor is not valid.", code="invalid_cursor") from None


def get_conversation(session: Session, provider_id: uuid.UUID, conversation_id: uuid.UUID, *,
                     before: str | None = None, limit: int = 50) -> ConversationPage:
    """A conversation with one page of messages, newest first; another provider's id is NotFound."""
    conv = session.get(Conversation, conversation_id)
    if conv is None or conv.provider_id != provider_id:
        raise NotFound("No such conversation.")
    statement = (sa.select(Message).where(Message.conversation_id == conv.id)
                 .order_by(Message.sent_at.desc(), Message.id.desc()).limit(limit + 1))
    if before:
        sent_at, message_id = decode_cursor(before)
        statement = statement.where(sa.or_(Message.sent_at < sent_at,
                                           sa.and_(Message.sent_at == sent_at, Message.id < message_id)))
    rows = session.execute(statement).scalars().all()
    more = len(rows) > limit
    rows = rows[:limit]
    names = contacts.names_for(session, provider_id, {m.sender_id for m in rows if m.sender_id}
                               | set(conv.participants))
    reactions = _reactions(session, provider_id, [m.imessage_guid for m in rows])
    messages = [MessageView(m.id, m.imessage_guid, m.sender_id,
                            contacts.shown_name(m.sender_id, names) if m.sender_id else None,
                            m.direction, m.message_type, None if m.retracted else m.text, as_utc(m.sent_at),
                            as_utc(m.edited_at), m.retracted, reactions.get(m.imessage_guid, []))
                for m in rows]
    summary = ConversationSummary(conv.id, _display_name(conv.display_name, conv.participants, names),
                                  conv.is_group, conv.participants, as_utc(conv.last_message_at),
                                  conv.message_count,
                                  None, bool(messages) and messages[0].direction == "incoming" and not before
                                  and not _handled(conv))
    next_before = encode_cursor(rows[-1].sent_at, rows[-1].id) if more else None
    return ConversationPage(summary, messages, next_before)


def _reactions(session: Session, provider_id: uuid.UUID, guids: list[str]) -> dict[str, list[dict]]:
    """Active reactions per target GUID: the latest add/remove event per (sender, kind) wins."""
    if not guids:
        return {}
    events = session.execute(sa.select(Reaction.target_guid, Reaction.sender_id, Reaction.reaction_type)
                             .where(Reaction.provider_id == provider_id, Reaction.target_guid.in_(guids))
                             .order_by(Reaction.sent_at, Reaction.id)).all()
    state: dict[tuple, bool] = {}
    for target, sender, kind in events:
        state[(target, sender, kind % 1000)] = kind < 3000
    result: dict[str, list[dict]] = {}
    for (target, sender, kind), active in state.items():
        if active:
            result.setdefault(target, []).append({"type": TAPBACK_NAMES.get(kind, "other"), "senderId": sender})
    return result
