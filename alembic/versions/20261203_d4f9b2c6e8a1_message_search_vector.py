"""message search_vector: a stored tsvector of the text with a GIN index (PostgreSQL only)

The provider's past exchanges most like an incoming message are found with PostgreSQL's full-text
search (convassist/services/examples.py). SQLite, the fallback where no PostgreSQL is installed, has
no tsvector: there the column does not exist and suggestions go without examples.

Revision ID: d4f9b2c6e8a1
Revises: c3e8a1d5b7f2
Create Date: 2026-12-03 21:30:00

"""
from typing import Sequence, Union

from alembic import op

# revision identifiers, used by Alembic.
revision: str = 'd4f9b2c6e8a1'
down_revision: Union[str, None] = 'c3e8a1d5b7f2'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE message ADD COLUMN search_vector tsvector "
               "GENERATED ALWAYS AS (to_tsvector('english', coalesce(text, ''))) STORED")
    op.execute("CREATE INDEX ix_message_search ON message USING gin (search_vector)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_message_search")
    op.execute("ALTER TABLE message DROP COLUMN search_vector")
