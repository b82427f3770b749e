"""The domain rules at the service level, without HTTP (the API tests cover the routes): what a
verdict on a suggestion stores, when it is refused, and the typed views the API and the UI share."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from convassist.db import run_in_transaction, session_scope
from convassist.models import Device, GeneratedResponse, Message, TrainingSample
from convassist.services import accounts, devices, responses, sync
from convassist.services.errors import Conflict, DomainError, NotFound


def second_waits_for_first(first, second) -> None:
    """A race: `first` (a session that wrote and has not committed) holds what `second` (run in a thread)
    needs; second must still be waiting a second later, then finish once first commits."""
    import threading

    racer = threading.Thread(target=second)
    racer.start()
    racer.join(timeout=1)
    assert racer.is_alive()
    first.commit()
    first.close()
    racer.join(timeout=10)


def make_provider(session, name: str):
    """A provider with one paired Mac that synced one incoming message; returns (provider id, message id)."""
    provider = accounts.create_account(session, accounts.SignupInput(
        email=f"{name}-{uuid.uuid4().hex[:6]}@example.com", password="correct horse battery", name=name))
    reg = devices.register(session, devices.RegisterInput(name="Mac", hardware_id=f"HW-{uuid.uuid4()}"),
                           client="127.0.0.1")
    devices.approve(session, provider_id=provider.id, data=devices.ApproveInput(code=reg.code), client="127.0.0.1")
    devices.verify(session, devices.VerifyInput(device_id=reg.device_id, code=reg.code))
    sync.ingest_messages(session, session.get(Device, reg.device_id), sync.MessageBatch(
        conversation_id="iMessage;-;+15550009999", participants=["+15550009999"], messages=[sync.SyncMessage(
            imessage_guid=f"g-{uuid.uuid4().hex}", sender_id="+15550009999", direction="incoming",
            text="Is Friday at 3 free?", sent_at=datetime(2026, 11, 20, 9, tzinfo=timezone.utc))]))
    message = session.execute(sa.select(Message.id).where(Message.provider_id == provider.id)).scalar_one()
    return provider.id, message


def completed_response(session, provider_id, message_id, status="completed") -> uuid.UUID:
    row = GeneratedResponse(provider_id=provider_id, message_id=message_id, prompt="Them: Is Friday at 3 free?\nMe:",
                            params={}, status=status, response="Yes, see you Friday!", confidence=0.42,
                            suggestions=[{"text": "Yes, see you Friday!", "confidence": 0.42}])
    session.add(row)
    session.flush()
    return row.id


@pytest.fixture
def world(db):
    with session_scope() as session:
        ana = make_provider(session, "Ana")
        bo = make_provider(session, "Bo")
    return ana, bo


def verdict(provider_id, response_id, **fields):
    return run_in_transaction(lambda session: responses.act(session, provider_id, response_id,
                                                            responses.Verdict(**fields)))


def samples(provider_id) -> list[TrainingSample]:
    with session_scope() as session:
        return list(session.execute(sa.select(TrainingSample).where(TrainingSample.provider_id == provider_id))
                    .scalars())


def test_accept_and_edit_make_samples_reject_makes_none(world):
    (ana, message), _ = world
    with session_scope() as session:
        accepted, edited, rejected = (completed_response(session, ana, message) for _ in range(3))
    assert verdict(ana, accepted, action="accept").status == "accepted"
    assert verdict(ana, edited, action="edit", edited_response="  Friday at 3 works!  ").status == "edited"
    assert verdict(ana, rejected, action="reject", reason="too short").status == "rejected"
    by_source = {s.source: s for s in samples(ana)}
    assert set(by_source) == {"accepted", "edited"}
    assert by_source["accepted"].quality == pytest.approx(0.42)  # the model's confidence
    assert by_source["edited"].expected_output == "Friday at 3 works!" and by_source["edited"].quality == 1.0


def test_verdicts_that_are_refused_store_nothing(world):
    (ana, message), (bo, _) = world
    with session_scope() as session:
        done = completed_response(session, ana, message)
        generating = completed_response(session, ana, message, status="generating")
    with pytest.raises(DomainError) as blank:
        verdict(ana, done, action="edit", edited_response="   ")
    assert blank.value.code == "missing_edited_response"
    with pytest.raises(Conflict) as early:
        verdict(ana, generating, action="accept")
    assert early.value.code == "not_completed"
    with pytest.raises(NotFound):  # another provider's response does not exist for Bo
        verdict(bo, done, action="accept")
    assert samples(ana) == [] and samples(bo) == []
    verdict(ana, done, action="accept")
    with pytest.raises(Conflict) as twice:
        verdict(ana, done, action="reject")
    assert twice.value.code == "already_actioned" and len(samples(ana)) == 1


def test_the_views_are_typed_and_per_provider(world):
    (ana, message), (bo, _) = world
    with session_scope() as session:
        response_id = completed_response(session, ana, message)
        view = responses.response_view(session.get(GeneratedResponse, response_id))
        ana_devices, bo_devices = devices.list_devices(session, ana), devices.list_devices(session, bo)
    assert isinstance(view, responses.ResponsePublic) and view.suggestions[0].text == "Yes, see you Friday!"
    assert view.model_dump(by_alias=True)["responseId"] == response_id  # camelCase on the wire
    assert [(d.conversation_count, d.message_count) for d in ana_devices] == [(1, 1)]
    assert len(bo_devices) == 1 and bo_devices[0].id != ana_devices[0].id


def test_a_conversation_marked_handled_needs_no_reply_until_a_newer_message(world):
    from convassist.services import conversations

    (ana, message), (bo, _) = world
    with session_scope() as session:
        [conv], _ = conversations.list_conversations(session, ana)
        assert conv.needs_reply
        with pytest.raises(NotFound):  # not Bo's to mark
            conversations.mark_handled(session, bo, conv.id)
    with session_scope() as session:
        conversations.mark_handled(session, ana, conv.id)
    with session_scope() as session:
        [handled], _ = conversations.list_conversations(session, ana)
        owed, total = conversations.list_conversations(session, ana, needs_reply=True)
        device = session.execute(sa.select(Device).where(Device.provider_id == ana)).scalar_one()
        assert not handled.needs_reply and owed == [] and total == 0
        sync.ingest_messages(session, device, sync.MessageBatch(
            conversation_id="iMessage;-;+15550009999", participants=["+15550009999"], messages=[sync.SyncMessage(
                imessage_guid=f"g-{uuid.uuid4().hex}", sender_id="+15550009999", direction="incoming",
                text="One more question", sent_at=datetime(2026, 11, 21, 9, tzinfo=timezone.utc))]))
    with session_scope() as session:
        owed, _ = conversations.list_conversations(session, ana, needs_reply=True)
        assert [c.id for c in owed] == [conv.id] and owed[0].needs_reply


def test_people_are_shown_by_name_else_by_a_readable_number():
    from convassist.services import contacts
    from convassist.services.conversations import _display_name

    assert contacts.readable("+15551230003") == "+1 555-123-0003"
    assert contacts.readable("+447700900123") == "+44 7700 900123"
    assert contacts.readable("dee@example.com") == "dee@example.com"
    assert contacts.readable("not a number") == "not a number"
    assert contacts.initials("Jordan Lee") == "JL" and contacts.initials("sam") == "S"
    assert contacts.initials("+1 555-123-0003") == "#"
    names = {"+15551230003": "Jordan Lee"}
    assert _display_name("Jordan", ["+15551230003"], names) == "Jordan Lee"  # the AddressBook wins
    assert _display_name("Book club", ["+15551230003", "+15551230004"], names) == "Book club"
    assert _display_name(None, ["+15551230003", "+15551230004"], names) == "Jordan Lee, +1 555-123-0004"


def test_a_code_an_expired_registration_also_holds_pairs_the_mac_waiting_with_it(db):
    """Codes are unique among live registrations only: a new Mac may be given the code an old, expired
    registration still holds. Entering it pairs the new Mac (it once failed as "expired", now and then)."""
    from datetime import timedelta

    with session_scope() as session:
        ana, _ = make_provider(session, "Ana")
        old = devices.register(session, devices.RegisterInput(name="Old Mac", hardware_id=f"HW-{uuid.uuid4()}"),
                               client="127.0.0.2")
        new = devices.register(session, devices.RegisterInput(name="New Mac", hardware_id=f"HW-{uuid.uuid4()}"),
                               client="127.0.0.2")
        expired = session.get(Device, old.device_id)
        expired.pairing_expires_at = datetime.now(timezone.utc) - timedelta(minutes=1)
        session.get(Device, new.device_id).pairing_code_hash = expired.pairing_code_hash  # the same code
        session.flush()
        claimed = devices.approve(session, provider_id=ana, data=devices.ApproveInput(code=old.code), client="127.0.0.2")
        assert claimed.id == new.device_id and claimed.name == "New Mac"
        assert session.get(Device, old.device_id).provider_id is None
        # alone, the expired registration's code still says it expired
        session.get(Device, new.device_id).pairing_code_hash = None
        session.flush()
        with pytest.raises(DomainError) as refused:
            devices.approve(session, provider_id=ana, data=devices.ApproveInput(code=old.code), client="127.0.0.2")
        assert refused.value.code == "expired_code"


def test_two_requests_at_once_queue_one_training_job(db):
    """Both requests pass create_job's check before either commits (what two app processes clicking at once
    do): the database's unique partial index lets one job through; the other answers training_in_progress."""
    from convassist.models import TrainingJob
    from convassist.services import training
    from tests.fixtures.voice_samples import samples

    with session_scope() as session:
        provider_id, _ = make_provider(session, "Racer")
        for prompt, reply in samples()[:training.MIN_SAMPLES]:
            training.add_sample(session, provider_id, training.SampleInput(input_context=prompt,
                                                                          expected_output=reply))
    params = training.TrainingParams(base_model="smollm2-135m-instruct")
    from sqlmodel import Session

    from convassist.db import get_engine

    first = Session(get_engine())
    training.create_job(first, provider_id, params)  # flushed, not committed: the second cannot see it
    outcome = []

    def second() -> None:
        try:
            with session_scope() as session:
                training.create_job(session, provider_id, params)
            outcome.append("queued")
        except Conflict as exc:
            outcome.append(exc.code)

    second_waits_for_first(first, second)  # the second waits on the first one's row in the unique index
    assert outcome == ["training_in_progress"]
    with session_scope() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(TrainingJob)
                               .where(TrainingJob.provider_id == provider_id)).scalar_one() == 1


