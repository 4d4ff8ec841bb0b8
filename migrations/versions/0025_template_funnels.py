"""Template and broadcast funnels: the template messages indexed by their time, and the optional sections a scheduled report carries

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 17:00:00
"""
from alembic import op
import sqlalchemy as sa

import hub.platform.db


revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

TEMPLATED = "direction = 'out' AND template_name IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_templated_sent', ['sent_at'], unique=False,
                              postgresql_where=sa.text(TEMPLATED), sqlite_where=sa.text(TEMPLATED))
    with op.batch_alter_table('report_schedules', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sections', hub.platform.db.JSONType, nullable=False, server_default=sa.text("'[]'")))


def downgrade() -> None:
    with op.batch_alter_table('report_schedules', schema=None) as batch_op:
        batch_op.drop_column('sections')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_templated_sent', postgresql_where=sa.text(TEMPLATED),
                            sqlite_where=sa.text(TEMPLATED))
