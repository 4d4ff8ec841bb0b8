"""tracking_visits.roistat_visit: Roistat's visit number from its roistat_visit cookie,
carried into the lead source so Roistat orders name the visit

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 06:20:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tracking_visits', schema=None) as batch_op:
        batch_op.add_column(sa.Column('roistat_visit', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tracking_visits', schema=None) as batch_op:
        batch_op.drop_column('roistat_visit')
