"""Strategies, their legs and accounts, and strategy templates (issue 8), with the built-in templates.

strategies: settings, times (IST wall-clock) and the risk settings the risk engine will use.
strategy_legs: ordered by `position` (unique per strategy). strategy_accounts: the user's
accounts a strategy runs on, each with a lot multiplier and an optional capital cap.
strategy_templates: a strategy's spec as JSON; rows with no user are the built-in templates,
seeded here from app/domain/builtin_templates.py (plain data).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 22:30:00

"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from app.domain.builtin_templates import BUILTIN_TEMPLATES

# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('strategies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('market_condition', sa.String(length=16), nullable=False),
    sa.Column('risk_profile', sa.String(length=16), nullable=False),
    sa.Column('product', sa.String(length=8), nullable=False),
    sa.Column('entry_time', sa.Time(), nullable=False),
    sa.Column('exit_time', sa.Time(), nullable=False),
    sa.Column('square_off_time', sa.Time(), nullable=False),
    sa.Column('max_loss', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('max_profit', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('trailing_type', sa.String(length=16), nullable=True),
    sa.Column('trailing_value', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('supertrend_enabled', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('supertrend_period', sa.Integer(), server_default='7', nullable=False),
    sa.Column('supertrend_multiplier', sa.Numeric(precision=8, scale=2), server_default='3', nullable=False),
    sa.Column('supertrend_timeframe', sa.String(length=8), server_default='5m', nullable=False),
    sa.Column('supertrend_exit', sa.String(length=16), server_default='breakout', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_strategies_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_strategies'))
    )
    with op.batch_alter_table('strategies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_strategies_user_id'), ['user_id'], unique=False)

    op.create_table('strategy_legs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('strategy_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('underlying', sa.String(length=16), nullable=False),
    sa.Column('instrument', sa.String(length=8), nullable=False),
    sa.Column('expiry_choice', sa.String(length=16), nullable=False),
    sa.Column('strike_method', sa.String(length=16), nullable=True),
    sa.Column('strike_offset', sa.Integer(), nullable=True),
    sa.Column('strike_price', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('target_premium', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('option_type', sa.String(length=2), nullable=True),
    sa.Column('action', sa.String(length=4), nullable=False),
    sa.Column('lots', sa.Integer(), nullable=False),
    sa.Column('order_type', sa.String(length=8), nullable=False),
    sa.Column('limit_buffer_pct', sa.Numeric(precision=8, scale=2), nullable=True),
    sa.Column('stop_loss_unit', sa.String(length=16), nullable=True),
    sa.Column('stop_loss_value', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('target_unit', sa.String(length=16), nullable=True),
    sa.Column('target_value', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.ForeignKeyConstraint(['strategy_id'], ['strategies.id'], name=op.f('fk_strategy_legs_strategy_id_strategies'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_strategy_legs')),
    sa.UniqueConstraint('strategy_id', 'position', name='uq_strategy_legs_strategy_position')
    )
    with op.batch_alter_table('strategy_legs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_strategy_legs_strategy_id'), ['strategy_id'], unique=False)

    op.create_table('strategy_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('strategy_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('lot_multiplier', sa.Numeric(precision=8, scale=2), server_default='1', nullable=False),
    sa.Column('capital_cap', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['trading_accounts.id'],
                            name=op.f('fk_strategy_accounts_account_id_trading_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['strategy_id'], ['strategies.id'],
                            name=op.f('fk_strategy_accounts_strategy_id_strategies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_strategy_accounts')),
    sa.UniqueConstraint('strategy_id', 'account_id', name='uq_strategy_accounts_strategy_account')
    )
    with op.batch_alter_table('strategy_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_strategy_accounts_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_strategy_accounts_strategy_id'), ['strategy_id'], unique=False)

    templates = op.create_table('strategy_templates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_strategy_templates_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_strategy_templates')),
    sa.UniqueConstraint('user_id', 'name', name='uq_strategy_templates_user_name')
    )
    with op.batch_alter_table('strategy_templates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_strategy_templates_user_id'), ['user_id'], unique=False)

    now = datetime.now(UTC)
    op.bulk_insert(templates, [{"user_id": None, "name": name, "description": description, "spec": spec,
                                "created_at": now} for name, description, spec in BUILTIN_TEMPLATES])


def downgrade():
    op.drop_table('strategy_templates')
    op.drop_table('strategy_accounts')
    op.drop_table('strategy_legs')
    op.drop_table('strategies')
