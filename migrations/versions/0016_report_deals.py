"""Report deals: the latest state of each CRM deal of a conversation, for reports

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 06:05:00
"""
from alembic import op
import sqlalchemy as sa
import hub.platform.db

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('report_deals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('connector_id', sa.Integer(), nullable=True),
    sa.Column('deal_id', sa.String(length=64), nullable=False),
    sa.Column('stage', sa.String(length=200), nullable=False),
    sa.Column('outcome', sa.String(length=8), nullable=False),
    sa.Column('amount', sa.Numeric(precision=16, scale=2), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('changed_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("outcome IN ('won', 'lost', 'open')", name=op.f('ck_report_deals_outcome')),
    sa.ForeignKeyConstraint(['connector_id'], ['connectors.id'], name=op.f('fk_report_deals_connector_id_connectors'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_report_deals_conversation_id_conversations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_deals')),
    sa.UniqueConstraint('conversation_id', 'deal_id', name='one_row_per_deal')
    )
    with op.batch_alter_table('report_deals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_deals_conversation_id'), ['conversation_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('report_deals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_deals_conversation_id'))
    op.drop_table('report_deals')
