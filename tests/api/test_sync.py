"""Message and contact sync: idempotency, edits, unsends, tapbacks, limits, concurrency, isolation."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from convassist.models import Conversation, Message, Reaction
from tests.api.conftest import batch, message


def counts(response):
    assert response.status_code == 200, response.text
    return response.json()


def test_first_sync_then_replay_inserts_nothing(provider):
    device = provider.pair_device()
    body = batch(messages=[message(f"g{i}", f"text {i}", sent=f"2026-11-01T10:0{i}:00Z") for i in range(5)])
    assert counts(device.sync(body)) == {"received": 5, "inserted": 5, "updated": 0, "duplicates": 0}
    assert counts(device.sync(body)) == {"received": 5, "inserted": 0, "updated": 0, "duplicates": 5}

    conv = provider.get("/api/conversations").json()["items"][0]
    assert conv["messageCount"] == 5
    assert conv["lastMessageAt"].startswith("2026-11-01T10:04:00")
    devices = provider.get("/api/devices").json()
    assert devices[0]["lastSyncAt"] is not None and devices[0]["messageCount"] == 5


def test_edit_updates_text_and_retraction_marks(provider, db):
    device = provider.pair_device()
    device.sync(batch(messages=[message("g1", "see you at 3"), message("g2", "oops")]))
    edited = message("g1", "see you at 4", editedAt="2026-11-01T10:05:00Z")
    unsent = message("g2", None, retracted=True)
    assert counts(device.sync(batch(messages=[edited, unsent]))) == \
        {"received": 2, "inserted": 0, "updated": 2, "duplicates": 0}
    with db.connect() as conn:
        rows = {r.imessage_guid: r for r in conn.execute(sa.select(Message)).all()}
    assert rows["g1"].text == "see you at 4" and rows["g1"].edited_at is not None
    assert rows["g2"].retracted is True  # marked, not deleted
    conv_id = provider.get("/api/conversations").json()["items"][0]["id"]
    msgs = {m["imessageGuid"]: m for m in provider.get(f"/api/conversations/{conv_id}").json()["messages"]}
    assert msgs["g2"]["retracted"] is True and msgs["g2"]["text"] is None
    assert msgs["g1"]["text"] == "see you at 4"
    # an old copy arriving late does not undo the edit
    assert counts(device.sync(batch(messages=[message("g1", "see you at 4")])))["duplicates"] == 1


def test_tapbacks_are_reactions_not_messages(provider, db):
    device = provider.pair_device()
    device.sync(batch(messages=[message("g1", "Your hair looks great", direction="outgoing")]))
    love = message("t1", "Loved “Your hair looks great”", associatedMessageGuid="p:0/g1",
                   associatedMessageType=2000, sent="2026-11-01T10:01:00Z")
    laugh = message("t2", "Laughed at …", associatedMessageGuid="bp:g1", associatedMessageType=2003,
                    sent="2026-11-01T10:02:00Z")
    unlaugh = message("t3", "Removed a laugh", associatedMessageGuid="bp:g1", associatedMessageType=3003,
                      sent="2026-11-01T10:03:00Z")
    assert counts(device.sync(batch(messages=[love, laugh, unlaugh])))["inserted"] == 3
    with db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Message)).scalar_one() == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(Reaction)).scalar_one() == 3
    conv = provider.get("/api/conversations").json()["items"][0]
    assert conv["messageCount"] == 1
    detail = provider.get(f"/api/conversations/{conv['id']}").json()
    assert len(detail["messages"]) == 1
    assert detail["messages"][0]["reactions"] == [{"type": "love", "senderId": "+15551234567"}]


def test_too_many_messages_is_413(provider):
    device = provider.pair_device()
    response = device.sync(batch(messages=[message(f"g{i}") for i in range(1001)]))
    assert response.status_code == 413 and response.json()["error"] == "too_many_messages"


def test_body_over_5_mb_is_413(provider):
    device = provider.pair_device()
    big = batch(messages=[message(f"g{i}", "x" * 90_000) for i in range(60)])
    response = device.sync(big)
    assert response.status_code == 413 and response.json()["error"] == "payload_too_large"


def test_a_bad_message_rejects_the_whole_batch_and_keeps_what_was_stored(provider, db):
    device = provider.pair_device()
    device.sync(batch(messages=[message("g1", "kept")]))
    bad = batch(messages=[message("g2", "new"), {**message("g3"), "direction": "sideways"}])
    response = device.sync(bad)
    assert response.status_code == 422 and "direction" in response.json()["message"]
    with db.connect() as conn:
        assert conn.execute(sa.select(Message.text)).scalars().all() == ["kept"]


def test_duplicate_guid_within_a_batch(provider):
    device = provider.pair_device()
    result = counts(device.sync(batch(messages=[message("g1", "a"), message("g1", "b")])))
    assert result == {"received": 2, "inserted": 1, "updated": 0, "duplicates": 1}


def test_twenty_parallel_overlapping_syncs_end_with_exact_counts(provider, db):
    device = provider.pair_device()
    # 20 batches of 100, each overlapping its neighbour by 50: 1,050 distinct messages
    batches = [batch(messages=[message(f"g{j:05d}", f"m{j}", sent=f"2026-11-01T10:00:{j % 60:02d}Z")
                               for j in range(i * 50, i * 50 + 100)]) for i in range(20)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda b: counts(device.sync(b)), batches))
    assert sum(r["inserted"] for r in results) == 1050
    assert sum(r["duplicates"] for r in results) == 2000 - 1050
    with db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Message)).scalar_one() == 1050
        assert conn.execute(sa.select(Conversation.message_count)).scalar_one() == 1050


def test_group_chat_and_sender_names_from_contacts(provider):
    device = provider.pair_device()
    assert counts(device.sync_contacts([
        {"phoneNumber": "(555) 123-4567", "displayName": "Carla Client"},
        {"email": "Dee@Example.com", "displayName": "Dee"},
    ])) == {"received": 2, "inserted": 2, "updated": 0, "unchanged": 0}
    group = batch(chat="iMessage;+;chat123", isGroup=True, participants=["+15551234567", "dee@example.com"],
                  messages=[message("g1", "hi all", sender="+1 555 123 4567"),
                            message("g2", "hey", sender="dee@example.com", sent="2026-11-01T10:01:00Z")])
    counts(device.sync(group))
    conv = provider.get("/api/conversations").json()["items"][0]
    assert conv["isGroup"] is True and conv["displayName"] == "Carla Client, Dee"
    msgs = provider.get(f"/api/conversations/{conv['id']}").json()["messages"]
    assert [m["senderName"] for m in msgs] == ["Dee", "Carla Client"]


def test_contacts_upsert_by_normalised_phone_and_email(provider):
    device = provider.pair_device()
    counts(device.sync_contacts([{"phoneNumber": "+1 (555) 123-4567", "displayName": "Carla"}]))
    again = counts(device.sync_contacts([{"phoneNumber": "555-123-4567", "displayName": "Carla B."},
                                         {"phoneNumber": "+15551234567", "displayName": "Carla B."}]))
    assert again == {"received": 2, "inserted": 0, "updated": 1, "unchanged": 1}
    missing = device.sync_contacts([{"displayName": "Nobody"}])
    assert missing.status_code == 422 and missing.json()["error"] == "contact_without_handle"


def test_a_card_whose_phone_and_email_belong_to_two_contacts_never_fails_the_sync(provider):
    """Carla by phone and Carla by email, then one card with both (in the same batch, and in a later one):
    the card updates the contact its phone finds and leaves the email with the contact that has it; before,
    the email moved and broke that contact's uniqueness: a 500 on every retry, the address book stuck."""
    device = provider.pair_device()
    phone_card, email_card = {"phoneNumber": "+1 555 123 4567", "displayName": "Carla"}, {
        "email": "carla@example.com", "displayName": "Carla (work)"}
    both = {"phoneNumber": "555-123-4567", "email": "Carla@Example.com", "displayName": "Carla B."}
    assert counts(device.sync_contacts([phone_card, email_card, both])) == {
        "received": 3, "inserted": 2, "updated": 1, "unchanged": 0}
    assert counts(device.sync_contacts([both]))["received"] == 1  # again, in a batch of its own
    group = batch(chat="iMessage;+;chat9", isGroup=True, participants=["+15551234567", "carla@example.com"],
                  messages=[message("c1", "hi", sender="+15551234567"),
                            message("c2", "hey", sender="carla@example.com", sent="2026-11-01T10:01:00Z")])
    counts(device.sync(group))
    conv = provider.get("/api/conversations").json()["items"][0]
    msgs = provider.get(f"/api/conversations/{conv['id']}").json()["messages"]
    assert [m["senderName"] for m in msgs] == ["Carla (work)", "Carla B."]


