"""Alembic environment for the plain `alembic` CLI (Reflex's `reflex db` drives migrations itself)."""

from alembic import context
from sqlmodel import SQLModel

from convassist.models import in_models  # (importing it registers the tables on SQLModel.metadata)
from convassist.db import engine_for
from convassist.settings import get_settings

target_metadata = SQLModel.metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, include_object=in_models)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.config.get_main_option("sqlalchemy.url") or get_settings().resolved_database_url
    with engine_for(url).connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, include_object=in_models)
        with context.begin_transaction():
            context.run_migrations()


run()
