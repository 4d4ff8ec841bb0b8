"""Contact tags and custom fields in their own tables (what scenarios stored in automation_profiles moves there), and each contact's CRM stage per pipeline as last reported

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 16:50:00
"""
import json

from alembic import op
import sqlalchemy as sa
import hub.platform.db


revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def _text(value):
    if isinstance(value, str):
        return value[:500]
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)[:500]


def upgrade() -> None:
    op.create_table('contact_tags',
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('tag', sa.String(length=64), nullable=False),
    sa.Column('created_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_contact_tags_contact_id_contacts'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('contact_id', 'tag', name=op.f('pk_contact_tags'))
    )
    with op.batch_alter_table('contact_tags', schema=None) as batch_op:
        batch_op.create_index('ix_contact_tags_tag', ['tag', 'contact_id'], unique=False)
    op.create_table('contact_fields',
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=500), nullable=False),
    sa.Column('updated_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_contact_fields_contact_id_contacts'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('contact_id', 'name', name=op.f('pk_contact_fields'))
    )
    with op.batch_alter_table('contact_fields', schema=None) as batch_op:
        batch_op.create_index('ix_contact_fields_value', ['name', 'value'], unique=False)
    op.create_table('contact_crm_stages',
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('pipeline', sa.String(length=64), nullable=False),
    sa.Column('stage', sa.String(length=64), nullable=False),
    sa.Column('stage_name', sa.String(length=200), nullable=False),
    sa.Column('outcome', sa.String(length=8), nullable=False),
    sa.Column('deal_id', sa.String(length=64), nullable=False),
    sa.Column('connector_id', sa.Integer(), nullable=True),
    sa.Column('changed_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['connector_id'], ['connectors.id'],
                            name=op.f('fk_contact_crm_stages_connector_id_connectors'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_contact_crm_stages_contact_id_contacts'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('contact_id', 'pipeline', name=op.f('pk_contact_crm_stages'))
    )
    with op.batch_alter_table('contact_crm_stages', schema=None) as batch_op:
        batch_op.create_index('ix_contact_crm_stages_stage', ['stage', 'pipeline'], unique=False)
        batch_op.create_index('ix_contact_crm_stages_stage_name', ['stage_name', 'pipeline'], unique=False)

    bind = op.get_bind()
    profiles = sa.table('automation_profiles', sa.column('contact_id', sa.Integer()),
                        sa.column('tags', hub.platform.db.JSONType), sa.column('fields', hub.platform.db.JSONType),
                        sa.column('updated_at', hub.platform.db.UTCDateTime(timezone=True)))
    tags = sa.table('contact_tags', sa.column('contact_id'), sa.column('tag'), sa.column('created_at'))
    fields = sa.table('contact_fields', sa.column('contact_id'), sa.column('name'), sa.column('value'),
                      sa.column('updated_at'))
    for row in bind.execute(sa.select(profiles)).all():
        names = {str(t)[:64] for t in (row.tags or []) if str(t).strip()}
        if names:
            bind.execute(sa.insert(tags), [{"contact_id": row.contact_id, "tag": t, "created_at": row.updated_at}
                                           for t in sorted(names)])
        values = {str(k)[:64]: _text(v) for k, v in (row.fields or {}).items() if v is not None}
        if values:
            bind.execute(sa.insert(fields), [{"contact_id": row.contact_id, "name": k, "value": v,
                                              "updated_at": row.updated_at} for k, v in values.items()])
    op.drop_table('automation_profiles')


def downgrade() -> None:
    op.create_table('automation_profiles',
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('tags', hub.platform.db.JSONType, nullable=False),
    sa.Column('fields', hub.platform.db.JSONType, nullable=False),
    sa.Column('updated_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_automation_profiles_contact_id_contacts'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('contact_id', name=op.f('pk_automation_profiles'))
    )
    bind = op.get_bind()
    moment = hub.platform.db.UTCDateTime(timezone=True)
    tags = sa.table('contact_tags', sa.column('contact_id'), sa.column('tag'), sa.column('created_at', moment))
    fields = sa.table('contact_fields', sa.column('contact_id'), sa.column('name'), sa.column('value'),
                      sa.column('updated_at', moment))
    profiles: dict = {}
    for contact_id, tag, at in bind.execute(sa.select(tags.c.contact_id, tags.c.tag, tags.c.created_at)):
        profiles.setdefault(contact_id, {"tags": [], "fields": {}, "at": at})["tags"].append(tag)
    for contact_id, name, value, at in bind.execute(
            sa.select(fields.c.contact_id, fields.c.name, fields.c.value, fields.c.updated_at)):
        profiles.setdefault(contact_id, {"tags": [], "fields": {}, "at": at})["fields"][name] = value
    if profiles:
        table = sa.table('automation_profiles', sa.column('contact_id', sa.Integer()),
                         sa.column('tags', hub.platform.db.JSONType), sa.column('fields', hub.platform.db.JSONType),
                         sa.column('updated_at', hub.platform.db.UTCDateTime(timezone=True)))
        bind.execute(sa.insert(table), [{"contact_id": cid, "tags": p["tags"], "fields": p["fields"],
                                         "updated_at": p["at"]} for cid, p in profiles.items()])
    with op.batch_alter_table('contact_crm_stages', schema=None) as batch_op:
        batch_op.drop_index('ix_contact_crm_stages_stage_name')
        batch_op.drop_index('ix_contact_crm_stages_stage')
    op.drop_table('contact_crm_stages')
    with op.batch_alter_table('contact_fields', schema=None) as batch_op:
        batch_op.drop_index('ix_contact_fields_value')
    op.drop_table('contact_fields')
    with op.batch_alter_table('contact_tags', schema=None) as batch_op:
        batch_op.drop_index('ix_contact_tags_tag')
    op.drop_table('contact_tags')
