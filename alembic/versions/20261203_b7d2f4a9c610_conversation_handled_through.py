"""conversation handled_through (a conversation marked handled by hand)

Revision ID: b7d2f4a9c610
Revises: a1c3e5f70b11
Create Date: 2026-12-03 14:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = 'b7d2f4a9c610'
down_revision: Union[str, None] = 'a1c3e5f70b11'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('handled_through', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.drop_column('handled_through')
