"""trainingjob: one queued or running job per provider (a unique partial index)

Two requests at once could both pass create_job's check and queue two jobs for one provider. Jobs left
unfinished twice over by that race are failed first, all but the newest.

Revision ID: e5a7c9d1f3b4
Revises: d4f9b2c6e8a1
Create Date: 2026-12-07 22:30:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = 'e5a7c9d1f3b4'
down_revision: Union[str, None] = 'd4f9b2c6e8a1'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

UNFINISHED = "status IN ('queued', 'training')"


def upgrade() -> None:
    op.execute(sa.text(f"""
        UPDATE trainingjob SET status = 'failed', error = 'Another job of yours was queued at the same time.'
        WHERE id IN (SELECT id FROM (
            SELECT id, row_number() OVER (PARTITION BY provider_id ORDER BY created_at DESC) AS place
            FROM trainingjob WHERE {UNFINISHED}) ranked WHERE place > 1)"""))
    op.create_index('ux_training_job_unfinished', 'trainingjob', ['provider_id'], unique=True,
                    postgresql_where=sa.text(UNFINISHED), sqlite_where=sa.text(UNFINISHED))


def downgrade() -> None:
    op.drop_index('ux_training_job_unfinished', table_name='trainingjob')
