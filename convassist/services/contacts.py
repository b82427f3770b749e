"""Contacts from a device's address book: upsert by normalised phone number or email."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Optional

import phonenumbers
import sqlalchemy as sa
from pydantic import Field
from sqlmodel import Session

from convassist.db import one_at_a_time
from convassist.models import Contact, utcnow
from convassist.schemas import CamelModel, CleanStr
from convassist.services.errors import DomainError

MAX_CONTACTS = 5000
DEFAULT_REGION = "US"  # numbers without a country code are read as this region's


class SyncContact(CamelModel):
    apple_id: Optional[CleanStr] = Field(default=None, max_length=320)
    phone_number: Optional[CleanStr] = Field(default=None, max_length=50)
    email: Optional[CleanStr] = Field(default=None, max_length=320)
    display_name: CleanStr = Field(min_length=1, max_length=300)
    avatar_hash: Optional[CleanStr] = Field(default=None, max_length=128)


class ContactBatch(CamelModel):
    contacts: list[SyncContact]


@dataclass(frozen=True)
class ContactResult:
    received: int
    inserted: int
    updated: int
    unchanged: int


def normalise_phone(raw: str | None) -> str | None:
    """E.164 where the number parses, else its digits (with a leading + if it had one)."""
    if not raw or not raw.strip():
        return None
    try:
        parsed = phonenumbers.parse(raw, DEFAULT_REGION)
        if phonenumbers.is_possible_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    digits = "".join(ch for ch in raw if ch.isdigit())
    return ("+" + digits if raw.strip().startswith("+") else digits) or None


def normalise_handle(handle: str | None) -> str | None:
    """An iMessage handle (phone or email) in the form contacts are stored under."""
    if not handle:
        return None
    return handle.strip().lower() if "@" in handle else normalise_phone(handle)


def readable(handle: str) -> str:
    """A handle nobody named, as a person reads it: a phone number formatted the international way
    (+1 555-123-0003), an email as it is."""
    if not handle or "@" in handle:
        return handle
    try:
        number = phonenumbers.parse(handle, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return handle
    if not phonenumbers.is_possible_number(number):
        return handle
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def shown_name(handle: str, names: dict[str, str]) -> str:
    """The contact's name for a handle (names_for), else the handle made readable."""
    return names.get(handle) or readable(handle)


def initials(name: str) -> str:
    """An avatar's letters: the first letters of the first two words ("Jordan Lee" → "JL"); "#" for a
    name without letters (a phone number)."""
    words = [word for word in name.split() if word[:1].isalpha()]
    return "".join(word[0] for word in words[:2]).upper() or "#"


def ingest_contacts(session: Session, provider_id: uuid.UUID, batch: ContactBatch) -> ContactResult:
    """Upsert the batch into the provider's contacts."""
    if len(batch.contacts) > MAX_CONTACTS:
        raise DomainError(f"At most {MAX_CONTACTS} contacts per call.", code="too_many_contacts", status=413)
    # one batch of a provider's at a time: two Macs sharing iCloud contacts upload the same new card at once,
    # and both would insert it (the second failing on the unique handle: a 500)
    one_at_a_time(session, f"contacts:{provider_id}")
    existing = session.execute(sa.select(Contact).where(Contact.provider_id == provider_id)).scalars().all()
    by_phone = {c.phone_number: c for c in existing if c.phone_number}
    by_email = {c.email: c for c in existing if c.email}
    inserted = updated = 0
    for item in batch.contacts:
        phone = normalise_phone(item.phone_number)
        email = item.email.strip().lower() if item.email and item.email.strip() else None
        if phone is None and email is None:
            # the contact's name stays out of the message: it ends up in the agent's log
            raise DomainError("Every contact needs a phone number or an email.", code="contact_without_handle",
                              status=422)
        contact = (by_phone.get(phone) if phone else None) or (by_email.get(email) if email else None)
        values = {"display_name": item.display_name, "apple_id": item.apple_id, "avatar_hash": item.avatar_hash}
        if contact is None:
            contact = Contact(provider_id=provider_id, phone_number=phone, email=email, **values)
            session.add(contact)
            inserted += 1
        else:
            # a handle another contact already has stays with it (the card for both is merged into the one found
            # first; taking it would break the other's uniqueness, and the whole batch with it, on every retry)
            values.update({key: handle for key, handle, holder in (("phone_number", phone, by_phone.get(phone)),
                                                                    ("email", email, by_email.get(email)))
                           if handle and holder in (None, contact)})
            changed = {k: v for k, v in values.items() if getattr(contact, k) != v}
            if changed:
                for key, value in changed.items():
                    setattr(contact, key, value)
                contact.updated_at = utcnow()
                updated += 1
        if phone and contact.phone_number == phone:
            by_phone[phone] = contact
        if email and contact.email == email:
            by_email[email] = contact
    session.flush()
    return ContactResult(len(batch.contacts), inserted, updated, len(batch.contacts) - inserted - updated)


def names_for(session: Session, provider_id: uuid.UUID, handles: set[str]) -> dict[str, str]:
    """Contact display names for iMessage handles (phone numbers or emails), where known."""
    wanted = {h: normalise_handle(h) for h in handles if h}
    phones = {v for v in wanted.values() if v and "@" not in v}
    emails = {v for v in wanted.values() if v and "@" in v}
    if not phones and not emails:
        return {}
    rows = session.execute(sa.select(Contact.phone_number, Contact.email, Contact.display_name).where(
        Contact.provider_id == provider_id,
        sa.or_(Contact.phone_number.in_(phones), Contact.email.in_(emails)))).all()
    known = {}
    for phone, email, name in rows:
        if phone:
            known[phone] = name
        if email:
            known[email] = name
    return {handle: known[norm] for handle, norm in wanted.items() if norm in known}
