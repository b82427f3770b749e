"""SQLModel tables only. Every row has an owner (`provider_id`); unique keys are scoped per provider.

Kept in its own module: AppHarness-style module reloads must not define a table twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, Optional

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(moment: Optional[datetime]) -> Optional[datetime]:
    """A stored time as an aware UTC datetime (SQLite hands back naive ones)."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment


def _id() -> uuid.UUID:
    return uuid.uuid4()


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _owner() -> Any:
    return Field(foreign_key="provider.id", index=False, nullable=False, ondelete="CASCADE")


class Provider(SQLModel, table=True):
    """A service provider's account."""

    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    email: str = Field(sa_column=Column(sa.String(320), nullable=False, unique=True))
    name: str = Field(max_length=200)
    password_hash: str = Field(max_length=255)
    is_active: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})
    # carried by every provider token; bumping it revokes them all (log out everywhere, new password)
    token_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = Field(default_factory=utcnow, sa_type=_tz())
    last_login_at: Optional[datetime] = Field(default=None, sa_type=_tz())


class Device(SQLModel, table=True):
    """A Mac running the agent. Pending until a provider approves its pairing code."""

    __table_args__ = (sa.UniqueConstraint("provider_id", "hardware_id", name="uq_device_provider_hardware"),)

    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    # NULL while pairing is pending: the device belongs to nobody until approved.
    provider_id: Optional[uuid.UUID] = Field(default=None, foreign_key="provider.id", index=True,
                                             ondelete="CASCADE")
    name: str = Field(max_length=200)
    hardware_id: str = Field(max_length=200, index=True)
    platform: str = Field(default="macos", max_length=50)
    os_version: Optional[str] = Field(default=None, max_length=50)
    verified: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    active: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})
    pairing_code_hash: Optional[str] = Field(default=None, max_length=128, index=True)
    pairing_expires_at: Optional[datetime] = Field(default=None, sa_type=_tz())
    pairing_attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    approved_at: Optional[datetime] = Field(default=None, sa_type=_tz())
    last_sync_at: Optional[datetime] = Field(default=None, sa_type=_tz())
    created_at: datetime = Field(default_factory=utcnow, sa_type=_tz())


class Contact(SQLModel, table=True):
    """An address-book entry synced from a device."""

    __table_args__ = (
        sa.UniqueConstraint("provider_id", "phone_number", name="uq_contact_provider_phone"),
        sa.UniqueConstraint("provider_id", "email", name="uq_contact_provider_email"),
    )

    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    provider_id: uuid.UUID = _owner()
    apple_id: Optional[str] = Field(default=None, max_length=320)
    phone_number: Optional[str] = Field(default=None, max_length=50)
    email: Optional[str] = Field(default=None, max_length=320)
    display_name: str = Field(max_length=300)
    avatar_hash: Optional[str] = Field(default=None, max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_type=_tz())
    updated_at: datetime = Field(default_factory=utcnow, sa_type=_tz())


class Conversation(SQLModel, table=True):
    """An iMessage chat (one-to-one or group)."""

    __table_args__ = (
        sa.UniqueConstraint("provider_id", "imessage_chat_id", name="uq_conversation_provider_chat"),
        # hot read: the conversation list, newest first
        sa.Index("ix_conversation_provider_last_message", "provider_id", "last_message_at"),
    )

    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    provider_id: uuid.UUID = _owner()
    device_id: Optional[uuid.UUID] = Field(default=None, foreign_key="device.id", ondelete="SET NULL")
    imessage_chat_id: str = Field(max_length=300)
    display_name: Optional[str] = Field(default=None, max_length=300)
    is_group: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    participants: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    last_message_at: Optional[datetime] = Field(default=None, sa_type=_tz())
    message_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # the provider marked it handled up to this message time: no reply owed until a newer message
    handled_through: Optional[datetime] = Field(default=None, sa_type=_tz())
    created_at: datetime = Field(default_factory=utcnow, sa_type=_tz())
    updated_at: datetime = Field(default_factory=utcnow, sa_type=_tz())


class Message(SQLModel, table=True):
    """One iMessage. Tapbacks are kept as reactions pointing at their target, not as messages."""

    __table_args__ = (
        sa.UniqueConstraint("provider_id", "imessage_guid", name="uq_message_provider_guid"),
        # hot read: a conversation's messages by time
        sa.Index("ix_message_conversation_sent", "conversation_id", "sent_at"),
    )

    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    provider_id: uuid.UUID = _owner()
    conversation_id: uuid.UUID = Field(foreign_key="conversation.id", ondelete="CASCADE")
    imessage_guid: str = Field(max_length=200)
    sender_id: Optional[str] = Field(default=None, max_length=320)
    direction: str = Field(max_length=10)  # incoming | outgoing
    message_type: str = Field(default="text", max_length=30)
    text: Optional[str] = Field(default=None, sa_type=sa.Text)
    sent_at: datetime = Field(sa_type=_tz())
    edited_at: Optional[datetime] = Field(default=None, sa_type=_tz())
    retracted: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    associated_message_guid: Optional[str] = Field(default=None, max_length=200)
    associated_message_type: Optional[int] = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=_tz())
    updated_at: datetime = Field(default_factory=utcnow, sa_type=_tz())


