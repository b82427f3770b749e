"""Where the agent keeps its pairing and checkpoint: the token in the Keychain (keyring), the rest in a
small JSON file. Where no keyring backend exists (Linux, tests), the token goes to a file only the user
can read."""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

log = logging.getLogger(__name__)

SERVICE = "convassist-agent"


def home() -> Path:
    override = os.environ.get("CONVASSIST_AGENT_HOME")
    if override:
        return Path(override)
    if sys.platform == "darwin":
        return Path("~/Library/Application Support/ConvAssist").expanduser()
    return Path(os.environ.get("XDG_CONFIG_HOME", "~/.config")).expanduser() / "convassist-agent"


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, atomically: a crash or a power cut leaves the old file or the new
    one, never half of one (written to disk before the rename), and two agents at once (a manual `sync` while
    the LaunchAgent runs) each write a temporary file of their own."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@dataclass
class AgentState:
    server: str = ""
    device_id: str = ""
    last_rowid: int = 0  # advances only after the server confirmed every batch up to it
    last_change: int = 0  # the latest edit/unsend time sent (chat.db's raw units)
    last_sync_at: str = ""
    contacts_hash: str = ""
    allow_http: bool = False  # chosen at pairing (`--allow-http`): plain http to a server on a trusted LAN
    token_issued_at: float = 0.0  # when this Mac received its device token (Unix seconds); never the token
    token_expires_at: float = 0.0  # when the server said it expires (Unix seconds); 0: unknown

    @classmethod
    def load(cls) -> "AgentState":
        path = home() / "state.json"
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text())
            state = cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
            kinds = {str: str, int: int, bool: bool, float: (int, float)}  # each field's, from its default
            if all(isinstance(getattr(state, k), kinds[type(getattr(cls, k))]) for k in cls.__dataclass_fields__):
                return state
        except (ValueError, TypeError, AttributeError):
            pass
        # damaged (a disk that lost it, a hand edit): as if never paired
        log.error("the agent's checkpoint %s could not be read; pair this Mac again", path)
        return cls()

    def save(self) -> None:
        _write_private(home() / "state.json", json.dumps(asdict(self), indent=2))


def _keyring():
    try:
        import keyring
        from keyring.backends import fail

        backend = keyring.get_keyring()
        if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 0) <= 0:
            return None  # no usable backend (Linux without a secret service, CI)
        return keyring
    except Exception:
        return None


def save_token(server: str, token: str) -> str:
    """Store the device token; returns where it went ("keychain" or the file path)."""
    keyring = _keyring()
    if keyring is not None:
        try:
            keyring.set_password(SERVICE, server, token)
            return "keychain"
        except Exception:
            pass
    path = home() / "token"
    _write_private(path, token)
    return str(path)


def token_of(state: AgentState) -> Optional[str]:
    """The device token of the server this Mac is paired with (None: not paired)."""
    return load_token(state.server) if state.server else None


def load_token(server: str) -> Optional[str]:
    keyring = _keyring()
    if keyring is not None:
        try:
            token = keyring.get_password(SERVICE, server)
            if token:
                return token
        except Exception:
            pass
    path = home() / "token"
    return path.read_text().strip() if path.exists() else None


def delete_token(server: str) -> None:
    keyring = _keyring()
    if keyring is not None:
        try:
            keyring.delete_password(SERVICE, server)
        except Exception:
            pass
    (home() / "token").unlink(missing_ok=True)
