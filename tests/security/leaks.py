"""The log scan: secrets the security tests put into their data, and every place the system logs to.

Tests register each secret they send (message texts, passwords, pairing codes, tokens) with
`SECRETS.add`; the session's log records (a handler on the root logger) and the log files the
fixtures' subprocesses write (PostgreSQL, Redis, the worker, Reflex, API servers: every `*.log`
under the session's temporary directory) are then searched for any of them.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

# the test client's own loggers: they log the requests *we* send (URLs with query strings), not
# what the server does with them
CLIENT_LOGGERS = ("httpx", "httpx2", "httpcore", "httpcore2", "hypothesis", "schemathesis", "urllib3", "requests")


@dataclass(frozen=True)
class Leak:
    where: str  # "log record <logger>" or a file path
    kind: str  # "message text", "password", "pairing code", "token"
    excerpt: str  # the line around it, with the secret masked

    def __str__(self) -> str:
        return f"{self.kind} in {self.where}: {self.excerpt}"


class SecretRegistry:
    """The secrets the tests sent, by kind; thread-safe (the API runs handlers in threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: dict[str, str] = {}

    def add(self, value: str, kind: str) -> str:
        """Remember value (returned unchanged) as a secret that must never be logged."""
        if value:
            with self._lock:
                self._secrets[value] = kind
        return value

    def items(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._secrets.items())

    def kinds(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, kind in self.items():
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    def find(self, text: str, where: str) -> list[Leak]:
        """Every registered secret that occurs in text."""
        leaks = []
        for value, kind in self.items():
            # a 6-digit code must stand alone: it would otherwise match inside any longer number
            pattern = rf"(?<!\d){re.escape(value)}(?!\d)" if value.isdigit() else re.escape(value)
            for match in re.finditer(pattern, text):
                start = max(0, text.rfind("\n", 0, match.start()) + 1, match.start() - 120)
                end = text.find("\n", match.end())
                end = min(len(text) if end < 0 else end, match.end() + 120)
                excerpt = text[start:match.start()] + f"<{kind}>" + text[match.end():end]
                leaks.append(Leak(where, kind, excerpt.strip()))
        return leaks


SECRETS = SecretRegistry()


class RecordCollector(logging.Handler):
    """Keeps the formatted text (message and traceback) of every record the app logs."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.records: list[tuple[str, str]] = []  # (logger name, formatted text)

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in CLIENT_LOGGERS:
            return
        try:
            text = self.format(record)
        except Exception:  # a record whose arguments do not format is still worth scanning
            text = f"{record.msg!r} {record.args!r}"
        self.records.append((record.name, text))


def log_files(base: Path) -> list[Path]:
    """Every log file the session's fixtures write under their temporary directory."""
    return sorted(p for p in base.rglob("*.log") if p.is_file())


def scan(collector: RecordCollector, files: list[Path]) -> list[Leak]:
    leaks = []
    for name, text in collector.records:
        leaks += SECRETS.find(text, f"log record {name}")
    for path in files:
        leaks += SECRETS.find(path.read_text(errors="replace"), str(path))
    return leaks
