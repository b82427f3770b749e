"""Build chat.db / AddressBook fixtures at test time from the JSON data files beside this module, with
Apple's schema of two macOS eras: "ventura" (nanosecond dates, text in attributedBody, edit/unsend
columns) and "high_sierra" (second dates, plain text, no edit/unsend or tapback columns)."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path

from tests.agent.typedstream_blob import attributed_body

DATA = Path(__file__).parent / "data"
APPLE_EPOCH = 978307200

SCHEMAS = {
    "ventura": """
        CREATE TABLE handle (ROWID INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE, id TEXT NOT NULL, country TEXT,
            service TEXT NOT NULL, uncanonicalized_id TEXT, person_centric_id TEXT, UNIQUE (id, service));
        CREATE TABLE chat (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT UNIQUE NOT NULL, style INTEGER,
            state INTEGER, account_id TEXT, properties BLOB, chat_identifier TEXT, service_name TEXT,
            room_name TEXT, account_login TEXT, is_archived INTEGER DEFAULT 0, last_addressed_handle TEXT,
            display_name TEXT, group_id TEXT, is_filtered INTEGER DEFAULT 0, successful_query INTEGER,
            last_read_message_timestamp INTEGER DEFAULT 0);
        CREATE TABLE message (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT UNIQUE NOT NULL, text TEXT,
            replace INTEGER DEFAULT 0, service_center TEXT, handle_id INTEGER DEFAULT 0, subject TEXT,
            country TEXT, attributedBody BLOB, version INTEGER DEFAULT 0, type INTEGER DEFAULT 0,
            service TEXT, account TEXT, account_guid TEXT, error INTEGER DEFAULT 0, date INTEGER,
            date_read INTEGER, date_delivered INTEGER, is_delivered INTEGER DEFAULT 0,
            is_finished INTEGER DEFAULT 0, is_emote INTEGER DEFAULT 0, is_from_me INTEGER DEFAULT 0,
            is_empty INTEGER DEFAULT 0, is_delayed INTEGER DEFAULT 0, is_auto_reply INTEGER DEFAULT 0,
            is_prepared INTEGER DEFAULT 0, is_read INTEGER DEFAULT 0, is_system_message INTEGER DEFAULT 0,
            is_sent INTEGER DEFAULT 0, has_dd_results INTEGER DEFAULT 0, cache_has_attachments INTEGER DEFAULT 0,
            cache_roomnames TEXT, item_type INTEGER DEFAULT 0, other_handle INTEGER DEFAULT 0,
            group_title TEXT, group_action_type INTEGER DEFAULT 0, associated_message_guid TEXT,
            associated_message_type INTEGER DEFAULT 0, balloon_bundle_id TEXT, expressive_send_style_id TEXT,
            associated_message_range_location INTEGER DEFAULT 0, associated_message_range_length INTEGER DEFAULT 0,
            thread_originator_guid TEXT, thread_originator_part TEXT, date_retracted INTEGER DEFAULT 0,
            date_edited INTEGER DEFAULT 0, message_summary_info BLOB, part_count INTEGER);
        CREATE TABLE chat_message_join (chat_id INTEGER REFERENCES chat (ROWID) ON DELETE CASCADE,
            message_id INTEGER REFERENCES message (ROWID) ON DELETE CASCADE, message_date INTEGER DEFAULT 0,
            PRIMARY KEY (chat_id, message_id));
        CREATE TABLE chat_handle_join (chat_id INTEGER REFERENCES chat (ROWID) ON DELETE CASCADE,
            handle_id INTEGER REFERENCES handle (ROWID) ON DELETE CASCADE, UNIQUE(chat_id, handle_id));
        CREATE TABLE chat_recoverable_message_join (chat_id INTEGER, message_id INTEGER, delete_date INTEGER,
            ck_sync_state INTEGER DEFAULT 0, PRIMARY KEY (chat_id, message_id));
    """,
    "high_sierra": """
        CREATE TABLE handle (ROWID INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE, id TEXT NOT NULL, country TEXT,
            service TEXT NOT NULL, uncanonicalized_id TEXT, UNIQUE (id, service));
        CREATE TABLE chat (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT UNIQUE NOT NULL, style INTEGER,
            state INTEGER, account_id TEXT, properties BLOB, chat_identifier TEXT, service_name TEXT,
            room_name TEXT, account_login TEXT, is_archived INTEGER DEFAULT 0, last_addressed_handle TEXT,
            display_name TEXT, group_id TEXT, is_filtered INTEGER, successful_query INTEGER);
        CREATE TABLE message (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT UNIQUE NOT NULL, text TEXT,
            replace INTEGER DEFAULT 0, service_center TEXT, handle_id INTEGER DEFAULT 0, subject TEXT,
            country TEXT, attributedBody BLOB, version INTEGER DEFAULT 0, type INTEGER DEFAULT 0,
            service TEXT, account TEXT, account_guid TEXT, error INTEGER DEFAULT 0, date INTEGER,
            date_read INTEGER, date_delivered INTEGER, is_delivered INTEGER DEFAULT 0,
            is_finished INTEGER DEFAULT 0, is_emote INTEGER DEFAULT 0, is_from_me INTEGER DEFAULT 0,
            is_empty INTEGER DEFAULT 0, is_delayed INTEGER DEFAULT 0, is_auto_reply INTEGER DEFAULT 0,
            is_prepared INTEGER DEFAULT 0, is_read INTEGER DEFAULT 0, is_system_message INTEGER DEFAULT 0,
            is_sent INTEGER DEFAULT 0, has_dd_results INTEGER DEFAULT 0, cache_has_attachments INTEGER DEFAULT 0,
            cache_roomnames TEXT, item_type INTEGER DEFAULT 0, other_handle INTEGER DEFAULT 0,
            group_title TEXT, group_action_type INTEGER DEFAULT 0);
        CREATE TABLE chat_message_join (chat_id INTEGER REFERENCES chat (ROWID) ON DELETE CASCADE,
            message_id INTEGER REFERENCES message (ROWID) ON DELETE CASCADE, PRIMARY KEY (chat_id, message_id));
        CREATE TABLE chat_handle_join (chat_id INTEGER REFERENCES chat (ROWID) ON DELETE CASCADE,
            handle_id INTEGER REFERENCES handle (ROWID) ON DELETE CASCADE, UNIQUE(chat_id, handle_id));
    """,
}


def apple_date(iso: str | None, schema: str) -> int:
    if not iso:
        return 0
    seconds = datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() - APPLE_EPOCH
    return int(seconds * 1_000_000_000) if schema == "ventura" else int(seconds)


def insert_message(conn: sqlite3.Connection, schema: str, m: dict) -> None:
    row = {"ROWID": m["id"], "guid": m["guid"], "handle_id": m.get("handle", 0), "service": "iMessage",
           "date": apple_date(m["date"], schema), "is_from_me": int(m.get("from_me", False)),
           "cache_has_attachments": int(m.get("attachment", False)), "text": m.get("text")}
    if m.get("body") is not None:  # recent macOS: text NULL, the words in attributedBody
        row["attributedBody"] = attributed_body(m["body"])
    if schema == "ventura":
        row.update(associated_message_guid=m.get("assoc_guid"), associated_message_type=m.get("assoc_type", 0),
                   date_edited=apple_date(m.get("edited"), schema), date_retracted=apple_date(m.get("retracted"), schema))
    columns = ", ".join(row)
    conn.execute(f"INSERT INTO message ({columns}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    for chat in m["chats"]:
        conn.execute("INSERT INTO chat_message_join (chat_id, message_id) VALUES (?, ?)", (chat, m["id"]))


def build_chat_db(name: str, path: Path) -> dict:
    """chat.db from data/<name>.json (in WAL mode, as Messages keeps it); returns the data."""
    data = json.loads((DATA / f"{name}.json").read_text())
    schema = data["schema"]
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMAS[schema])
    for h in data["handles"]:
        conn.execute("INSERT INTO handle (ROWID, id, service) VALUES (?, ?, 'iMessage')", (h["id"], h["handle"]))
    for c in data["chats"]:
        conn.execute("INSERT INTO chat (ROWID, guid, style, chat_identifier, service_name, display_name) "
                     "VALUES (?, ?, ?, ?, 'iMessage', ?)",
                     (c["id"], c["guid"], 43 if ";+;" in c["guid"] else 45, c["identifier"], c.get("display_name")))
        for h in c["handles"]:
            conn.execute("INSERT INTO chat_handle_join (chat_id, handle_id) VALUES (?, ?)", (c["id"], h))
    for m in data["messages"]:
        insert_message(conn, schema, m)
    conn.commit()
    conn.close()
    return data


def build_addressbook(root: Path) -> Path:
    """AddressBook-v22.abcddb under root/Sources/<id>/ from data/addressbook.json."""
    data = json.loads((DATA / "addressbook.json").read_text())
    path = root / "Sources" / "3E1A6F2C-0000-4000-8000-000000000001" / "AddressBook-v22.abcddb"
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE ZABCDRECORD (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, ZFIRSTNAME VARCHAR, ZLASTNAME VARCHAR,
            ZORGANIZATION VARCHAR, ZNICKNAME VARCHAR);
        CREATE TABLE ZABCDPHONENUMBER (Z_PK INTEGER PRIMARY KEY, ZOWNER INTEGER, ZFULLNUMBER VARCHAR, ZLABEL VARCHAR);
        CREATE TABLE ZABCDEMAILADDRESS (Z_PK INTEGER PRIMARY KEY, ZOWNER INTEGER, ZADDRESS VARCHAR, ZLABEL VARCHAR);
    """)
    for i, person in enumerate(data["people"], 1):
        conn.execute("INSERT INTO ZABCDRECORD (Z_PK, ZFIRSTNAME, ZLASTNAME, ZORGANIZATION) VALUES (?, ?, ?, ?)",
                     (i, person.get("first"), person.get("last"), person.get("org")))
        for number in person.get("phones", []):
            conn.execute("INSERT INTO ZABCDPHONENUMBER (ZOWNER, ZFULLNUMBER) VALUES (?, ?)", (i, number))
        for email in person.get("emails", []):
            conn.execute("INSERT INTO ZABCDEMAILADDRESS (ZOWNER, ZADDRESS) VALUES (?, ?)", (i, email))
    conn.commit()
    conn.close()
    return path
