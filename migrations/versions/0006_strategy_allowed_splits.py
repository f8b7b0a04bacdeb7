"""Strategies get allowed_splits: the most freeze-split child orders one leg may be sent as.

A leg above the freeze quantity goes out as child orders of at most max lots per order; this
caps how many (1–20, default 5), since every child order counts against the account's
10 orders per second. Existing strategies get the default.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 23:40:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('strategies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('allowed_splits', sa.Integer(), server_default='5', nullable=False))
        batch_op.create_check_constraint(op.f('ck_strategies_allowed_splits_range'), 'allowed_splits BETWEEN 1 AND 20')


def downgrade():
    with op.batch_alter_table('strategies', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_strategies_allowed_splits_range'), type_='check')
        batch_op.drop_column('allowed_splits')
