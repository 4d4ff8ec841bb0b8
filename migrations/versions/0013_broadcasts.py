"""broadcasts: consent, audiences, broadcasts and recipients

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 05:46:04
"""
from alembic import op
import sqlalchemy as sa
import hub.platform.db

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audiences',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('segment', hub.platform.db.JSONType, nullable=True),
    sa.Column('rows', hub.platform.db.JSONType, nullable=False),
    sa.Column('refused', hub.platform.db.JSONType, nullable=False),
    sa.Column('columns', hub.platform.db.JSONType, nullable=False),
    sa.Column('created_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('segment', 'csv')", name=op.f('ck_audiences_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audiences'))
    )
    op.create_table('broadcasts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('audience_id', sa.Integer(), nullable=True),
    sa.Column('template_name', sa.String(length=512), nullable=False),
    sa.Column('template_language', sa.String(length=16), nullable=False),
    sa.Column('subscription', sa.String(length=16), nullable=False),
    sa.Column('variables', hub.platform.db.JSONType, nullable=False),
    sa.Column('header', hub.platform.db.JSONType, nullable=True),
    sa.Column('buttons', hub.platform.db.JSONType, nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('start_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('allowed_days', hub.platform.db.JSONType, nullable=False),
    sa.Column('window_start', sa.String(length=5), nullable=False),
    sa.Column('window_end', sa.String(length=5), nullable=False),
    sa.Column('failure_threshold', sa.Double(), nullable=False),
    sa.Column('failure_window', sa.Integer(), nullable=False),
    sa.Column('paused_reason', sa.Text(), nullable=True),
    sa.Column('paused_by', sa.String(length=16), nullable=True),
    sa.Column('retry_of_id', sa.Integer(), nullable=True),
    sa.Column('started_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('draft', 'scheduled', 'sending', 'paused', 'completed', 'cancelled')", name=op.f('ck_broadcasts_status')),
    sa.ForeignKeyConstraint(['audience_id'], ['audiences.id'], name=op.f('fk_broadcasts_audience_id_audiences'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_broadcasts_channel_id_channels'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['retry_of_id'], ['broadcasts.id'], name=op.f('fk_broadcasts_retry_of_id_broadcasts'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_broadcasts'))
    )
    op.create_table('consents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('subscription', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('opted_in', 'opted_out')", name=op.f('ck_consents_status')),
    sa.CheckConstraint("subscription IN ('marketing', 'utility')", name=op.f('ck_consents_subscription')),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_consents_contact_id_contacts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consents')),
    sa.UniqueConstraint('contact_id', 'subscription', name=op.f('uq_consents_contact_id_subscription'))
    )
    op.create_table('broadcast_recipients',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('broadcast_id', sa.Integer(), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('variables', hub.platform.db.JSONType, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('error_code', sa.Integer(), nullable=True),
    sa.Column('queued_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['broadcast_id'], ['broadcasts.id'], name=op.f('fk_broadcast_recipients_broadcast_id_broadcasts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_broadcast_recipients_contact_id_contacts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_broadcast_recipients_message_id_messages'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_broadcast_recipients')),
    sa.UniqueConstraint('broadcast_id', 'phone', name=op.f('uq_broadcast_recipients_broadcast_id_phone')),
    sa.UniqueConstraint('message_id', name=op.f('uq_broadcast_recipients_message_id'))
    )
    with op.batch_alter_table('broadcast_recipients', schema=None) as batch_op:
        batch_op.create_index('ix_broadcast_recipients_status', ['broadcast_id', 'status', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('broadcast_recipients', schema=None) as batch_op:
        batch_op.drop_index('ix_broadcast_recipients_status')

    op.drop_table('broadcast_recipients')
    op.drop_table('consents')
    op.drop_table('broadcasts')
    op.drop_table('audiences')
