"""A broadcast's pause cause kept with its parameters, so the admin words it in its own language

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-08 03:40:00
"""
from alembic import op
import sqlalchemy as sa

import hub.platform.db


revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None


# A plain ADD / DROP COLUMN, not a batch: on SQLite a batch copies and drops the table,
# and dropping broadcasts would cascade to its recipients.
def upgrade() -> None:
    op.add_column('broadcasts', sa.Column('paused_cause', hub.platform.db.JSONType, nullable=True))


def downgrade() -> None:
    op.drop_column('broadcasts', 'paused_cause')
