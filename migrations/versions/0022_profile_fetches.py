"""profile_fetches: a contact's name asked of its channel once, off the webhook path

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 13:20:00
"""
from alembic import op
import sqlalchemy as sa
import hub.platform.db


revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('profile_fetches',
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('due_at', hub.platform.db.UTCDateTime(), nullable=True),
    sa.Column('fetched_at', hub.platform.db.UTCDateTime(), nullable=True),
    sa.Column('error', sa.String(length=300), nullable=True),
    sa.Column('created_at', hub.platform.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_profile_fetches_channel_id_channels'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_profile_fetches_contact_id_contacts'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('contact_id', name=op.f('pk_profile_fetches'))
    )
    with op.batch_alter_table('profile_fetches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_profile_fetches_channel_id'), ['channel_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_profile_fetches_due_at'), ['due_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('profile_fetches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_profile_fetches_due_at'))
        batch_op.drop_index(batch_op.f('ix_profile_fetches_channel_id'))
    op.drop_table('profile_fetches')
