"""The app SIGKILLed while a Mac pushes a 20,000-message history: after a restart on the same
address, the agent's own retries finish the sync with exactly 20,000 messages, none twice, and its
checkpoint at the last message."""

from __future__ import annotations

import signal
import threading
import time

import sqlalchemy as sa

from convassist.models import Message
from convassist_agent.chatdb import ChatDB
from convassist_agent.client import Client
from convassist_agent.state import AgentState, load_token
from convassist_agent.sync import sync_messages
from tests.agent.pairing import pair, provider_token
from tests.conftest import ApiServer
from tests.faults.load import build_history

TOTAL = 20_000


def stored(db) -> int:
    with db.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(Message)).scalar_one()


def test_app_killed_mid_sync_of_twenty_thousand_messages(services_env, api, db, agent_home):
    server = ApiServer(services_env)
    server.start()
    try:
        pair(server.url, api, provider_token(api))
        chat_db = agent_home / "chat.db"
        build_history(chat_db, TOTAL)

        state = AgentState.load()
        # the agent's own retry policy, with short waits: the app is back within a few seconds
        client = Client(state.server, load_token(state.server), retries=8, backoff=0.25)
        outcome: dict = {}

        def agent() -> None:  # as the LaunchAgent runs it: its own process, here its own thread
            chat = ChatDB(chat_db)
            try:
                outcome["totals"] = sync_messages(chat, client, state)
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                outcome["error"] = exc
            finally:
                chat.close()

        thread = threading.Thread(target=agent)
        thread.start()
        deadline = time.monotonic() + 120
        while stored(db) < 4_000:  # well into the history
            assert time.monotonic() < deadline and thread.is_alive(), outcome
            time.sleep(0.05)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        killed_at, at_kill = time.monotonic(), stored(db)
        server.start()  # the same port: the agent's next retry reaches it
        back_after = time.monotonic() - killed_at
        thread.join(timeout=300)
    finally:
        server.stop()
    assert "error" not in outcome, outcome.get("error")
    print(f"killed with {at_kill} stored; app back after {back_after:.1f} s; sync finished with "
          f"{outcome['totals']}")
    assert stored(db) == TOTAL  # every message, once
    assert AgentState.load().last_rowid == TOTAL
    totals = outcome["totals"]
    assert totals["inserted"] + totals["duplicates"] == totals["received"]
