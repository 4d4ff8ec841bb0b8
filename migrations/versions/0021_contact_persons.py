"""One person across channels: contacts.person_id and the undoable contact_merges record

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 10:25:00
"""
from alembic import op
import sqlalchemy as sa
import hub.platform.db


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('person_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_contacts_person_id'), ['person_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_contacts_person_id_contacts'), 'contacts', ['person_id'], ['id'],
                                    ondelete='SET NULL')
    op.create_table('contact_merges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('moved', hub.platform.db.JSONType, nullable=False),
    sa.Column('merged_at', hub.platform.db.UTCDateTime(), nullable=False),
    sa.Column('undone_at', hub.platform.db.UTCDateTime(), nullable=True),
    sa.Column('undone_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("reason IN ('shared_phone', 'operator')", name=op.f('ck_contact_merges_reason')),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_contact_merges_author_id_users'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_contact_merges_contact_id_contacts'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['contacts.id'], name=op.f('fk_contact_merges_person_id_contacts'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['undone_by_id'], ['users.id'], name=op.f('fk_contact_merges_undone_by_id_users'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_merges'))
    )
    with op.batch_alter_table('contact_merges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contact_merges_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_contact_merges_person_id'), ['person_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('contact_merges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contact_merges_person_id'))
        batch_op.drop_index(batch_op.f('ix_contact_merges_contact_id'))
    op.drop_table('contact_merges')
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_contacts_person_id_contacts'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_contacts_person_id'))
        batch_op.drop_column('person_id')
