"""Each template message's funnel, kept by the reports' pass; report facts outlive their conversation until the pass takes them out of the rollups

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07 21:00:00
"""
from alembic import op
import sqlalchemy as sa

import hub.platform.db


revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('report_template_messages',
    sa.Column('message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('sent_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('template_name', sa.String(length=512), nullable=False),
    sa.Column('template_language', sa.String(length=16), nullable=True),
    sa.Column('template_category', sa.String(length=32), nullable=True),
    sa.Column('broadcast_id', sa.Integer(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('channel_id', sa.Integer(), nullable=True),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('sent', sa.Integer(), nullable=False),
    sa.Column('delivered', sa.Integer(), nullable=False),
    sa.Column('read', sa.Integer(), nullable=False),
    sa.Column('replied', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('cost', sa.Numeric(precision=14, scale=6), nullable=True),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_report_template_messages_message_id_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('message_id', name=op.f('pk_report_template_messages'))
    )
    with op.batch_alter_table('report_template_messages', schema=None) as batch_op:
        batch_op.create_index('ix_report_template_messages_sent', ['sent_at'], unique=False)
    with op.batch_alter_table('report_facts', schema=None) as batch_op:
        batch_op.drop_constraint('fk_report_facts_conversation_id_conversations', type_='foreignkey')
    # The next pass builds the facts, the rollups (stale where a channel was deleted) and
    # the template messages' rows again from nothing.
    op.execute("DELETE FROM report_fact_state")


def downgrade() -> None:
    op.execute("DELETE FROM report_facts WHERE conversation_id NOT IN (SELECT id FROM conversations)")
    with op.batch_alter_table('report_facts', schema=None) as batch_op:
        batch_op.create_foreign_key('fk_report_facts_conversation_id_conversations', 'conversations',
                                    ['conversation_id'], ['id'], ondelete='CASCADE')
    with op.batch_alter_table('report_template_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_report_template_messages_sent')
    op.drop_table('report_template_messages')
    op.execute("DELETE FROM report_fact_state")
