"""whatsapp channel, templates, outbound messages and costs

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa
import hub.platform.db
import hub.platform.db

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('message_statuses',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('wa_message_id', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('timestamp', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('data', hub.platform.db.JSONType, nullable=False),
    sa.Column('received_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_statuses')),
    sa.UniqueConstraint('wa_message_id', 'status', name=op.f('uq_message_statuses_wa_message_id_status'))
    )
    op.create_table('templates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('waba_id', sa.String(length=64), nullable=False),
    sa.Column('wa_template_id', sa.String(length=64), nullable=True),
    sa.Column('name', sa.String(length=512), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=True),
    sa.Column('quality_score', sa.String(length=16), nullable=True),
    sa.Column('parameter_format', sa.String(length=16), nullable=False),
    sa.Column('components', hub.platform.db.JSONType, nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('last_event_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('synced_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_templates')),
    sa.UniqueConstraint('waba_id', 'name', 'language', name=op.f('uq_templates_waba_id_name_language'))
    )
    with op.batch_alter_table('templates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_templates_waba_id'), ['waba_id'], unique=False)

    with op.batch_alter_table('channels', schema=None) as batch_op:
        batch_op.add_column(sa.Column('api_base_url', sa.String(length=255), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('mps', sa.Integer(), nullable=False, server_default='80'))
        batch_op.add_column(sa.Column('quality_rating', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('messaging_limit', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('throughput_level', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('templates_synced_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ctwa_entry_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('fep_expires_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reply_to', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('author_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('recipient', sa.String(length=160), nullable=True))
        batch_op.add_column(sa.Column('request', hub.platform.db.JSONType, nullable=True))
        batch_op.add_column(sa.Column('template_name', sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column('template_language', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('template_category', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('next_attempt_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('lease_owner', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('lease_expires_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('accepted_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('delivered_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('read_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('failed_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('billable', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('pricing_model', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('pricing_type', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('pricing_category', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('cost', sa.Numeric(precision=14, scale=6), nullable=True))
        batch_op.add_column(sa.Column('currency', sa.String(length=3), nullable=True))
        batch_op.create_index('ix_messages_outbox', ['conversation_id', 'id'], unique=False, sqlite_where=sa.text("direction = 'out' AND status IN ('queued', 'sending')"), postgresql_where=sa.text("direction = 'out' AND status IN ('queued', 'sending')"))
        batch_op.create_foreign_key(batch_op.f('fk_messages_author_id_users'), 'users', ['author_id'], ['id'], ondelete='SET NULL')



def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_messages_author_id_users'), type_='foreignkey')
        batch_op.drop_index('ix_messages_outbox', sqlite_where=sa.text("direction = 'out' AND status IN ('queued', 'sending')"), postgresql_where=sa.text("direction = 'out' AND status IN ('queued', 'sending')"))
        batch_op.drop_column('currency')
        batch_op.drop_column('cost')
        batch_op.drop_column('pricing_category')
        batch_op.drop_column('pricing_type')
        batch_op.drop_column('pricing_model')
        batch_op.drop_column('billable')
        batch_op.drop_column('failed_at')
        batch_op.drop_column('read_at')
        batch_op.drop_column('delivered_at')
        batch_op.drop_column('accepted_at')
        batch_op.drop_column('lease_expires_at')
        batch_op.drop_column('lease_owner')
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('attempts')
        batch_op.drop_column('template_category')
        batch_op.drop_column('template_language')
        batch_op.drop_column('template_name')
        batch_op.drop_column('request')
        batch_op.drop_column('recipient')
        batch_op.drop_column('author_id')
        batch_op.drop_column('reply_to')

    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_column('fep_expires_at')
        batch_op.drop_column('ctwa_entry_at')

    with op.batch_alter_table('channels', schema=None) as batch_op:
        batch_op.drop_column('templates_synced_at')
        batch_op.drop_column('throughput_level')
        batch_op.drop_column('messaging_limit')
        batch_op.drop_column('quality_rating')
        batch_op.drop_column('mps')
        batch_op.drop_column('api_base_url')

    with op.batch_alter_table('templates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_templates_waba_id'))

    op.drop_table('templates')
    op.drop_table('message_statuses')
