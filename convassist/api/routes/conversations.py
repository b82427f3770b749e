"""Browsing conversations (provider token)."""

import uuid
from datetime import datetime
from typing import Annotated, Optional

from fastapi import APIRouter, Query, Response

from convassist.api.deps import CurrentProvider, DbSession
from convassist.schemas import MAX_OFFSET, CamelModel
from convassist.services import conversations

router = APIRouter(prefix="/conversations", tags=["conversations"])


class ConversationOut(CamelModel):
    id: uuid.UUID
    display_name: str
    is_group: bool
    participants: list[str]
    last_message_at: Optional[datetime]
    message_count: int
    last_message_preview: Optional[str]
    needs_reply: bool


class ConversationList(CamelModel):
    items: list[ConversationOut]
    total: int
    limit: int
    offset: int


class ReactionOut(CamelModel):
    type: str
    sender_id: Optional[str]


class MessageOut(CamelModel):
    id: uuid.UUID
    imessage_guid: str
    sender_id: Optional[str]
    sender_name: Optional[str]
    direction: str
    message_type: str
    text: Optional[str]
    sent_at: datetime
    edited_at: Optional[datetime]
    retracted: bool
    reactions: list[ReactionOut]


class ConversationDetail(CamelModel):
    conversation: ConversationOut
    messages: list[MessageOut]
    next_before: Optional[str]


@router.get("", response_model=ConversationList)
def list_conversations(session: DbSession, provider: CurrentProvider,
                       q: Annotated[Optional[str], Query(max_length=200)] = None,
                       needs_reply: Annotated[Optional[bool], Query(alias="needsReply")] = None,
                       limit: Annotated[int, Query(ge=1, le=200)] = 50,
                       offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0):
    """The provider's conversations, newest first; `q` searches names and messages."""
    page, total = conversations.list_conversations(session, provider.id, query=q, needs_reply=needs_reply,
                                                   limit=limit, offset=offset)
    return ConversationList(items=[ConversationOut(**c.__dict__) for c in page], total=total, limit=limit,
                            offset=offset)


@router.get("/{conversation_id}", response_model=ConversationDetail)
def get_conversation(conversation_id: uuid.UUID, session: DbSession, provider: CurrentProvider,
                     before: Annotated[Optional[str], Query(max_length=200)] = None,
                     limit: Annotated[int, Query(ge=1, le=500)] = 50):
    """One conversation with its newest messages; pass `nextBefore` as `before` for older ones."""
    page = conversations.get_conversation(session, provider.id, conversation_id, before=before, limit=limit)
    return ConversationDetail(
        conversation=ConversationOut(**page.conversation.__dict__),
        messages=[MessageOut(**{**m.__dict__, "reactions": [ReactionOut(**r) for r in m.reactions]})
                  for m in page.messages],
        next_before=page.next_before)


@router.post("/{conversation_id}/handled", status_code=204)
def mark_handled(conversation_id: uuid.UUID, session: DbSession, provider: CurrentProvider):
    """No reply owed (answered elsewhere, or none needed) until a newer message arrives."""
    conversations.mark_handled(session, provider.id, conversation_id)
    return Response(status_code=204)