def test_two_macs_sending_the_same_new_contact_at_once_store_it_once(db):
    """Two Macs of one provider sharing iCloud contacts upload the same new card in overlapping transactions:
    the second waits for the first (a per-provider lock), then finds the card and updates it (it failed on
    the unique handle: a 500, until the agent's retry)."""
    from sqlmodel import Session

    from convassist.db import get_engine
    from convassist.models import Contact
    from convassist.services import contacts

    with session_scope() as session:
        provider_id, _ = make_provider(session, "Twin")
    card = contacts.ContactBatch(contacts=[contacts.SyncContact(phone_number="(555) 123-0042",
                                                                display_name="New Client")])
    first = Session(get_engine())
    assert contacts.ingest_contacts(first, provider_id, card).inserted == 1  # flushed, not committed
    outcome = []

    def second() -> None:
        try:
            with session_scope() as session:
                outcome.append(contacts.ingest_contacts(session, provider_id, card))
        except Exception as exc:  # what the route would have turned into a 500
            outcome.append(type(exc).__name__)

    second_waits_for_first(first, second)  # the second waits for the first batch
    assert [(r.inserted, r.unchanged) for r in outcome] == [(0, 1)]
    with session_scope() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(Contact)
                               .where(Contact.provider_id == provider_id)).scalar_one() == 1


