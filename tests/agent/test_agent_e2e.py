"""The agent against the running API: pair, first sync, nothing new, an edit, a server stopped mid-sync."""

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from convassist.models import Contact, Device, Message, Reaction, as_utc
from convassist_agent import cli
from convassist_agent.client import Client, ServerUnavailable
from convassist_agent.state import AgentState, load_token
from convassist_agent.sync import sync_messages
from tests.agent.chatdb_fixture import apple_date, build_addressbook, build_chat_db, insert_message
from tests.agent.pairing import pair, provider_token
from tests.agent.typedstream_blob import attributed_body


def count(db, model):
    with db.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


def test_pair_sync_again_edit(api_server, api, db, agent_home, capsys):
    headers = provider_token(api)
    pair(api_server.url, api, headers)
    state = AgentState.load()
    assert state.server == api_server.url and load_token(api_server.url)
    assert (agent_home / "home" / "token").stat().st_mode & 0o077 == 0  # no keyring here: a private file

    chat_db = agent_home / "chat.db"
    build_chat_db("chatdb_ventura", chat_db)
    build_addressbook(agent_home / "ab")
    args = ["--chat-db", str(chat_db), "--contacts", str(agent_home / "ab")]
    assert cli.main([*args, "sync"]) == 0
    # exactly the expected rows: 9 messages (2 tapbacks become reactions), 3 conversations, 4 contacts
    assert count(db, Message) == 9 and count(db, Reaction) == 2 and count(db, Contact) == 4
    with db.connect() as conn:
        texts = dict(conn.execute(sa.select(Message.imessage_guid, Message.text)).all())
        retracted = conn.execute(sa.select(Message.retracted).where(Message.imessage_guid == "A1B2-0005")).scalar()
    assert texts["A1B2-0001"] == "Hi! Do you have time for a trim on Friday?" and retracted is True
    convs = api.get("/api/conversations", headers=headers).json()["items"]
    assert {c["displayName"] for c in convs} >= {"Wedding party", "Carla Client"}

    # a second sync sends nothing new, and still tells the server this Mac is up to date (a quiet Mac showed
    # as "No sync for N hours", like a stopped one)
    before = AgentState.load().last_rowid
    with db.begin() as conn:
        conn.execute(sa.update(Device).values(last_sync_at=datetime.now(timezone.utc) - timedelta(hours=3)))
    assert cli.main([*args, "sync"]) == 0
    assert "0 new, 0 updated" in capsys.readouterr().out
    assert AgentState.load().last_rowid == before
    with db.connect() as conn:
        synced = as_utc(conn.execute(sa.select(Device.last_sync_at)).scalar_one())
    assert datetime.now(timezone.utc) - synced < timedelta(minutes=1)

    # an edit made on the Mac appears after the next sync
    writer = sqlite3.connect(chat_db)
    writer.execute("UPDATE message SET attributedBody = ?, date_edited = ? WHERE guid = 'A1B2-0008'",
                   (attributed_body("Of course! 7:30am start."), apple_date("2026-11-03T08:00:00Z", "ventura")))
    writer.commit()
    writer.close()
    assert cli.main([*args, "sync"]) == 0
    with db.connect() as conn:
        assert conn.execute(sa.select(Message.text).where(Message.imessage_guid == "A1B2-0008")).scalar() == \
            "Of course! 7:30am start."
    assert count(db, Message) == 9
    assert cli.main(["status"]) == 0 and "Paired:      yes" in capsys.readouterr().out


def test_server_stopped_mid_sync_loses_and_duplicates_nothing(api_server, api, db, agent_home):
    headers = provider_token(api)
    pair(api_server.url, api, headers)
    chat_db = agent_home / "chat.db"
    build_chat_db("chatdb_high_sierra", chat_db)
    writer = sqlite3.connect(chat_db)
    for i in range(5, 1305):  # 1,300 more messages: three windows of 500
        insert_message(writer, "high_sierra", {"id": i, "guid": f"BULK-{i}", "chats": [1 + i % 2], "handle": 1,
                                               "text": f"message {i}", "date": f"2017-07-01T{i // 60 % 24:02d}:{i % 60:02d}:00Z"})
    writer.commit()
    writer.close()

    state = AgentState.load()
    client = Client(state.server, load_token(state.server), retries=1, backoff=0.01)
    from convassist_agent.chatdb import ChatDB

    calls = {"n": 0}
    real = client.sync_messages

    def stop_after_three(batch):
        calls["n"] += 1
        if calls["n"] == 4:  # the second window's second batch: the server goes away
            api_server.stop()
        return real(batch)

    client.sync_messages = stop_after_three
    chat = ChatDB(chat_db)
    try:
        with pytest.raises(ServerUnavailable):
            sync_messages(chat, client, state)
        assert AgentState.load().last_rowid == state.last_rowid  # only the confirmed window counts
        confirmed = count(db, Message)
        assert 500 <= confirmed < 1304
        api_server.start()
        client.sync_messages = real
        totals = sync_messages(chat, client, state)
    finally:
        chat.close()
        if api_server.process.poll() is not None:
            api_server.start()
    assert count(db, Message) == 1304  # every message, once
    assert totals["inserted"] == 1304 - confirmed and totals["duplicates"] == totals["received"] - totals["inserted"]
    assert AgentState.load().last_rowid == 1304
