"""automations: scenarios and their versions, runs, step logs, contact profiles, the event cursor

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 05:50:00.853815
"""
from alembic import op
import sqlalchemy as sa
import hub.platform.db

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('automation_cursors',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('last_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_id', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_automation_cursors'))
    )
    op.create_table('automation_scenarios',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('draft', hub.platform.db.JSONType, nullable=False),
    sa.Column('published_version_id', sa.Integer(), nullable=True),
    sa.Column('trigger_type', sa.String(length=32), nullable=True),
    sa.Column('created_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_automation_scenarios'))
    )
    with op.batch_alter_table('automation_scenarios', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_automation_scenarios_trigger_type'), ['trigger_type'], unique=False)

    op.create_table('automation_profiles',
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('tags', hub.platform.db.JSONType, nullable=False),
    sa.Column('fields', hub.platform.db.JSONType, nullable=False),
    sa.Column('updated_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_automation_profiles_contact_id_contacts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('contact_id', name=op.f('pk_automation_profiles'))
    )
    op.create_table('automation_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scenario_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('definition', hub.platform.db.JSONType, nullable=False),
    sa.Column('published_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['scenario_id'], ['automation_scenarios.id'], name=op.f('fk_automation_versions_scenario_id_automation_scenarios'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_automation_versions')),
    sa.UniqueConstraint('scenario_id', 'number', name=op.f('uq_automation_versions_scenario_id_number'))
    )
    op.create_table('automation_runs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('scenario_id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('step_id', sa.String(length=64), nullable=True),
    sa.Column('state', hub.platform.db.JSONType, nullable=False),
    sa.Column('trigger', hub.platform.db.JSONType, nullable=False),
    sa.Column('wake_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('started_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('active', 'waiting', 'paused', 'completed', 'handed_off', 'closed', 'stopped', 'failed')", name=op.f('ck_automation_runs_status')),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_automation_runs_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_automation_runs_conversation_id_conversations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['scenario_id'], ['automation_scenarios.id'], name=op.f('fk_automation_runs_scenario_id_automation_scenarios'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['version_id'], ['automation_versions.id'], name=op.f('fk_automation_runs_version_id_automation_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_automation_runs'))
    )
    with op.batch_alter_table('automation_runs', schema=None) as batch_op:
        batch_op.create_index('ix_automation_runs_scenario', ['scenario_id', 'status'], unique=False)
        batch_op.create_index('ix_automation_runs_wake', ['wake_at'], unique=False, sqlite_where=sa.text("status = 'waiting'"), postgresql_where=sa.text("status = 'waiting'"))
        batch_op.create_index('uq_automation_runs_live', ['conversation_id'], unique=True, sqlite_where=sa.text("status IN ('active', 'waiting', 'paused')"), postgresql_where=sa.text("status IN ('active', 'waiting', 'paused')"))

    op.create_table('automation_step_logs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('step_id', sa.String(length=64), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('detail', hub.platform.db.JSONType, nullable=False),
    sa.Column('at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_automation_step_logs_conversation_id_conversations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['automation_runs.id'], name=op.f('fk_automation_step_logs_run_id_automation_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_automation_step_logs'))
    )
    with op.batch_alter_table('automation_step_logs', schema=None) as batch_op:
        batch_op.create_index('ix_automation_step_logs_conversation', ['conversation_id', 'at'], unique=False)
        batch_op.create_index('ix_automation_step_logs_run', ['run_id', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('automation_step_logs', schema=None) as batch_op:
        batch_op.drop_index('ix_automation_step_logs_run')
        batch_op.drop_index('ix_automation_step_logs_conversation')

    op.drop_table('automation_step_logs')
    with op.batch_alter_table('automation_runs', schema=None) as batch_op:
        batch_op.drop_index('uq_automation_runs_live', sqlite_where=sa.text("status IN ('active', 'waiting', 'paused')"), postgresql_where=sa.text("status IN ('active', 'waiting', 'paused')"))
        batch_op.drop_index('ix_automation_runs_wake', sqlite_where=sa.text("status = 'waiting'"), postgresql_where=sa.text("status = 'waiting'"))
        batch_op.drop_index('ix_automation_runs_scenario')

    op.drop_table('automation_runs')
    op.drop_table('automation_versions')
    op.drop_table('automation_profiles')
    with op.batch_alter_table('automation_scenarios', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_automation_scenarios_trigger_type'))

    op.drop_table('automation_scenarios')
    op.drop_table('automation_cursors')
