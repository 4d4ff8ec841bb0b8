"""Report indexes for the month's summary: report times in rank order within a bucket, a period's edge counts, the bucket counts of one filter and the missed count read from indexes alone

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 13:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

WAITING = "first_inbound_at IS NOT NULL AND first_wait_seconds IS NULL"


def upgrade() -> None:
    with op.batch_alter_table('report_times', schema=None) as batch_op:
        batch_op.drop_index('ix_report_times_lookup')
        batch_op.drop_index('ix_report_times_opened')
        batch_op.create_index('ix_report_times_ranked', ['metric', 'bucket', 'seconds', 'opened_at'], unique=False)
        batch_op.create_index('ix_report_times_opened', ['opened_at', 'metric', 'bucket'], unique=False)
    with op.batch_alter_table('report_buckets', schema=None) as batch_op:
        batch_op.create_index('ix_report_buckets_dim', ['dim', 'value', 'start'], unique=False)
    with op.batch_alter_table('report_facts', schema=None) as batch_op:
        batch_op.drop_index('ix_report_facts_waiting', postgresql_where=sa.text(WAITING), sqlite_where=sa.text(WAITING))
        batch_op.create_index('ix_report_facts_waiting', ['opened_at', 'team_id', 'first_inbound_at'], unique=False,
                              postgresql_where=sa.text(WAITING), sqlite_where=sa.text(WAITING))


def downgrade() -> None:
    with op.batch_alter_table('report_facts', schema=None) as batch_op:
        batch_op.drop_index('ix_report_facts_waiting', postgresql_where=sa.text(WAITING), sqlite_where=sa.text(WAITING))
        batch_op.create_index('ix_report_facts_waiting', ['opened_at'], unique=False,
                              postgresql_where=sa.text(WAITING), sqlite_where=sa.text(WAITING))
    with op.batch_alter_table('report_buckets', schema=None) as batch_op:
        batch_op.drop_index('ix_report_buckets_dim')
    with op.batch_alter_table('report_times', schema=None) as batch_op:
        batch_op.drop_index('ix_report_times_opened')
        batch_op.drop_index('ix_report_times_ranked')
        batch_op.create_index('ix_report_times_opened', ['opened_at'], unique=False)
        batch_op.create_index('ix_report_times_lookup', ['metric', 'bucket', 'opened_at'], unique=False)
