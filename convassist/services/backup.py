"""Backup and restore of what ConvAssist cannot recompute: the PostgreSQL database (pg_dump's custom
format) and the trained LoRA adapters under CONVASSIST_DATA_DIR/adapters. Redis holds only the queue,
caches and limits: nothing there needs a backup.

    python -m convassist backup DIR     # DIR/database.dump, DIR/adapters.tar.gz, DIR/manifest.json
    python -m convassist restore DIR    # into the configured database and data dir (stop the app first)

Adapter paths are stored as absolute paths: restore into the same CONVASSIST_DATA_DIR.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from convassist.settings import get_settings

DUMP, ADAPTERS, MANIFEST = "database.dump", "adapters.tar.gz", "manifest.json"


class BackupError(RuntimeError):
    """A backup or restore that could not be done (the message says why, without secrets)."""


@dataclass(frozen=True)
class BackupSummary:
    directory: Path
    database_bytes: int
    adapter_files: int


def _tool(name: str) -> str:
    """pg_dump / pg_restore: on PATH, else the newest installed PostgreSQL's."""
    found = shutil.which(name) or next((str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                                                                 reverse=True)), None)
    if not found:
        raise BackupError(f"{name} is not installed (Debian: apt-get install postgresql-client).")
    return found


def _connection() -> tuple[list[str], dict[str, str]]:
    """libpq arguments for the configured database; the password goes in the environment, never argv."""
    url = make_url(get_settings().resolved_database_url)
    if not url.drivername.startswith("postgresql"):
        raise BackupError("Backups need PostgreSQL (DATABASE_URL); the dev SQLite file can simply be copied.")
    # the whole URL but its password, as a libpq URI: its options (sslmode, a socket's host) hold too
    uri = url._replace(drivername="postgresql", password=None,  # (URL.set cannot unset the password)
                       host=url.host or (None if "host" in url.query else "127.0.0.1"))
    return ["--dbname", uri.render_as_string(hide_password=False)], {"PGPASSWORD": url.password or ""}


def _run(command: list[str], env: dict[str, str]) -> None:
    import os

    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed: {done.stderr.strip()[-500:]}")


def backup(directory: Path) -> BackupSummary:
    """Dump the database and pack the adapters into directory (created; must be empty). Readable by its owner
    only: it holds every provider's messages and password hashes."""
    import os

    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty; back up into a new directory.")
    directory.chmod(0o700)
    mask = os.umask(0o077)  # pg_dump's file and ours: 0600
    try:
        return _backup(directory)
    finally:
        os.umask(mask)


def _backup(directory: Path) -> BackupSummary:
    args, env = _connection()
    _run([_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(directory / DUMP), *args], env)
    adapters = get_settings().convassist_data_dir / "adapters"
    files = sorted(p for p in adapters.rglob("*") if p.is_file()) if adapters.exists() else []
    with tarfile.open(directory / ADAPTERS, "w:gz") as archive:
        for path in files:
            archive.add(path, arcname=str(path.relative_to(adapters)))
    summary = BackupSummary(directory, (directory / DUMP).stat().st_size, len(files))
    (directory / MANIFEST).write_text(json.dumps({"createdAt": time.time(), "databaseBytes": summary.database_bytes,
                                                  "adapterFiles": summary.adapter_files}))
    return summary


def restore(directory: Path) -> BackupSummary:
    """Replace the configured database's contents and the adapters with the backup in directory. A backup
    that did not finish (no manifest) or whose adapters cannot be read is refused before anything is touched."""
    if not all((directory / name).exists() for name in (DUMP, ADAPTERS, MANIFEST)):
        raise BackupError(f"{directory} holds no finished ConvAssist backup ({DUMP}, {ADAPTERS}, {MANIFEST}).")
    try:  # read the whole archive first: a truncated or damaged one fails here, not after the database
        with tarfile.open(directory / ADAPTERS, "r:gz") as archive:
            count = sum(1 for member in archive.getmembers() if member.isfile())
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"{ADAPTERS} cannot be read ({type(exc).__name__}); nothing was restored.") from None
    args, env = _connection()
    _run([_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction", *args,
          str(directory / DUMP)], env)
    adapters = get_settings().convassist_data_dir / "adapters"
    adapters.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(directory / ADAPTERS, "r:gz") as archive:
            archive.extractall(adapters, filter="data")  # nothing out of the folder: no absolute paths, devices
    except (tarfile.TarError, OSError) as exc:
        raise BackupError(f"the database is restored but the adapters are not ({type(exc).__name__})") from None
    return BackupSummary(directory, (directory / DUMP).stat().st_size, count)
