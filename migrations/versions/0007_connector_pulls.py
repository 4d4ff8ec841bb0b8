"""connector pulls

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa
import hub.platform.db


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('connectors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pull_requested_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('pulled_until', hub.platform.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('connectors', schema=None) as batch_op:
        batch_op.drop_column('pulled_until')
        batch_op.drop_column('pull_requested_at')
