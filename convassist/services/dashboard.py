"""The numbers on a provider's dashboard."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session

from convassist.models import Conversation, Device, Message, TrainingSample


class Counts(BaseModel):
    devices: int
    conversations: int
    messages: int
    samples: int


def overview(session: Session, provider_id: uuid.UUID) -> Counts:
    """Counts of the provider's devices, conversations, messages and training samples."""

    def count(model) -> int:
        return session.execute(sa.select(sa.func.count()).select_from(model)
                               .where(model.provider_id == provider_id)).scalar_one()

    return Counts(devices=count(Device), conversations=count(Conversation), messages=count(Message),
                  samples=count(TrainingSample))
