"""What the Mac agent sends: message batches and contacts (device token)."""

from fastapi import APIRouter

from typing import Annotated

from fastapi import Depends

from convassist.api.deps import DbSession, bearer_token
from convassist.db import run_in_transaction
from convassist.schemas import CamelModel
from convassist.services import contacts, devices, sync

DeviceToken = Annotated[str, Depends(bearer_token)]

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
def sync_messages(batch: sync.MessageBatch, token: DeviceToken) -> MessageCounts:
    """Store a batch of one conversation's messages; all-or-nothing, idempotent."""
    # the device is checked inside the batch's own transaction: one connection, one round of checks
    result = run_in_transaction(
        lambda session: sync.ingest_messages(session, devices.device_from_token(session, token), batch))
    return MessageCounts(**result.__dict__)


@router.post("/contacts", response_model=ContactCounts)
def sync_contacts(batch: contacts.ContactBatch, session: DbSession, token: DeviceToken) -> ContactCounts:
    """Upsert address-book contacts."""
    device = devices.device_from_token(session, token)
    return ContactCounts(**contacts.ingest_contacts(session, device.provider_id, batch).__dict__)


@router.post("/ping", status_code=204)
def checked_in(token: DeviceToken) -> None:
    """The Mac synced and had nothing new: it is up to date as of now (its last sync time)."""
    run_in_transaction(lambda session: sync.checked_in(session, devices.device_from_token(session, token)))