def test_devices_write_only_into_their_own_provider(make_provider, db):
    ana, bo = make_provider("Ana"), make_provider("Bo")
    ana_mac, bo_mac = ana.pair_device(), bo.pair_device()
    same = batch(messages=[message("shared-guid", "ana's")])
    counts(ana_mac.sync(same))
    # the same GUID from another provider's Mac is a different message (keys are per provider)
    assert counts(bo_mac.sync(batch(messages=[message("shared-guid", "bo's")])))["inserted"] == 1
    ana_items = ana.get("/api/conversations").json()["items"]
    bo_items = bo.get("/api/conversations").json()["items"]
    assert len(ana_items) == len(bo_items) == 1 and ana_items[0]["id"] != bo_items[0]["id"]
    assert ana.get(f"/api/conversations/{bo_items[0]['id']}").status_code == 404
    assert ana.get(f"/api/conversations/{ana_items[0]['id']}").json()["messages"][0]["text"] == "ana's"


@pytest.mark.parametrize("body", [
    {"conversationId": "c"},
    {"conversationId": "", "messages": []},
    {"conversationId": "c", "messages": [{"imessageGuid": "g", "direction": "incoming"}]},
    {"conversationId": "c", "messages": [], "extra": 1},
])
def test_invalid_batches_get_clear_errors(provider, body):
    device = provider.pair_device()
    response = device.sync(body)
    assert response.status_code == 422 and response.json()["error"] == "validation_error"


