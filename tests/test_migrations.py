"""The alembic migrations apply cleanly on PostgreSQL and SQLite and match the models exactly."""

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from convassist.models import in_models
from tests.conftest import alembic_config

TABLES = {"provider", "device", "contact", "conversation", "message", "reaction", "generatedresponse",
          "trainingsample", "trainingjob"}


def _upgrade_and_compare(url: str) -> None:
    command.upgrade(alembic_config(url), "head")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert TABLES <= set(sa.inspect(conn).get_table_names())
            diff = compare_metadata(MigrationContext.configure(conn, opts={"include_object": in_models}),
                                    SQLModel.metadata)
            assert diff == [], f"models and migrations differ: {diff}"
        command.downgrade(alembic_config(url), "base")
        with engine.connect() as conn:
            assert not TABLES & set(sa.inspect(conn).get_table_names())
        command.upgrade(alembic_config(url), "head")
    finally:
        engine.dispose()


def test_migrations_on_postgresql(postgres):
    postgres.create_database("migration_check")
    _upgrade_and_compare(postgres.url("migration_check"))


def test_migrations_on_sqlite(tmp_path):
    _upgrade_and_compare(f"sqlite:///{tmp_path / 'm.db'}")


def test_unique_keys_are_scoped_per_provider(postgres):
    postgres.create_database("migration_keys")
    url = postgres.url("migration_keys")
    command.upgrade(alembic_config(url), "head")
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        uniques = {tuple(u["column_names"]) for t in ("device", "conversation", "message")
                   for u in inspector.get_unique_constraints(t)}
        indexes = {tuple(i["column_names"]) for t in ("conversation", "message")
                   for i in inspector.get_indexes(t)}
    engine.dispose()
    assert ("provider_id", "hardware_id") in uniques
    assert ("provider_id", "imessage_chat_id") in uniques
    assert ("provider_id", "imessage_guid") in uniques
    assert ("provider_id", "last_message_at") in indexes
    assert ("conversation_id", "sent_at") in indexes


@pytest.mark.parametrize("table", sorted(TABLES - {"provider"}))
def test_every_row_has_an_owner(table):
    assert "provider_id" in SQLModel.metadata.tables[table].columns
