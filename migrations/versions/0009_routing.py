"""routing

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 13:14:32.608443
"""
from alembic import op
import sqlalchemy as sa
import hub.platform.db

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('operator_states',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('presence', sa.String(length=16), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('seen_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_assigned_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('changed_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("presence IN ('online', 'away', 'offline')", name=op.f('ck_operator_states_presence')),
    sa.CheckConstraint('capacity >= 0', name=op.f('ck_operator_states_capacity')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_operator_states_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_operator_states'))
    )
    op.create_table('teams',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('strategy', sa.String(length=16), nullable=False),
    sa.Column('time_zone', sa.String(length=64), nullable=False),
    sa.Column('hours', hub.platform.db.JSONType, nullable=False),
    sa.Column('holidays', hub.platform.db.JSONType, nullable=False),
    sa.Column('channel_ids', hub.platform.db.JSONType, nullable=False),
    sa.Column('sticky_wait_seconds', sa.Integer(), nullable=False),
    sa.Column('off_hours_reply', sa.Text(), nullable=True),
    sa.Column('last_assigned_user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("strategy IN ('round_robin', 'least_busy', 'sticky', 'first_responder')", name=op.f('ck_teams_strategy')),
    sa.ForeignKeyConstraint(['last_assigned_user_id'], ['users.id'], name=op.f('fk_teams_last_assigned_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_teams')),
    sa.UniqueConstraint('name', name=op.f('uq_teams_name'))
    )
    op.create_table('routing_queue',
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('queued_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('wait_until', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('off_hours_replied_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('team_id IS NOT NULL OR user_id IS NOT NULL', name=op.f('ck_routing_queue_has_target')),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_routing_queue_conversation_id_conversations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_routing_queue_team_id_teams'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_routing_queue_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('conversation_id', name=op.f('pk_routing_queue'))
    )
    with op.batch_alter_table('routing_queue', schema=None) as batch_op:
        batch_op.create_index('ix_routing_queue_team_queued', ['team_id', 'queued_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_routing_queue_user_id'), ['user_id'], unique=False)

    op.create_table('routing_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('conditions', hub.platform.db.JSONType, nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('(team_id IS NULL) <> (user_id IS NULL)', name=op.f('ck_routing_rules_one_target')),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_routing_rules_team_id_teams'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_routing_rules_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_routing_rules'))
    )
    with op.batch_alter_table('routing_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_routing_rules_position'), ['position'], unique=False)

    op.create_table('team_members',
    sa.Column('team_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_team_members_team_id_teams'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_team_members_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('team_id', 'user_id', name=op.f('pk_team_members'))
    )
    with op.batch_alter_table('team_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_team_members_user_id'), ['user_id'], unique=False)
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('team_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_conversations_team_id_teams'), 'teams', ['team_id'], ['id'],
                                    ondelete='SET NULL')



def downgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_conversations_team_id_teams'), type_='foreignkey')
        batch_op.drop_column('team_id')
    with op.batch_alter_table('team_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_team_members_user_id'))

    op.drop_table('team_members')
    with op.batch_alter_table('routing_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_routing_rules_position'))

    op.drop_table('routing_rules')
    with op.batch_alter_table('routing_queue', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_routing_queue_user_id'))
        batch_op.drop_index('ix_routing_queue_team_queued')

    op.drop_table('routing_queue')
    op.drop_table('teams')
    op.drop_table('operator_states')
