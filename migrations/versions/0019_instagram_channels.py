"""Instagram channels: the instagram provider

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 09:50:00
"""
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('channels', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_channels_provider'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_channels_provider'),
                                         "provider IN ('cloud', '360dialog', 'bot_api', 'instagram')")


def downgrade() -> None:
    op.execute("DELETE FROM channels WHERE provider = 'instagram'")
    with op.batch_alter_table('channels', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_channels_provider'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_channels_provider'),
                                         "provider IN ('cloud', '360dialog', 'bot_api')")