def test_sync_needs_a_device_token(api):
    response = api.post("/api/sync/messages", json=batch(messages=[message("g1")]))
    assert response.status_code == 401 and response.json()["error"] == "missing_token"


def test_portable_path_matches_postgres_semantics(tmp_path):
    """The SQLite fallback path gives the same counts for the same sequence."""
    from sqlmodel import Session, SQLModel

    import convassist.models as models
    from convassist.services.sync import MessageBatch, ingest_messages

    engine = sa.create_engine(f"sqlite:///{tmp_path / 's.db'}")
    SQLModel.metadata.create_all(engine)
    with Session(engine) as session:
        owner = models.Provider(email="a@b.co", name="A", password_hash="x")
        device = models.Device(name="m", hardware_id="h")
        session.add(owner)
        session.flush()
        device.provider_id = owner.id
        session.add(device)
        session.commit()

        def run(messages):
            result = ingest_messages(session, device, MessageBatch.model_validate(batch(messages=messages)))
            session.commit()
            return result.__dict__

        assert run([message("g1", "a"), message("g2", "b")]) == \
            {"received": 2, "inserted": 2, "updated": 0, "duplicates": 0}
        assert run([message("g1", "a"), message("g2", "b2"), message("g3", None, retracted=True)]) == \
            {"received": 3, "inserted": 1, "updated": 1, "duplicates": 1}
        assert session.execute(sa.select(Conversation.message_count)).scalar_one() == 3