class Reaction(SQLModel, table=True):
    """A tapback (love, like, ...) on a message, or its removal; never shown as a message itself."""

    __table_args__ = (
        sa.UniqueConstraint("provider_id", "imessage_guid", name="uq_reaction_provider_guid"),
        sa.Index("ix_reaction_provider_target", "provider_id", "target_guid"),
    )

    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    provider_id: uuid.UUID = _owner()
    conversation_id: uuid.UUID = Field(foreign_key="conversation.id", ondelete="CASCADE")
    imessage_guid: str = Field(max_length=200)
    target_guid: str = Field(max_length=200)  # the reacted-to message's GUID (p:N/ and bp: prefixes cut)
    sender_id: Optional[str] = Field(default=None, max_length=320)
    reaction_type: int  # Apple's associated_message_type: 2000-2007 added, 3000-3007 removed
    sent_at: datetime = Field(sa_type=_tz())
    created_at: datetime = Field(default_factory=utcnow, sa_type=_tz())


class GeneratedResponse(SQLModel, table=True):
    """A reply suggestion for a message, and what the provider did with it."""

    __table_args__ = (sa.Index("ix_generated_response_provider_created", "provider_id", "created_at"),)

    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    provider_id: uuid.UUID = _owner()
    message_id: Optional[uuid.UUID] = Field(default=None, foreign_key="message.id", index=True,
                                            ondelete="CASCADE")
    prompt: Optional[str] = Field(default=None, sa_type=sa.Text)
    response: Optional[str] = Field(default=None, sa_type=sa.Text)
    suggestions: list[dict] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    confidence: Optional[float] = None
    model_version: Optional[str] = Field(default=None, max_length=200)
    cached: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    status: str = Field(default="generating", max_length=20)  # generating|completed|failed|accepted|edited|rejected
    error: Optional[str] = Field(default=None, sa_type=sa.Text)
    edited_response: Optional[str] = Field(default=None, sa_type=sa.Text)
    chosen_suggestion: Optional[int] = None  # which suggestion was used or edited (0: the response itself)
    reject_reason: Optional[str] = Field(default=None, sa_type=sa.Text)
    generation_ms: Optional[int] = None
    params: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))  # temperature, count, ...
    job_id: Optional[str] = Field(default=None, max_length=100)
    cache_key: Optional[str] = Field(default=None, max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=_tz())
    completed_at: Optional[datetime] = Field(default=None, sa_type=_tz())
    actioned_at: Optional[datetime] = Field(default=None, sa_type=_tz())


class TrainingSample(SQLModel, table=True):
    """An (input context, expected reply) pair that teaches the model the provider's voice."""

    __table_args__ = (sa.Index("ix_training_sample_provider_created", "provider_id", "created_at"),)

    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    provider_id: uuid.UUID = _owner()
    response_id: Optional[uuid.UUID] = Field(default=None, foreign_key="generatedresponse.id",
                                             ondelete="SET NULL")
    input_context: str = Field(sa_type=sa.Text)
    expected_output: str = Field(sa_type=sa.Text)
    source: str = Field(max_length=20)  # accepted | edited | manual
    quality: float = Field(default=1.0)
    created_at: datetime = Field(default_factory=utcnow, sa_type=_tz())


class TrainingJob(SQLModel, table=True):
    """A LoRA fine-tuning run and the adapter it produced."""

    __table_args__ = (
        sa.Index("ix_training_job_provider_created", "provider_id", "created_at"),
        # one queued or running job per provider, however many requests race (services.training.create_job)
        sa.Index("ux_training_job_unfinished", "provider_id", unique=True,
                 postgresql_where=sa.text("status IN ('queued', 'training')"),
                 sqlite_where=sa.text("status IN ('queued', 'training')")),
    )

    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    provider_id: uuid.UUID = _owner()
    base_model: str = Field(max_length=200)
    status: str = Field(default="queued", max_length=20)  # queued|training|completed|failed
    progress: float = Field(default=0.0)
    epochs: int = Field(default=3)
    learning_rate: float = Field(default=1e-3)
    lora_rank: int = Field(default=8)
    eval_fraction: float = Field(default=0.1)
    sample_count: int = Field(default=0)
    output_path: Optional[str] = Field(default=None, max_length=1000)
    adapter_version: Optional[int] = None
    is_active: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    error: Optional[str] = Field(default=None, sa_type=sa.Text)
    metrics: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    started_at: Optional[datetime] = Field(default=None, sa_type=_tz())
    completed_at: Optional[datetime] = Field(default=None, sa_type=_tz())
    created_at: datetime = Field(default_factory=utcnow, sa_type=_tz())


# Schema that lives in PostgreSQL only and so stays out of the tables above (SQLite has no tsvector):
# message.search_vector, a stored to_tsvector('english', text), and its GIN index — the full-text search
# behind services/examples.py (migration d4f9b2c6e8a1). Comparisons of models and database skip them.
DATABASE_ONLY = {("column", "search_vector"), ("index", "ix_message_search")}


def in_models(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """alembic's include_object: everything but DATABASE_ONLY."""
    return (type_, name) not in DATABASE_ONLY
