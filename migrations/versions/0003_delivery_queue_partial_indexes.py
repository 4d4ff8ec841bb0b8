"""delivery queue partial indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa
import hub.platform.db


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deliveries_claim'))
        batch_op.drop_index(batch_op.f('ix_deliveries_order'))
        batch_op.create_index('ix_deliveries_log', ['connector_id', 'status', 'id'], unique=False)
        batch_op.create_index('ix_deliveries_queue', ['connector_id', 'id'], unique=False, sqlite_where=sa.text("status IN ('pending', 'leased')"), postgresql_where=sa.text("status IN ('pending', 'leased')"))
        batch_op.create_index('ix_deliveries_unfinished_key', ['connector_id', 'ordering_key', 'id'], unique=False, sqlite_where=sa.text("status IN ('pending', 'leased')"), postgresql_where=sa.text("status IN ('pending', 'leased')"))



def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_unfinished_key', sqlite_where=sa.text("status IN ('pending', 'leased')"), postgresql_where=sa.text("status IN ('pending', 'leased')"))
        batch_op.drop_index('ix_deliveries_queue', sqlite_where=sa.text("status IN ('pending', 'leased')"), postgresql_where=sa.text("status IN ('pending', 'leased')"))
        batch_op.drop_index('ix_deliveries_log')
        batch_op.create_index(batch_op.f('ix_deliveries_order'), ['connector_id', 'ordering_key', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_deliveries_claim'), ['connector_id', 'status', 'next_attempt_at'], unique=False)

