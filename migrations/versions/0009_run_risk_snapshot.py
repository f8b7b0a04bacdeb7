"""Risk engine (issue 10): each run keeps the risk rules it was entered with, and the risk
monitor's state that must survive a change of leader (trailing stop peaks, breaches alerted).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 07:20:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('strategy_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('risk_settings', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('risk_state', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('strategy_runs', schema=None) as batch_op:
        batch_op.drop_column('risk_state')
        batch_op.drop_column('risk_settings')
