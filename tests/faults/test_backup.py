"""Backup and restore round trip, as ops would run it: `python -m convassist backup DIR`, lose the
database's rows and the adapters, `python -m convassist restore DIR`, and everything is back."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import sqlalchemy as sa
from alembic import command
from sqlmodel import Session

from convassist.db import engine_for
from convassist.models import Device, Message, Provider
from convassist.services import sync
from tests.api.conftest import batch, message
from tests.conftest import ROOT, alembic_config
from tests.faults.load import accounts


def convassist(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "convassist", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def counts(url: str) -> dict[str, int]:
    with engine_for(url).connect() as conn:
        return {model.__name__: conn.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()
                for model in (Provider, Device, Message)}


def test_backup_then_restore_brings_back_the_database_and_the_adapters(postgres, services_env, tmp_path):
    name = f"backup_{uuid.uuid4().hex[:8]}"
    postgres.create_database(name)
    url = postgres.url(name)
    command.upgrade(alembic_config(url), "head")
    data_dir = tmp_path / "data"
    env = {**services_env, "DATABASE_URL": url, "CONVASSIST_DATA_DIR": str(data_dir)}

    [ana] = accounts(url, 1, 1)
    with Session(engine_for(url)) as session:
        device = session.exec(sa.select(Device).where(Device.provider_id == ana["id"])).scalars().one()
        history = batch(messages=[message(f"b{i}", f"message {i}", sent=f"2026-11-01T10:{i:02d}:00Z")
                                  for i in range(40)])
        sync.ingest_messages(session, device, sync.MessageBatch.model_validate(history))
        session.commit()
    adapter = data_dir / "adapters" / str(ana["id"]) / f"{uuid.uuid4()}.gguf"
    adapter.parent.mkdir(parents=True)
    adapter.write_bytes(os.urandom(4096))
    before = counts(url)
    assert before == {"Provider": 1, "Device": 1, "Message": 40}

    joiner = "&" if "?" in url else "?"
    tls = convassist({**env, "DATABASE_URL": url + joiner + "sslmode=require"}, "backup", str(tmp_path / "tls"))
    assert tls.returncode == 1 and "SSL" in tls.stderr  # the URL's options reach pg_dump (this server has no TLS)
    url_with_options = url + joiner + "application_name=convassist-backup"
    saved = convassist({**env, "DATABASE_URL": url_with_options}, "backup", str(tmp_path / "backup"))
    assert saved.returncode == 0, saved.stderr
    assert "1 adapter file(s)" in saved.stdout
    # every provider's messages and password hashes: the owner's only
    assert (tmp_path / "backup").stat().st_mode & 0o777 == 0o700
    assert {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "backup").iterdir()} == {
        "database.dump": 0o600, "adapters.tar.gz": 0o600, "manifest.json": 0o600}
    assert convassist(env, "backup", str(tmp_path / "backup")).returncode == 1  # never over an old backup

    with engine_for(url).begin() as conn:  # the disaster
        conn.execute(sa.text("TRUNCATE provider CASCADE"))
    original = adapter.read_bytes()
    adapter.unlink()
    assert counts(url)["Message"] == 0

    restored = convassist(env, "restore", str(tmp_path / "backup"))
    assert restored.returncode == 0, restored.stderr
    engine_for(url).dispose()  # pg_restore replaced the tables under the pool's feet
    assert counts(url) == before
    assert adapter.read_bytes() == original
    missing = convassist(env, "restore", str(tmp_path / "nothing-here"))
    assert missing.returncode == 1 and "holds no finished ConvAssist backup" in missing.stderr

    # a backup whose adapters archive is damaged is refused before the database is touched
    with engine_for(url).begin() as conn:
        conn.execute(sa.text("DELETE FROM message WHERE imessage_guid = 'b0'"))
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for name in ("database.dump", "manifest.json"):
        (damaged / name).write_bytes((tmp_path / "backup" / name).read_bytes())
    (damaged / "adapters.tar.gz").write_bytes((tmp_path / "backup" / "adapters.tar.gz").read_bytes()[:200])
    refused = convassist(env, "restore", str(damaged))
    assert refused.returncode == 1 and "cannot be read" in refused.stderr and "Traceback" not in refused.stderr
    assert counts(url)["Message"] == 39  # untouched: the deleted row was not brought back
