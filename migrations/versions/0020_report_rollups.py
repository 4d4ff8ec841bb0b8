"""Report rollups: the facts per hour and day, the times' buckets per day and every time, so a long period is added up from few rows

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 09:58:39.092479
"""
from alembic import op
import sqlalchemy as sa
import hub.platform.db


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('report_buckets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('start', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('metric', sa.String(length=10), nullable=False),
    sa.Column('bucket', sa.Integer(), nullable=False),
    sa.Column('dim', sa.String(length=8), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_buckets')),
    sa.UniqueConstraint('start', 'metric', 'bucket', 'dim', 'value', name='one_count_per_bucket')
    )
    op.create_table('report_rollup_money',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('grain', sa.String(length=4), nullable=False),
    sa.Column('start', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('campaign', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.Numeric(precision=20, scale=6), nullable=False),
    sa.Column('items', sa.Integer(), nullable=False),
    sa.CheckConstraint("kind IN ('cost', 'revenue')", name=op.f('ck_report_rollup_money_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_rollup_money')),
    sa.UniqueConstraint('grain', 'start', 'channel_id', 'team_id', 'assignee_id', 'source', 'campaign', 'kind', 'category', 'currency', name='one_amount_per_key')
    )
    op.create_table('report_rollups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('grain', sa.String(length=4), nullable=False),
    sa.Column('start', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('campaign', sa.String(length=200), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('conversations', sa.Integer(), nullable=False),
    sa.Column('closed', sa.Integer(), nullable=False),
    sa.Column('answered', sa.Integer(), nullable=False),
    sa.Column('human_replies', sa.Integer(), nullable=False),
    sa.Column('priced', sa.Integer(), nullable=False),
    sa.Column('cost', sa.Numeric(precision=20, scale=6), nullable=False),
    sa.Column('deals', sa.Integer(), nullable=False),
    sa.Column('won', sa.Integer(), nullable=False),
    sa.Column('sla_met', sa.Integer(), nullable=False),
    sa.Column('sla_decided', sa.Integer(), nullable=False),
    sa.CheckConstraint("grain IN ('hour', 'day')", name=op.f('ck_report_rollups_grain')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_rollups')),
    sa.UniqueConstraint('grain', 'start', 'channel_id', 'team_id', 'assignee_id', 'source', 'campaign', 'currency', name='one_rollup_per_key')
    )
    op.create_table('report_times',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('metric', sa.String(length=10), nullable=False),
    sa.Column('bucket', sa.Integer(), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('opened_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=True),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_report_times_conversation_id_conversations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_times'))
    )
    with op.batch_alter_table('report_times', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_times_conversation_id'), ['conversation_id'], unique=False)
        batch_op.create_index('ix_report_times_lookup', ['metric', 'bucket', 'opened_at'], unique=False)
        batch_op.create_index('ix_report_times_opened', ['opened_at'], unique=False)

    with op.batch_alter_table('report_facts', schema=None) as batch_op:
        batch_op.create_index('ix_report_facts_waiting', ['opened_at'], unique=False, postgresql_where=sa.text('first_inbound_at IS NOT NULL AND first_wait_seconds IS NULL'), sqlite_where=sa.text('first_inbound_at IS NOT NULL AND first_wait_seconds IS NULL'))
    # The rollups start empty: the facts' next pass (or the next summary) builds them
    # all, with the facts, as `hub reports rebuild` does.
    op.execute("DELETE FROM report_fact_state")


def downgrade() -> None:
    with op.batch_alter_table('report_facts', schema=None) as batch_op:
        batch_op.drop_index('ix_report_facts_waiting', postgresql_where=sa.text('first_inbound_at IS NOT NULL AND first_wait_seconds IS NULL'), sqlite_where=sa.text('first_inbound_at IS NOT NULL AND first_wait_seconds IS NULL'))

    with op.batch_alter_table('report_times', schema=None) as batch_op:
        batch_op.drop_index('ix_report_times_opened')
        batch_op.drop_index('ix_report_times_lookup')
        batch_op.drop_index(batch_op.f('ix_report_times_conversation_id'))

    op.drop_table('report_times')
    op.drop_table('report_rollups')
    op.drop_table('report_rollup_money')
    op.drop_table('report_buckets')
