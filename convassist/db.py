"""The database engine and sessions, shared by API routes, Reflex states and the worker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import sqlalchemy as sa
from sqlmodel import Session

from convassist.settings import get_settings


@lru_cache(maxsize=4)
def engine_for(url: str) -> sa.Engine:
    """One pooled engine per URL. Its errors never carry the statement's values (hide_parameters): they are
    message text, tokens' hashes, judged examples, and an error may end up in a log with its traceback."""
    if url.startswith("sqlite"):
        return sa.create_engine(url, connect_args={"check_same_thread": False}, hide_parameters=True)
    # a database host gone without a word (crashed, partitioned, failed over) must not hold a request for the
    # minutes TCP takes to give up: connecting waits 5 s, a connection whose sent data goes unanswered for 30 s
    # (a query in flight) or that stays silent while idle (~1 min of keepalives) is given up, and a request
    # waits 10 s for a pooled connection (then 503, as for any unreachable database)
    return sa.create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, pool_recycle=1800,
                            pool_timeout=10, hide_parameters=True, connect_args=CONNECT_ARGS)


CONNECT_ARGS = {"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
                "keepalives_count": 3, "tcp_user_timeout": 30_000}


def get_engine() -> sa.Engine:
    return engine_for(get_settings().resolved_database_url)


@contextmanager
def transaction(session: Session) -> Iterator[Session]:
    """End session's transaction: commit on success, roll back on error."""
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session of its own that commits on success and rolls back on error."""
    with Session(get_engine(), expire_on_commit=False) as session, transaction(session):
        yield session


def one_at_a_time(session: Session, key: str) -> None:
    """Wait until no other transaction holds `key`, then hold it until this one ends (PostgreSQL's
    transaction-level advisory lock; SQLite runs one writer at a time anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})


def database_ok() -> bool:
    """SELECT 1 against the configured database."""
    try:
        with get_engine().connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except Exception:  # health reports it; the reason goes to the log without secrets
        return False


_RETRYABLE = {"40P01", "40001"}  # deadlock_detected, serialization_failure


def run_in_transaction(work, *, attempts: int = 3):
    """work(session) in its own transaction, retried when PostgreSQL picks it as a deadlock victim
    or the pooled connection turns out to be closed."""
    for attempt in range(1, attempts + 1):
        try:
            with session_scope() as session:
                return work(session)
        except sa.exc.DBAPIError as exc:
            code = getattr(getattr(exc, "orig", None), "sqlstate", None)
            if (code not in _RETRYABLE and not exc.connection_invalidated) or attempt == attempts:
                raise


_AFTER_COMMIT = "convassist_after_commit"


def after_commit(session: Session, name: str, item, send) -> None:
    """Collect `item` under `name` on the session; once its transaction commits, `send(items)` gets the
    set collected (once), and a rollback drops it — for what must not be announced before the rows it
    announces are visible (live pages, suggestions ahead)."""
    pending = session.info.get(_AFTER_COMMIT)
    if pending is None:  # first use in this session: hear its commits and rollbacks (the session is short-lived)
        pending = session.info[_AFTER_COMMIT] = {}
        sa.event.listen(session, "after_commit", _send_pending)
        sa.event.listen(session, "after_rollback", lambda s: s.info[_AFTER_COMMIT].clear())
    pending.setdefault(name, (send, set()))[1].add(item)


def _send_pending(session: Session) -> None:
    pending = session.info[_AFTER_COMMIT]
    batches, session.info[_AFTER_COMMIT] = list(pending.values()), {}
    for send, items in batches:
        send(items)

