"""Report facts: each conversation's figures kept for the summary, and how far they follow the events

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 06:30:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
import hub.platform.db

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('report_facts',
    sa.Column('conversation_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('opened_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=True),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('campaign', sa.String(length=200), nullable=False),
    sa.Column('closed', sa.Boolean(), nullable=False),
    sa.Column('first_response_seconds', sa.Integer(), nullable=True),
    sa.Column('first_wait_seconds', sa.Float(), nullable=True),
    sa.Column('first_inbound_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolution_seconds', sa.Integer(), nullable=True),
    sa.Column('responses', sa.JSON().with_variant(postgresql.ARRAY(sa.Float()), 'postgresql'), nullable=False),
    sa.Column('human_replies', sa.Integer(), nullable=False),
    sa.Column('cost', sa.Numeric(precision=14, scale=6), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('cost_by_category', hub.platform.db.JSONType, nullable=False),
    sa.Column('sla', sa.Boolean(), nullable=True),
    sa.Column('recheck', sa.Boolean(), nullable=False),
    sa.Column('deals', sa.Integer(), nullable=False),
    sa.Column('won', sa.Integer(), nullable=False),
    sa.Column('revenue', hub.platform.db.JSONType, nullable=False),
    sa.Column('computed_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_report_facts_conversation_id_conversations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('conversation_id', name=op.f('pk_report_facts'))
    )
    with op.batch_alter_table('report_facts', schema=None) as batch_op:
        batch_op.create_index('ix_report_facts_opened', ['opened_at'], unique=False)
    op.create_table('report_fact_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('followed_until', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_fact_state'))
    )


def downgrade() -> None:
    op.drop_table('report_fact_state')
    with op.batch_alter_table('report_facts', schema=None) as batch_op:
        batch_op.drop_index('ix_report_facts_opened')
    op.drop_table('report_facts')