def test_a_dropped_redis_connection_while_waiting_for_a_reply_is_read_again(services_env):
    """Redis drops the waiting app's connection while the worker writes: the wait used to end at once
    (queue_unavailable, the suggestion stored as failed though the worker then finished it). Now it reads
    again on a new connection; Redis down (the read again fails too) still says so at once."""
    import asyncio
    import json

    from redis.exceptions import ConnectionError as RedisConnectionError

    from convassist.keys import stream_key
    from convassist.services import queue
    from convassist.worker.contracts import GenerateFailure

    key = stream_key(f"gen:{uuid.uuid4().hex}")
    outcome = GenerateFailure(error="empty_reply", message="nothing to say")

    class Blipping:
        """The app's pool, whose connection drops `drops` times before each read answers."""

        def __init__(self, pool, drops: int):
            self.pool, self.drops = pool, drops

        async def xread(self, *args, **kwargs):
            if self.drops:
                self.drops -= 1
                raise RedisConnectionError("Connection closed by server.")
            return await self.pool.xread(*args, **kwargs)

    async def wait(drops: int):
        pool = await queue.get_pool()
        await pool.xadd(key, {"worker": "w-1", "result": json.dumps(outcome.model_dump(by_alias=True))})
        await pool.expire(key, 60)
        return await responses._until_done(Blipping(pool, drops), key)

    assert asyncio.run(wait(1)) == outcome
    started = time.monotonic()
    with pytest.raises(RedisConnectionError):
        asyncio.run(wait(2))  # down: no answer on a new connection either
    assert time.monotonic() - started < 1


def test_registrations_nobody_approved_are_forgotten_a_day_after_their_code_expired(db):
    """Anyone may register a Mac (a per-address limit only): registrations nobody approved were kept for good.
    The workers' sweep deletes them a day after their code expired; a live one and a paired Mac stay."""
    from datetime import timedelta

    with session_scope() as session:
        owner, _ = make_provider(session, "Keeper")
        now = datetime.now(timezone.utc)
        stale = Device(name="Stale", hardware_id=f"HW-{uuid.uuid4()}", pairing_expires_at=now - timedelta(days=2))
        live = Device(name="Live", hardware_id=f"HW-{uuid.uuid4()}", pairing_expires_at=now + timedelta(minutes=5))
        session.add_all([stale, live])
        session.flush()
        stale_id, live_id = stale.id, live.id
        paired = session.execute(sa.select(Device.id).where(Device.provider_id == owner)).scalar_one()
        session.execute(sa.update(Device).where(Device.id == paired)
                        .values(pairing_expires_at=now - timedelta(days=30)))
    with session_scope() as session:
        assert devices.forget_stale_registrations(session) >= 1
    with session_scope() as session:
        assert session.get(Device, stale_id) is None
        assert session.get(Device, live_id) is not None and session.get(Device, paired) is not None
