"""The agent on a real Mac's bad days: an AddressBook missing a column or a table, a corrupt or
truncated attributedBody, chat.db locked by Messages — none of them stops the message sync."""

from __future__ import annotations

import sqlite3

from convassist_agent import cli
from convassist_agent.addressbook import read_contacts
from convassist_agent.chatdb import ChatDB
from tests.agent.chatdb_fixture import build_addressbook, build_chat_db
from tests.agent.pairing import pair, provider_token
from tests.agent.typedstream_blob import attributed_body


def test_an_addressbook_without_zorganization_still_gives_names(tmp_path):
    path = build_addressbook(tmp_path / "ab")
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE ZABCDRECORD DROP COLUMN ZORGANIZATION")
    contacts = read_contacts(tmp_path / "ab")
    assert contacts and all(c["displayName"] for c in contacts)


def test_an_unreadable_addressbook_source_is_skipped(tmp_path, caplog):
    path = build_addressbook(tmp_path / "ab")
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE ZABCDPHONENUMBER")
    assert read_contacts(tmp_path / "ab") == []
    assert "address book source skipped: OperationalError" in caplog.text


def test_a_corrupt_or_truncated_body_is_sent_without_text_and_counted(tmp_path):
    path = tmp_path / "chat.db"
    build_chat_db("chatdb_ventura", path)
    good = attributed_body("Hi! Do you have time for a trim on Friday?")
    with sqlite3.connect(path) as conn:  # two recent-macOS messages: text NULL, body damaged
        conn.execute("UPDATE message SET text = NULL, attributedBody = ? WHERE guid = 'A1B2-0001'", (good[:20],))
        conn.execute("UPDATE message SET text = NULL, attributedBody = ? WHERE guid = 'A1B2-0007'",
                     (b"\x04\x0bstreamtyped\x81\xe8\x03\x84\x01@\x84\x84\x84\xff\xff",))
    db = ChatDB(path)
    try:
        messages = {m.guid: m for m in db.messages()}
    finally:
        db.close()
    assert len(messages) == 11  # every message still goes to the server
    assert messages["A1B2-0001"].text is None and messages["A1B2-0007"].text is None
    assert db.unreadable_bodies == 2


def test_sync_goes_on_when_the_addressbook_breaks_and_reports_a_locked_chat_db(api_server, api, db, agent_home,
                                                                                monkeypatch, capsys):
    pair(api_server.url, api, provider_token(api), "--yes")
    chat_db = agent_home / "chat.db"
    build_chat_db("chatdb_ventura", chat_db)
    args = ["--chat-db", str(chat_db), "--contacts", str(agent_home / "ab")]
    monkeypatch.setattr(cli.addressbook, "read_contacts", lambda root: (_ for _ in ()).throw(
        sqlite3.DatabaseError("file is not a database")))
    assert cli.main([*args, "sync"]) == 0  # the messages went through without the contacts
    assert "Synced: 11 new" in capsys.readouterr().out

    def locked(self, **_):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(ChatDB, "messages", locked)
    assert cli.main([*args, "sync"]) == 8
    assert "The Messages database is busy" in capsys.readouterr().err
    assert cli.main([*args, "run", "--once"]) == 0  # the LaunchAgent's loop logs it and tries again later
