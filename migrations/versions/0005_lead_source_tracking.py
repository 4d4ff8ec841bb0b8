"""lead-source tracking: tracked links, visits, attributions

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa
import hub.platform.db


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tracked_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('campaign', sa.String(length=200), nullable=False),
    sa.Column('text_template', sa.Text(), nullable=False),
    sa.Column('utm_source', sa.String(length=255), nullable=False),
    sa.Column('utm_medium', sa.String(length=255), nullable=False),
    sa.Column('utm_campaign', sa.String(length=255), nullable=False),
    sa.Column('utm_content', sa.String(length=255), nullable=False),
    sa.Column('utm_term', sa.String(length=255), nullable=False),
    sa.Column('static_code', sa.String(length=16), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_tracked_links_channel_id_channels'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tracked_links')),
    sa.UniqueConstraint('slug', name=op.f('uq_tracked_links_slug')),
    sa.UniqueConstraint('static_code', name=op.f('uq_tracked_links_static_code'))
    )
    with op.batch_alter_table('tracked_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tracked_links_channel_id'), ['channel_id'], unique=False)

    op.create_table('tracking_visits',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('live_code', sa.String(length=16), nullable=True),
    sa.Column('visited_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('utm_source', sa.String(length=255), nullable=True),
    sa.Column('utm_medium', sa.String(length=255), nullable=True),
    sa.Column('utm_campaign', sa.String(length=255), nullable=True),
    sa.Column('utm_content', sa.String(length=255), nullable=True),
    sa.Column('utm_term', sa.String(length=255), nullable=True),
    sa.Column('gclid', sa.String(length=255), nullable=True),
    sa.Column('yclid', sa.String(length=255), nullable=True),
    sa.Column('fbclid', sa.String(length=255), nullable=True),
    sa.Column('ga_client_id', sa.String(length=128), nullable=True),
    sa.Column('ym_uid', sa.String(length=64), nullable=True),
    sa.Column('referrer', sa.Text(), nullable=True),
    sa.Column('landing_page', sa.Text(), nullable=True),
    sa.Column('user_agent', sa.Text(), nullable=True),
    sa.Column('ip_hash', sa.String(length=64), nullable=True),
    sa.Column('matched_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['link_id'], ['tracked_links.id'], name=op.f('fk_tracking_visits_link_id_tracked_links'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tracking_visits')),
    sa.UniqueConstraint('live_code', name=op.f('uq_tracking_visits_live_code'))
    )
    with op.batch_alter_table('tracking_visits', schema=None) as batch_op:
        batch_op.create_index('ix_tracking_visits_link_visited', ['link_id', 'visited_at'], unique=False)

    op.create_table('lead_attributions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=True),
    sa.Column('visit_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('attributed_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_lead_attributions_conversation_id_conversations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['link_id'], ['tracked_links.id'], name=op.f('fk_lead_attributions_link_id_tracked_links'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['visit_id'], ['tracking_visits.id'], name=op.f('fk_lead_attributions_visit_id_tracking_visits'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lead_attributions')),
    sa.UniqueConstraint('conversation_id', name=op.f('uq_lead_attributions_conversation_id')),
    sa.UniqueConstraint('visit_id', name=op.f('uq_lead_attributions_visit_id'))
    )
    with op.batch_alter_table('lead_attributions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lead_attributions_attributed_at'), ['attributed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_lead_attributions_link_id'), ['link_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('lead_attributions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lead_attributions_link_id'))
        batch_op.drop_index(batch_op.f('ix_lead_attributions_attributed_at'))

    op.drop_table('lead_attributions')
    with op.batch_alter_table('tracking_visits', schema=None) as batch_op:
        batch_op.drop_index('ix_tracking_visits_link_visited')

    op.drop_table('tracking_visits')
    with op.batch_alter_table('tracked_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tracked_links_channel_id'))

    op.drop_table('tracked_links')
