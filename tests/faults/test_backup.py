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

    saved = convassist(env, "backup", str(tmp_path / "backup"))
    assert saved.returncode == 0, saved.stderr
    assert "1 adapter file(s)" in saved.stdout
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
    assert missing.returncode == 1 and "holds no ConvAssist backup" in missing.stderr
