"""A contact's name an operator gave is kept from the channels' profile names

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-08 00:35:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None


# A plain ADD / DROP COLUMN, not a batch: on SQLite a batch copies and drops the table,
# and dropping contacts would cascade to the rows that refer to it.
def upgrade() -> None:
    op.add_column('contacts', sa.Column('name_by_operator', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column('contacts', 'name_by_operator')
