"""The provider's home page: who is owed a reply, whether the Macs sync, what writes the suggestions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Optional

import sqlalchemy as sa
from sqlmodel import Session

from convassist.schemas import CamelModel
from convassist.models import Conversation, Device, Message, TrainingJob, TrainingSample
from convassist.services import conversations, devices
from convassist.settings import get_settings
from ml.registry import REGISTRY

INBOX_SIZE = 20


class Counts(CamelModel):
    devices: int
    conversations: int
    messages: int
    samples: int


class Waiting(CamelModel):
    """A conversation that needs a reply."""

    conversation_id: uuid.UUID
    name: str
    is_group: bool
    preview: Optional[str]
    since: Optional[datetime]  # the newest message, which is theirs


class Inbox(CamelModel):
    waiting: list[Waiting]  # longest waiting first
    waiting_total: int
    devices: list[devices.DevicePublic]
    model: str  # in plain words
    voice: str  # the active adapter in plain words
    counts: Counts


def overview(session: Session, provider_id: uuid.UUID) -> Counts:
    """Counts of the provider's devices, conversations, messages and training samples."""

    def count(model) -> int:
        return session.execute(sa.select(sa.func.count()).select_from(model)
                               .where(model.provider_id == provider_id)).scalar_one()

    return Counts(devices=count(Device), conversations=count(Conversation), messages=count(Message),
                  samples=count(TrainingSample))


def inbox(session: Session, provider_id: uuid.UUID) -> Inbox:
    """Who is owed a reply (longest waiting first), each Mac's sync health, and what writes the
    suggestions — everything the home page shows, in one read."""
    page, total = conversations.list_conversations(session, provider_id, needs_reply=True, limit=INBOX_SIZE,
                                                   oldest_first=True)
    waiting = [Waiting(conversation_id=c.id, name=c.display_name, is_group=c.is_group, preview=c.last_message_preview,
                       since=c.last_message_at) for c in page]
    return Inbox(waiting=waiting, waiting_total=total, devices=devices.list_devices(session, provider_id),
                 model=_model_words(), voice=_voice_words(session, provider_id),
                 counts=overview(session, provider_id))


def _model_words() -> str:
    model_id = get_settings().ml_service_model_id
    spec = REGISTRY.get(model_id)
    return f"Suggestions are written by {spec.plain_name if spec else model_id}."


def _voice_words(session: Session, provider_id: uuid.UUID) -> str:
    active = session.execute(sa.select(TrainingJob).where(TrainingJob.provider_id == provider_id,
                                                          TrainingJob.is_active.is_(True))).scalar_one_or_none()
    if active is None:
        return "Not tuned to your voice yet: use or edit suggestions, then teach it on the Training page."
    when = active.completed_at.strftime("%b %-d") if active.completed_at else "earlier"
    return (f"Tuned to your voice: version {active.adapter_version}, learned on {when} from "
            f"{active.sample_count} of your replies.")
