"""The agent's chat.db reader over a generated 100,000-message database (goal >= 50,000 messages/s).

Baseline of the same run: a bare sqlite3 SELECT of the same rows without decoding, so the ratio says what
typedstream decoding, joins and conversion cost. 90% of the rows keep their text in attributedBody, as
on recent macOS.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "agent")]

from convassist_agent.chatdb import ChatDB  # noqa: E402
from tests.agent.chatdb_fixture import SCHEMAS  # noqa: E402
from tests.agent.typedstream_blob import attributed_body  # noqa: E402

N = int(os.environ.get("BENCH_MESSAGES", "100000"))
CHATS = 200


def build(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMAS["ventura"])
    conn.executemany("INSERT INTO handle (ROWID, id, service) VALUES (?, ?, 'iMessage')",
                     [(i, f"+1555{i:07d}") for i in range(1, CHATS + 1)])
    conn.executemany("INSERT INTO chat (ROWID, guid, style, chat_identifier) VALUES (?, ?, 45, ?)",
                     [(i, f"iMessage;-;+1555{i:07d}", f"+1555{i:07d}") for i in range(1, CHATS + 1)])
    conn.executemany("INSERT INTO chat_handle_join VALUES (?, ?)", [(i, i) for i in range(1, CHATS + 1)])
    rows, joins = [], []
    for i in range(1, N + 1):
        chat = 1 + i % CHATS
        text = f"Hi! Is {i % 12 + 1}pm still free on Friday for a cut and colour? ({i})"
        body = attributed_body(text) if i % 10 else None
        rows.append((i, f"GUID-{i}", None if body else text, chat, body, (i * 60) * 10**9, i % 2))
        joins.append((chat, i))
    conn.executemany("INSERT INTO message (ROWID, guid, text, handle_id, attributedBody, date, is_from_me) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    conn.executemany("INSERT INTO chat_message_join (chat_id, message_id) VALUES (?, ?)", joins)
    conn.commit()
    conn.close()


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chat.db"
        build(path)
        raw = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        started = time.perf_counter()
        count = sum(1 for _ in raw.execute("SELECT ROWID, guid, text, attributedBody, date FROM message"))
        bare = time.perf_counter() - started
        raw.close()
        db = ChatDB(path)
        started = time.perf_counter()
        read = sum(1 for m in db.messages() if m.text)
        ours = time.perf_counter() - started
        db.close()
    assert count == read == N, (count, read)
    rate = N / ours
    print(f"agent reader: {rate:,.0f} messages/s ({ours:.2f} s for {N:,}, text decoded for all) "
          f"(goal >= 50,000/s: {'PASS' if rate >= 50000 else 'FAIL'})")
    print(f"baseline bare SELECT without decoding: {N / bare:,.0f} rows/s; reader/baseline {ours / bare:.1f}x the time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
