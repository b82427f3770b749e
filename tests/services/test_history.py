"""Past exchanges as training samples: the client's message and the provider's reply that followed,
without group chatter, acknowledgements, attachments or late replies; opt-in, strictly per provider,
and importing twice adds nothing twice."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from convassist.db import session_scope
from convassist.models import Device, TrainingSample
from convassist.services import history, sync
from tests.services.test_domain_rules import make_provider

T0 = datetime(2026, 6, 1, 9, tzinfo=timezone.utc)


def chat(session, device, chat_id, messages, *, group=False):
    sync.ingest_messages(session, device, sync.MessageBatch(
        conversation_id=chat_id, is_group=group, participants=["+15550001111", "+15550002222"] if group else
        ["+15550001111"], messages=[sync.SyncMessage(
            imessage_guid=f"{chat_id}-{i}", sender_id="+15550001111" if direction == "incoming" else None,
            direction=direction, text=text, message_type=kind, sent_at=T0 + timedelta(minutes=minutes))
            for i, (direction, text, minutes, kind) in enumerate(messages)]))


def test_only_exchanges_that_teach_the_voice_are_offered_and_imported_once(db):
    with session_scope() as session:
        ana, _ = make_provider(session, "Ana")
        bo, _ = make_provider(session, "Bo")
        mac = session.execute(sa.select(Device).where(Device.provider_id == ana)).scalar_one()
        bos_mac = session.execute(sa.select(Device).where(Device.provider_id == bo)).scalar_one()
        chat(session, mac, "c-good", [
            ("incoming", "Do you have parking near the salon?", 0, "text"),
            ("outgoing", "Yes, free parking behind the building. Cheers, Ana", 20, "text"),
            ("incoming", "Thanks!", 25, "text"),
            ("outgoing", "ok", 26, "text"),  # an acknowledgement
            ("incoming", "How much is a colour?", 30, "text"),
            ("outgoing", "A colour is $80, see you soon. Cheers, Ana", 30 + 5 * 60, "text"),  # five hours later
            ("incoming", "Can I see the style?", 400, "text"),
            ("outgoing", "Here is the style I meant", 401, "attachment"),  # an attachment
            ("incoming", "[Attachment]", 500, "attachment"),  # the client's photo: nothing to answer in words
            ("outgoing", "Love that colour, we can do it next week", 502, "text"),
        ])
        chat(session, mac, "c-group", [("incoming", "Who brings snacks to the party?", 0, "text"),
                                       ("outgoing", "I will bring the chips and dip!", 2, "text")], group=True)
        chat(session, bos_mac, "c-bo", [("incoming", "Is the garden open today?", 0, "text"),
                                        ("outgoing", "Yes, from ten until six today. Bo", 3, "text")])
        pairs, skipped = history.history_pairs(session, ana)
    assert [(p.message, p.reply) for p in pairs] == [
        ("Do you have parking near the salon?", "Yes, free parking behind the building. Cheers, Ana")]
    assert pairs[0].prompt.endswith("Them: Do you have parking near the salon?\nMe:")
    # the acknowledgement, the late reply, the attachment, the reply to a photo (the group is never read)
    assert skipped == 4

    with session_scope() as session:
        assert history.import_history(session, ana) == 1
    with session_scope() as session:
        assert history.import_history(session, ana) == 0  # already there
        samples = session.execute(sa.select(TrainingSample).where(TrainingSample.provider_id == ana)).scalars().all()
        bos = session.execute(sa.select(TrainingSample).where(TrainingSample.provider_id == bo)).scalars().all()
    assert [(s.source, s.quality) for s in samples] == [("history", history.HISTORY_QUALITY)]
    assert bos == []  # opt-in: Bo imported nothing, and Ana's import never reads Bo's messages


def test_imported_samples_hold_examples_the_way_suggestions_do_and_import_once(db):
    """A voice trained on prompts without the provider's examples learns to ignore them; imported
    samples carry them like a suggestion's prompt (from the provider's other conversations)."""
    with session_scope() as session:
        ana, _ = make_provider(session, "Ana")
        mac = session.execute(sa.select(Device).where(Device.provider_id == ana)).scalar_one()
        chat(session, mac, "c-1", [("incoming", "Is there parking near the salon?", 0, "text"),
                                   ("outgoing", "Yes, free parking behind the building. Cheers, Ana", 3, "text")])
        chat(session, mac, "c-2", [("incoming", "Where can I park for the salon?", 60, "text"),
                                   ("outgoing", "Park behind the building, it's free. Cheers, Ana", 62, "text")])
        assert history.import_history(session, ana) == 2
    with session_scope() as session:
        prompts = dict(session.execute(sa.select(TrainingSample.expected_output, TrainingSample.input_context)
                                       .where(TrainingSample.provider_id == ana)).all())
        assert history.history_offer(session, ana)[0] == []  # nothing left to offer
        assert history.import_history(session, ana) == 0  # the examples differ; the exchange is the same
    assert prompts["Park behind the building, it's free. Cheers, Ana"] == (
        "Them: Is there parking near the salon?\nMe: Yes, free parking behind the building. Cheers, Ana\n"
        "Them: Where can I park for the salon?\nMe:")
    assert prompts["Yes, free parking behind the building. Cheers, Ana"].endswith(
        "Me: Park behind the building, it's free. Cheers, Ana\nThem: Is there parking near the salon?\nMe:")
