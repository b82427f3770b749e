"""Many Macs syncing at once, with the real agent code: shared by tests/faults/test_load.py and
bench/load_agents.py.

Each provider has two Macs whose chat.db hold the same history (iMessage in iCloud shows one
history on every Mac), so their batches overlap and race on the same rows. Every agent runs
`convassist_agent.sync.sync_messages` in its own thread against the server; each batch's latency is
recorded.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from convassist_agent.chatdb import ChatDB
from convassist_agent.client import Client
from convassist_agent.state import AgentState
from convassist_agent.sync import sync_messages
from tests.agent.chatdb_fixture import build_chat_db, insert_message


@dataclass
class LoadResult:
    seconds: float
    batch_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def build_history(path: Path, messages: int) -> None:
    """A chat.db with `messages` messages over two chats (the fixture's 4, then generated ones)."""
    build_chat_db("chatdb_high_sierra", path)
    writer = sqlite3.connect(path)
    for i in range(5, messages + 1):
        insert_message(writer, "high_sierra", {
            "id": i, "guid": f"LOAD-{i}", "chats": [1 + i % 2], "handle": 1, "text": f"Is {i % 12 + 1}pm free?",
            "date": f"2020-{1 + i // 40000 % 12:02d}-01T{i // 60 % 24:02d}:{i % 60:02d}:{i % 7:02d}Z"})
    writer.commit()
    writer.close()


def accounts(database_url: str, providers: int, macs_per_provider: int = 0) -> list[dict]:
    """Providers (with paired Macs), written through the models — sign-up and pairing are not what
    is measured: [{"id", "token", "macs": [device token, ...]}]."""
    from sqlmodel import Session

    from convassist.db import engine_for
    from convassist.models import Device, Provider
    from convassist.services.tokens import DEVICE_AUDIENCE, PROVIDER_AUDIENCE, issue_token

    made = []
    with Session(engine_for(database_url)) as session:
        for p in range(providers):
            provider = Provider(email=f"load-{p}-{uuid.uuid4().hex[:6]}@example.com", name=f"Load {p}",
                                password_hash="x")
            session.add(provider)
            session.flush()
            macs = []
            for m in range(macs_per_provider):
                device = Device(name=f"Mac {m}", hardware_id=f"load-{uuid.uuid4().hex}", provider_id=provider.id,
                                verified=True)
                session.add(device)
                session.flush()
                macs.append(issue_token(device.id, DEVICE_AUDIENCE)[0])
            made.append({"id": provider.id, "token": issue_token(provider.id, PROVIDER_AUDIENCE)[0], "macs": macs})
        session.commit()
    return made


def paired_macs(database_url: str, providers: int, macs_per_provider: int) -> list[tuple[uuid.UUID, str]]:
    """[(provider id, device token)] for every Mac of `providers` new providers."""
    return [(a["id"], mac) for a in accounts(database_url, providers, macs_per_provider) for mac in a["macs"]]


def run_agents(server: str, macs: list[tuple[uuid.UUID, str]], history: Path) -> LoadResult:
    """Every Mac syncs `history` from the start, all at once; returns batch latencies and errors."""
    result = LoadResult(0.0)
    lock = threading.Lock()

    def agent(mac: tuple[uuid.UUID, str]) -> None:
        client = Client(server, mac[1], retries=0)  # a 5xx is reported, not retried away
        send = client.sync_messages

        def timed(batch: dict) -> dict:
            started = time.perf_counter()
            answer = send(batch)
            with lock:
                result.batch_ms.append((time.perf_counter() - started) * 1000)
            return answer

        client.sync_messages = timed
        state = AgentState(server=server)
        state.save = lambda: None  # fifty agents in one process share no state file
        chat = ChatDB(history)
        try:
            sync_messages(chat, client, state)
        except Exception as exc:  # noqa: BLE001 - counted and reported by the caller
            with lock:
                result.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            chat.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(len(macs)) as pool:
        list(pool.map(agent, macs))
    result.seconds = time.perf_counter() - started
    return result
