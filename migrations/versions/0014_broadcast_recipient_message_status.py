"""broadcast_recipients.message_status: the message status a recipient was last
brought up to date with

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 06:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('broadcast_recipients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('message_status', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('broadcast_recipients', schema=None) as batch_op:
        batch_op.drop_column('message_status')
