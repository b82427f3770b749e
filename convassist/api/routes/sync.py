"""What the Mac agent sends: message batches and contacts (device token)."""

from fastapi import APIRouter

from convassist.api.deps import CurrentDevice, DbSession
from convassist.db import run_in_transaction
from convassist.schemas import CamelModel
from convassist.services import contacts, sync

router = APIRouter(prefix="/sync", tags=["sync"])


class MessageCounts(CamelModel):
    received: int
    inserted: int
    updated: int
    duplicates: int


class ContactCounts(CamelModel):
    received: int
    inserted: int
    updated: int
    unchanged: int


@router.post("/messages", response_model=MessageCounts)
def sync_messages(batch: sync.MessageBatch, device: CurrentDevice) -> MessageCounts:
    """Store a batch of one conversation's messages; all-or-nothing, idempotent."""
    result = run_in_transaction(lambda session: sync.ingest_messages(session, device, batch))
    return MessageCounts(**result.__dict__)


@router.post("/contacts", response_model=ContactCounts)
def sync_contacts(batch: contacts.ContactBatch, session: DbSession, device: CurrentDevice) -> ContactCounts:
    """Upsert address-book contacts."""
    return ContactCounts(**contacts.ingest_contacts(session, device.provider_id, batch).__dict__)
