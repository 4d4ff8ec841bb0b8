"""Telegram channels: the channel kind, the bot_api provider, applied update ids, and
contacts a channel cannot reach

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 02:40:00
"""
from alembic import op
import sqlalchemy as sa
import hub.platform.db

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('channel_updates',
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('update_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('received_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_channel_updates_channel_id_channels'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('channel_id', 'update_id', name=op.f('pk_channel_updates'))
    )
    with op.batch_alter_table('channels', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), server_default='whatsapp', nullable=False))
        batch_op.drop_constraint(batch_op.f('ck_channels_provider'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_channels_provider'),
                                         "provider IN ('cloud', '360dialog', 'bot_api')")
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unreachable_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('unreachable_reason', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_column('unreachable_reason')
        batch_op.drop_column('unreachable_at')
    op.execute("DELETE FROM channels WHERE provider = 'bot_api'")
    with op.batch_alter_table('channels', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_channels_provider'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_channels_provider'), "provider IN ('cloud', '360dialog')")
        batch_op.drop_column('kind')
    op.drop_table('channel_updates')
