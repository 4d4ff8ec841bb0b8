"""Report schedules and the runs they sent

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 19:51:36.935978
"""
from alembic import op
import sqlalchemy as sa
import hub.platform.db

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('report_schedules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('frequency', sa.String(length=8), nullable=False),
    sa.Column('at_time', sa.String(length=5), nullable=False),
    sa.Column('weekday', sa.Integer(), nullable=False),
    sa.Column('day_of_month', sa.Integer(), nullable=False),
    sa.Column('time_zone', sa.String(length=64), nullable=False),
    sa.Column('filters', hub.platform.db.JSONType, nullable=False),
    sa.Column('recipients', hub.platform.db.JSONType, nullable=False),
    sa.Column('webhook', sa.Boolean(), nullable=False),
    sa.Column('created_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("frequency IN ('daily', 'weekly', 'monthly')", name=op.f('ck_report_schedules_frequency')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_schedules')),
    sa.UniqueConstraint('name', name=op.f('uq_report_schedules_name'))
    )
    op.create_table('report_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('schedule_id', sa.Integer(), nullable=False),
    sa.Column('period_start', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('period_end', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('manual', sa.Boolean(), nullable=False),
    sa.Column('figures', hub.platform.db.JSONType, nullable=True),
    sa.Column('sent_at', hub.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', hub.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('sending', 'sent', 'failed')", name=op.f('ck_report_runs_status')),
    sa.ForeignKeyConstraint(['schedule_id'], ['report_schedules.id'], name=op.f('fk_report_runs_schedule_id_report_schedules'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_runs')),
    sa.UniqueConstraint('schedule_id', 'period_end', name='one_run_per_period')
    )
    with op.batch_alter_table('report_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_runs_schedule_id'), ['schedule_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('report_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_runs_schedule_id'))

    op.drop_table('report_runs')
    op.drop_table('report_schedules')
