"""Past exchanges as training samples: the client's message and the provider's reply that followed,
without group chatter, acknowledgements, attachments or late replies; opt-in, strictly per provider,
and importing twice adds nothing twice."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from convassist.db import session_scope
from convassist.models import Device, TrainingSample
from convassist.services import history, sync
from tests.services.test_domain_rules import make_provider, second_waits_for_first

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


def test_imported_samples_hold_examples_the_way_suggestions_do_in_half_and_import_once(db):
    """Imported samples carry the provider's examples (from their other conversations) like a
    suggestion's prompt, in every other sample (a voice trained with examples everywhere drops the
    sign-off where none are found; without any it ignores them); importing again adds nothing."""
    asks = ["Is there parking near the salon?", "Where can I park for the salon?", "Any parking by the salon?",
            "Do you have parking at the salon?", "Parking near your salon?", "Can I park at the salon?"]
    with session_scope() as session:
        ana, _ = make_provider(session, "Ana")
        mac = session.execute(sa.select(Device).where(Device.provider_id == ana)).scalar_one()
        for i, ask in enumerate(asks):
            chat(session, mac, f"c-{i}", [("incoming", ask, 60 * i, "text"),
                                          ("outgoing", f"Free parking behind the building, spot {i}. Cheers, Ana",
                                           60 * i + 2, "text")])
        assert history.import_history(session, ana) == len(asks)
    with session_scope() as session:
        prompts = session.execute(sa.select(TrainingSample.input_context)
                                  .where(TrainingSample.provider_id == ana)).scalars().all()
        assert history.history_offer(session, ana)[0] == []  # nothing left to offer
        assert history.import_history(session, ana) == 0  # the examples differ; the exchange is the same
    plain = [p for p in prompts if p.count("\n") == 1]  # "Them: …\nMe:"
    shown = [p for p in prompts if p.count("\n") > 1]
    assert plain and shown and len(plain) + len(shown) == len(asks), prompts
    for prompt in shown:  # other conversations' exchanges, before the client's message, never its own
        lines = prompt.splitlines()
        asked = lines[-2].removeprefix("Them: ")
        assert asked in asks and lines[-1] == "Me:" and len(lines) in (4, 6, 8)
        assert all(line.startswith(("Them: ", "Me: Free parking")) for line in lines[:-1])
        assert f"Them: {asked}\n" not in "\n".join(lines[:-2]) + "\n"


def test_two_imports_at_once_add_each_exchange_once(db):
    """The page and the API (or two app processes) importing at the same moment: the second waits for the
    first (a per-provider lock) and then finds everything imported; no sample is added twice."""
    from sqlmodel import Session

    from convassist.db import get_engine

    with session_scope() as session:
        ana, _ = make_provider(session, "Ana")
        mac = session.execute(sa.select(Device).where(Device.provider_id == ana)).scalar_one()
        chat(session, mac, "c-1", [("incoming", "Do you have parking near the salon?", 0, "text"),
                                   ("outgoing", "Yes, free parking behind the building. Cheers, Ana", 20, "text")])
        chat(session, mac, "c-2", [("incoming", "How much is a colour?", 0, "text"),
                                   ("outgoing", "A colour is $80, see you soon. Cheers, Ana", 5, "text")])
    first = Session(get_engine())
    assert history.import_history(first, ana) == 2  # not committed yet
    added = []

    def second() -> None:
        with session_scope() as session:
            added.append(history.import_history(session, ana))

    second_waits_for_first(first, second)  # the second waits for the first import
    assert added == [0]
    with session_scope() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(TrainingSample)
                               .where(TrainingSample.provider_id == ana)).scalar_one() == 2
