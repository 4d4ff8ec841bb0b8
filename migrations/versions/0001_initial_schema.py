"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa
import hub.platform.db


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('channels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('phone_number_id', sa.String(length=64), nullable=False),
    sa.Column('waba_id', sa.String(length=64), nullable=False),
    sa.Column('display_number', sa.String(length=32), nullable=False),
    sa.Column('secrets_enc', sa.Text(), nullable=False),
    sa.Column('health', sa.String(length=16), nullable=False),
    sa.Column('health_message', sa.Text(), nullable=False),
    sa.Column('last_webhook_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("provider IN ('cloud', '360dialog')", name=op.f('ck_channels_provider')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_channels')),
    sa.UniqueConstraint('key', name=op.f('uq_channels_key')),
    sa.UniqueConstraint('phone_number_id', name=op.f('uq_channels_phone_number_id'))
    )
    op.create_table('connectors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('settings', hub.platform.db.JSONType, nullable=False),
    sa.Column('secrets_enc', sa.Text(), nullable=False),
    sa.Column('event_types', hub.platform.db.JSONType, nullable=True),
    sa.Column('webhook_key', sa.String(length=64), nullable=False),
    sa.Column('health', sa.String(length=16), nullable=False),
    sa.Column('health_message', sa.Text(), nullable=False),
    sa.Column('health_checked_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_connectors')),
    sa.UniqueConstraint('name', name=op.f('uq_connectors_name')),
    sa.UniqueConstraint('webhook_key', name=op.f('uq_connectors_webhook_key'))
    )
    op.create_table('contacts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('wa_id', sa.String(length=32), nullable=True),
    sa.Column('user_id', sa.String(length=160), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('username', sa.String(length=128), nullable=True),
    sa.Column('opted_out_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contacts')),
    sa.UniqueConstraint('user_id', name=op.f('uq_contacts_user_id')),
    sa.UniqueConstraint('wa_id', name=op.f('uq_contacts_wa_id'))
    )
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contacts_phone'), ['phone'], unique=False)

    op.create_table('events',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('occurred_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ordering_key', sa.String(length=64), nullable=True),
    sa.Column('data', hub.platform.db.JSONType, nullable=False),
    sa.Column('created_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_type_occurred', ['type', 'occurred_at'], unique=False)

    op.create_table('leases',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.Column('acquired_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_leases'))
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("role IN ('admin', 'operator', 'viewer')", name=op.f('ck_users_role')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('created_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('conversations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('opened_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_inbound_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_message_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lead_source', hub.platform.db.JSONType, nullable=True),
    sa.Column('created_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('open', 'closed')", name=op.f('ck_conversations_status')),
    sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], name=op.f('fk_conversations_assignee_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_conversations_channel_id_channels'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_conversations_contact_id_contacts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversations'))
    )
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conversations_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index('uq_conversations_open_per_contact', ['channel_id', 'contact_id'], unique=True, sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))

    op.create_table('crm_links',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('connector_id', sa.Integer(), nullable=False),
    sa.Column('entity_type', sa.String(length=32), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=False),
    sa.Column('crm_type', sa.String(length=32), nullable=False),
    sa.Column('crm_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['connector_id'], ['connectors.id'], name=op.f('fk_crm_links_connector_id_connectors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_links')),
    sa.UniqueConstraint('connector_id', 'entity_type', 'entity_id', name=op.f('uq_crm_links_connector_id_entity_type_entity_id'))
    )
    with op.batch_alter_table('crm_links', schema=None) as batch_op:
        batch_op.create_index('ix_crm_links_crm', ['connector_id', 'crm_type', 'crm_id'], unique=False)

    op.create_table('deliveries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('connector_id', sa.Integer(), nullable=False),
    sa.Column('ordering_key', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lease_owner', sa.String(length=128), nullable=True),
    sa.Column('lease_expires_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_attempt_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_response', hub.platform.db.JSONType, nullable=True),
    sa.CheckConstraint("status IN ('pending', 'leased', 'done', 'dead')", name=op.f('ck_deliveries_status')),
    sa.ForeignKeyConstraint(['connector_id'], ['connectors.id'], name=op.f('fk_deliveries_connector_id_connectors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_deliveries_event_id_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deliveries'))
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_claim', ['connector_id', 'status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_deliveries_event', ['event_id'], unique=False)
        batch_op.create_index('ix_deliveries_order', ['connector_id', 'ordering_key', 'id'], unique=False)

    op.create_table('raw_webhooks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=True),
    sa.Column('received_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('headers', hub.platform.db.JSONType, nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('processed_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('processed', 'failed')", name=op.f('ck_raw_webhooks_status')),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_raw_webhooks_channel_id_channels'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_raw_webhooks'))
    )
    with op.batch_alter_table('raw_webhooks', schema=None) as batch_op:
        batch_op.create_index('ix_raw_webhooks_status_received', ['status', 'received_at'], unique=False)

    op.create_table('messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('wa_message_id', sa.String(length=255), nullable=True),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('payload', hub.platform.db.JSONType, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error_code', sa.Integer(), nullable=True),
    sa.Column('error_title', sa.Text(), nullable=True),
    sa.Column('sent_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("direction IN ('in', 'out')", name=op.f('ck_messages_direction')),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_messages_conversation_id_conversations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messages')),
    sa.UniqueConstraint('wa_message_id', name=op.f('uq_messages_wa_message_id'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_conversation_sent', ['conversation_id', 'sent_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_conversation_sent')

    op.drop_table('messages')
    with op.batch_alter_table('raw_webhooks', schema=None) as batch_op:
        batch_op.drop_index('ix_raw_webhooks_status_received')

    op.drop_table('raw_webhooks')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_order')
        batch_op.drop_index('ix_deliveries_event')
        batch_op.drop_index('ix_deliveries_claim')

    op.drop_table('deliveries')
    with op.batch_alter_table('crm_links', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_links_crm')

    op.drop_table('crm_links')
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index('uq_conversations_open_per_contact', sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))
        batch_op.drop_index(batch_op.f('ix_conversations_contact_id'))

    op.drop_table('conversations')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_user_id'))

    op.drop_table('api_tokens')
    op.drop_table('users')
    op.drop_table('leases')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_type_occurred')

    op.drop_table('events')
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contacts_phone'))

    op.drop_table('contacts')
    op.drop_table('connectors')
    op.drop_table('channels')
