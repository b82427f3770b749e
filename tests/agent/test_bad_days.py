"""The agent on a real Mac's bad days: an AddressBook missing a column or a table, a corrupt or
truncated attributedBody, chat.db locked by Messages, text that is not UTF-8, a message longer than the
server takes — none of them stops the message sync."""

from __future__ import annotations

import sqlite3

from convassist_agent import cli
from convassist_agent.addressbook import read_contacts
from convassist_agent.chatdb import ChatDB
from tests.agent.chatdb_fixture import build_addressbook, build_chat_db, insert_message
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


def test_one_odd_row_never_holds_the_sync_back(api_server, api, db, agent_home, capsys):
    """Rows a real chat.db can hold, each of which used to stop every later message from syncing: a body cut
    off right after its string marker (the agent crashed, and again after every restart), text and a chat
    name that are not valid UTF-8 (the whole query failed, retried forever as "busy"), and a message longer
    than the server takes (refused, the same batch sent again every pass). Now one sync sends everything."""
    import sqlalchemy as sa

    from convassist.models import Conversation, Message

    pair(api_server.url, api, provider_token(api), "--yes")
    chat_db = agent_home / "chat.db"
    build_chat_db("chatdb_ventura", chat_db)
    long_text = "la " * 50_000  # 150,000 characters
    with sqlite3.connect(chat_db) as conn:
        conn.execute("UPDATE message SET text = NULL, attributedBody = ? WHERE guid = 'A1B2-0001'",
                     (b"\x04\x0bstreamtyped\x84\x01+",))
        conn.execute("UPDATE message SET text = CAST(X'4869206361666520e9' AS TEXT) WHERE guid = 'A1B2-0002'")
        conn.execute("UPDATE message SET text = ? WHERE guid = 'A1B2-0008'", (long_text,))
        conn.execute("UPDATE chat SET display_name = CAST(X'53616c6f6e20ff' AS TEXT) WHERE ROWID = 1")
    assert cli.main(["--chat-db", str(chat_db), "--contacts", str(agent_home / "ab"), "sync"]) == 0
    assert "Synced: 11 new" in capsys.readouterr().out
    with db.connect() as conn:
        texts = dict(conn.execute(sa.select(Message.imessage_guid, Message.text)).all())
        names = set(conn.execute(sa.select(Conversation.display_name)).scalars())
    assert texts["A1B2-0001"] is None  # sent without its text, counted
    assert texts["A1B2-0002"] == "Hi cafe \ufffd"
    assert texts["A1B2-0008"] == long_text[:100_000].strip()
    assert "Salon \ufffd" in names


def test_odd_address_book_cards_never_hold_the_sync_back(api_server, api, db, agent_home, monkeypatch, capsys):
    """Cards a real address book holds, each of which the server refused (and the whole batch, and with it every
    message after, pass after pass): a phone field without a digit, a phone longer than the server takes, a name
    of 400 characters. Now they are left out or cut; and a batch the server refuses anyway stops only the
    contacts, never the messages."""
    import sqlalchemy as sa

    from convassist.models import Contact
    from convassist_agent import client as agent_client

    pair(api_server.url, api, provider_token(api), "--yes")
    chat_db = agent_home / "chat.db"
    build_chat_db("chatdb_ventura", chat_db)
    book = build_addressbook(agent_home / "ab")
    with sqlite3.connect(book) as conn:
        conn.execute("INSERT INTO ZABCDRECORD (Z_PK, ZFIRSTNAME, ZLASTNAME) VALUES (10, 'Front', 'Desk')")
        conn.execute("INSERT INTO ZABCDPHONENUMBER (ZOWNER, ZFULLNUMBER) VALUES (10, 'N/A')")
        conn.execute("INSERT INTO ZABCDRECORD (Z_PK, ZFIRSTNAME, ZLASTNAME) VALUES (11, 'Maria', 'Long')")
        conn.execute("INSERT INTO ZABCDPHONENUMBER (ZOWNER, ZFULLNUMBER) VALUES "
                     "(11, '+1 (555) 123-4567 ext. 89 front desk, ask for Maria please')")
        conn.execute("INSERT INTO ZABCDRECORD (Z_PK, ZFIRSTNAME, ZLASTNAME) VALUES (12, ?, 'Name')", ("W" * 400,))
        conn.execute("INSERT INTO ZABCDEMAILADDRESS (ZOWNER, ZADDRESS) VALUES (12, 'w@example.com')")
    args = ["--chat-db", str(chat_db), "--contacts", str(agent_home / "ab")]
    assert cli.main([*args, "sync"]) == 0
    assert "Synced: 11 new" in capsys.readouterr().out
    with db.connect() as conn:
        names = dict(conn.execute(sa.select(Contact.display_name, Contact.phone_number)).all())
    assert "Front Desk" not in names  # no number: nothing to reach them by
    assert names["Maria Long"].startswith("+1555123456")
    assert len(next(n for n in names if n.startswith("WWW"))) == 300

    def refused(self, contacts):
        raise agent_client.ApiError(422, "validation_error", "no")

    monkeypatch.setattr(agent_client.Client, "sync_contacts", refused)
    with sqlite3.connect(book) as conn:  # the address book changed: it is sent again, and refused
        conn.execute("UPDATE ZABCDRECORD SET ZLASTNAME = 'Clientele' WHERE ZFIRSTNAME = 'Carla'")
    with sqlite3.connect(chat_db) as writer:
        insert_message(writer, "ventura", {"id": 12, "guid": "A1B2-0012", "chats": [1], "handle": 1,
                                           "body": "New one", "date": "2026-11-03T09:00:00Z"})
    assert cli.main([*args, "sync"]) == 0
    assert "Synced: 1 new" in capsys.readouterr().out
