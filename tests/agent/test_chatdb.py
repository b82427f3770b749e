"""Reading chat.db of two macOS eras and the AddressBook, built from the JSON data files."""

import sqlite3
from datetime import datetime, timezone

import pytest

from convassist_agent import cli
from convassist_agent.addressbook import read_contacts
from convassist_agent.chatdb import ATTACHMENT_TEXT, ChatDB, UnreadableBody, apple_time, decode_attributed_body
from tests.agent.chatdb_fixture import apple_date, build_addressbook, build_chat_db, insert_message
from tests.agent.typedstream_blob import attributed_body


def utc(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def test_both_date_epochs():
    assert apple_time(0) is None and apple_time(None) is None
    assert apple_time(apple_date("2026-11-01T10:00:00Z", "ventura")) == utc("2026-11-01T10:00:00Z")
    assert apple_time(apple_date("2017-06-03T08:00:00Z", "high_sierra")) == utc("2017-06-03T08:00:00Z")


def test_attributed_body_decoding_keeps_every_character():
    import typedstream

    from convassist_agent.chatdb import _fast_text

    for text in ["Hi", "Café ✂️ at 3? 💇‍♀️", "x" * 5000, "ends with NSString", "a\nb"]:
        blob = attributed_body(text)
        library = typedstream.unarchive_from_data(blob).contents[0].value.value
        assert decode_attributed_body(blob) == library == text
        assert _fast_text(blob) == text  # the fast path agrees with pytypedstream
    with pytest.raises(UnreadableBody):
        decode_attributed_body(b"not a typedstream")


def test_unusual_blobs_go_through_pytypedstream(monkeypatch):
    import convassist_agent.chatdb as chatdb

    monkeypatch.setattr(chatdb, "_fast_text", lambda blob: None)
    assert chatdb.decode_attributed_body(attributed_body("slow path")) == "slow path"


def test_ventura_messages(tmp_path):
    build_chat_db("chatdb_ventura", tmp_path / "chat.db")
    db = ChatDB(tmp_path / "chat.db")
    messages = {m.guid: m for m in db.messages()}
    assert len(messages) == 11  # A1B2-0010 is in two chats but read once
    first = messages["A1B2-0001"]
    assert first.text == "Hi! Do you have time for a trim on Friday?" and first.sender == "+15551230001"
    assert first.sent_at == utc("2026-11-01T10:00:00Z") and not first.is_group
    assert first.chat_guid == "iMessage;-;+15551230001"
    assert messages["A1B2-0002"].is_from_me and messages["A1B2-0002"].to_api()["direction"] == "outgoing"
    love = messages["A1B2-0003"].to_api()
    assert love["associatedMessageType"] == 2000 and love["associatedMessageGuid"] == "p:0/A1B2-0002"
    edited = messages["A1B2-0004"]
    assert edited.edited_at == utc("2026-11-01T10:05:00Z") and edited.text == "See you at 3:30 actually"
    unsent = messages["A1B2-0005"]
    assert unsent.retracted and unsent.text is None
    group = messages["A1B2-0006"]
    assert group.is_group and group.chat_name == "Wedding party"
    assert group.participants == ["dee@example.com", "+15551230003"] and group.text.endswith("💇‍♀️")
    assert messages["A1B2-0007"].text == "Count me in"  # older rows still have `text`
    attachment = messages["A1B2-0009"]
    assert attachment.message_type == "attachment" and attachment.text == ATTACHMENT_TEXT
    assert messages["A1B2-0010"].chat_guid == "iMessage;-;+15551230001"
    assert messages["A1B2-0011"].to_api()["associatedMessageType"] == 3000
    db.close()


def test_high_sierra_schema_without_newer_columns(tmp_path):
    build_chat_db("chatdb_high_sierra", tmp_path / "chat.db")
    db = ChatDB(tmp_path / "chat.db")
    assert "date_edited" not in db.columns and "associated_message_type" not in db.columns
    messages = list(db.messages())
    assert [m.text for m in messages] == ["Are you open Saturdays?", "Yes, 9 to 5!", "Group booking for three?",
                                          "And me"]
    assert messages[0].sent_at == utc("2017-06-03T08:00:00Z")
    assert messages[2].is_group and messages[2].sender == "bo@example.com"
    assert all(m.edited_at is None and not m.retracted for m in messages)
    db.close()


def test_checkpoint_and_look_back(tmp_path):
    path = tmp_path / "chat.db"
    build_chat_db("chatdb_ventura", path)
    db = ChatDB(path)
    last = db.max_rowid()
    changed = max(m.changed_at for m in db.messages())
    assert list(db.messages(after_rowid=last, changed_after=changed)) == []
    # an edit to an old message after the checkpoint is found again; WAL writes are seen
    writer = sqlite3.connect(path)
    writer.execute("UPDATE message SET attributedBody = ?, date_edited = ? WHERE guid = 'A1B2-0001'",
                   (attributed_body("Hi! Do you have time for a trim on Saturday?"),
                    apple_date("2026-11-03T08:00:00Z", "ventura")))
    insert_message(writer, "ventura", {"id": 12, "guid": "A1B2-0012", "chats": [1], "handle": 1,
                                       "body": "New one", "date": "2026-11-03T09:00:00Z"})
    writer.commit()
    again = {m.guid: m for m in db.messages(after_rowid=last, changed_after=changed)}
    assert set(again) == {"A1B2-0001", "A1B2-0012"}
    assert again["A1B2-0001"].text.endswith("Saturday?")
    writer.close()
    db.close()


def test_an_edit_after_a_first_sync_without_edits_is_found(tmp_path):
    """No message had been edited or unsent when the Mac first synced (the look-back time stays 0): an edit
    or an unsend since is still found (it was missed until some other edited message raised that time)."""
    path = tmp_path / "chat.db"
    build_chat_db("chatdb_ventura", path)
    with sqlite3.connect(path) as writer:
        writer.execute("UPDATE message SET date_edited = 0, date_retracted = 0")
    db = ChatDB(path)
    last = db.max_rowid()
    assert max(m.changed_at for m in db.messages()) == 0
    assert list(db.messages(after_rowid=last, changed_after=0)) == []
    with sqlite3.connect(path) as writer:
        writer.execute("UPDATE message SET text = NULL, attributedBody = NULL, date_retracted = ? "
                       "WHERE guid = 'A1B2-0002'", (apple_date("2026-11-03T08:00:00Z", "ventura"),))
    again = list(db.messages(after_rowid=last, changed_after=0))
    db.close()
    assert [m.guid for m in again] == ["A1B2-0002"] and again[0].retracted


def test_missing_full_disk_access_gives_one_clear_message(tmp_path, monkeypatch, capsys):
    build_chat_db("chatdb_ventura", tmp_path / "chat.db")

    def refuse(*args, **kwargs):
        raise sqlite3.OperationalError("authorization denied")

    monkeypatch.setattr("convassist_agent.chatdb.sqlite3.connect", refuse)
    from convassist_agent.state import AgentState

    code = cli.sync_pass(AgentState(server="http://x"), client=None, chat_db=tmp_path / "chat.db",
                         contacts_root=tmp_path, quiet=False)
    assert code == 2
    err = capsys.readouterr().err
    assert "Full Disk Access" in err and "Traceback" not in err


def test_addressbook_contacts(tmp_path):
    build_addressbook(tmp_path)
    contacts = read_contacts(tmp_path)
    assert {"phoneNumber": "(555) 123-0001", "displayName": "Carla Client"} in contacts
    assert {"email": "Dee@Example.com", "displayName": "Dee"} in contacts
    assert {"email": "events@bridal.example", "displayName": "Bridal Co"} in contacts
    assert len(contacts) == 4


def test_no_chat_db(tmp_path):
    with pytest.raises(FileNotFoundError):
        ChatDB(tmp_path / "nope.db")
