"""generated_response chosen_suggestion (which card the provider used or edited)

Revision ID: c3e8a1d5b7f2
Revises: b7d2f4a9c610
Create Date: 2026-12-03 15:30:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = 'c3e8a1d5b7f2'
down_revision: Union[str, None] = 'b7d2f4a9c610'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('generatedresponse', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chosen_suggestion', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('generatedresponse', schema=None) as batch_op:
        batch_op.drop_column('chosen_suggestion')
