"""SLA policies per team, the marks of announced warnings and breaches, open-chat indexes

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 19:45:00
"""
from alembic import op
import sqlalchemy as sa
import hub.platform.db

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('teams', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sla', hub.platform.db.JSONType, nullable=False, server_default='{}'))
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.create_index('ix_conversations_open_assignee', ['assignee_id'], unique=False,
                              sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))
        batch_op.create_index('ix_conversations_open_team', ['team_id'], unique=False,
                              sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))
    op.create_table('sla_marks',
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('target', sa.String(length=16), nullable=False),
    sa.Column('started_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('level', sa.String(length=8), nullable=False),
    sa.Column('at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("level IN ('warning', 'breached')", name=op.f('ck_sla_marks_level')),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'],
                            name=op.f('fk_sla_marks_conversation_id_conversations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('conversation_id', 'target', 'started_at', 'level', name=op.f('pk_sla_marks'))
    )


def downgrade() -> None:
    op.drop_table('sla_marks')
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index('ix_conversations_open_team')
        batch_op.drop_index('ix_conversations_open_assignee')
    with op.batch_alter_table('teams', schema=None) as batch_op:
        batch_op.drop_column('sla')
