"""Risk engine (issue 10): the risk event log, per-account entry blocks of the daily limits,
each strategy's risk scope and breach actions, and each account's daily loss and profit limits.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 07:05:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# Written out here (not imported from the app): a migration describes the schema as it was then.
EVENT_TYPES = ('max_loss', 'max_profit', 'trailing_sl', 'leg_sl', 'leg_tp', 'account_loss_limit',
               'account_profit_limit', 'supertrend', 'square_off', 'kill_switch', 'manual_exit',
               'prices_unreliable')
EVENT_ACTIONS = ('close_all', 'close_partial', 'alert_only', 'held', 'none')
EVENT_OUTCOMES = ('pending', 'filled', 'partial', 'failed')
SCOPES = ('per_account', 'combined')
RULE_ACTIONS = ('close_all', 'close_partial', 'alert_only')
ACTION_COLUMNS = ('max_loss_action', 'max_profit_action', 'trailing_action', 'supertrend_action')


def _one_of(column, values, nullable=False):
    listed = ', '.join(f"'{v}'" for v in values)
    return f"{column} IS NULL OR {column} IN ({listed})" if nullable else f"{column} IN ({listed})"


def upgrade():
    op.create_table('risk_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('strategy_id', sa.Integer(), nullable=True),
    sa.Column('strategy_name', sa.String(length=100), server_default='', nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('run_account_id', sa.Integer(), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('event_type', sa.String(length=24), nullable=False),
    sa.Column('threshold', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('current_value', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('exit_request_id', sa.Integer(), nullable=True),
    sa.Column('intent_ids', sa.JSON(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('detail', sa.Text(), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(_one_of('event_type', EVENT_TYPES), name=op.f('ck_risk_events_event_type_known')),
    sa.CheckConstraint(_one_of('action', EVENT_ACTIONS), name=op.f('ck_risk_events_action_known')),
    sa.CheckConstraint(_one_of('outcome', EVENT_OUTCOMES, nullable=True), name=op.f('ck_risk_events_outcome_known')),
    sa.ForeignKeyConstraint(['account_id'], ['trading_accounts.id'], name=op.f('fk_risk_events_account_id_trading_accounts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['exit_request_id'], ['exit_requests.id'], name=op.f('fk_risk_events_exit_request_id_exit_requests'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['run_account_id'], ['run_accounts.id'], name=op.f('fk_risk_events_run_account_id_run_accounts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['run_id'], ['strategy_runs.id'], name=op.f('fk_risk_events_run_id_strategy_runs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['strategy_id'], ['strategies.id'], name=op.f('fk_risk_events_strategy_id_strategies'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_risk_events_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_events'))
    )
    with op.batch_alter_table('risk_events', schema=None) as batch_op:
        batch_op.create_index('ix_risk_events_user_created', ['user_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_risk_events_run_id'), ['run_id'], unique=False)

    op.create_table('account_risk_blocks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('trading_day', sa.Date(), nullable=False),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['trading_accounts.id'], name=op.f('fk_account_risk_blocks_account_id_trading_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_risk_blocks')),
    sa.UniqueConstraint('account_id', 'trading_day', name='uq_account_risk_blocks_account_day')
    )

    with op.batch_alter_table('strategies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('risk_scope', sa.String(length=16), server_default='per_account', nullable=False))
        for column in ACTION_COLUMNS:
            batch_op.add_column(sa.Column(column, sa.String(length=16), server_default='close_all', nullable=False))
        batch_op.create_check_constraint(op.f('ck_strategies_risk_scope_known'), _one_of('risk_scope', SCOPES))
        for column in ACTION_COLUMNS:
            batch_op.create_check_constraint(op.f(f'ck_strategies_{column}_known'), _one_of(column, RULE_ACTIONS))

    with op.batch_alter_table('trading_accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('daily_loss_limit', sa.Numeric(precision=14, scale=2), nullable=True))
        batch_op.add_column(sa.Column('daily_profit_limit', sa.Numeric(precision=14, scale=2), nullable=True))
        batch_op.create_check_constraint(op.f('ck_trading_accounts_daily_loss_limit_positive'),
                                         'daily_loss_limit IS NULL OR daily_loss_limit > 0')
        batch_op.create_check_constraint(op.f('ck_trading_accounts_daily_profit_limit_positive'),
                                         'daily_profit_limit IS NULL OR daily_profit_limit > 0')


def downgrade():
    with op.batch_alter_table('trading_accounts', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_trading_accounts_daily_profit_limit_positive'), type_='check')
        batch_op.drop_constraint(op.f('ck_trading_accounts_daily_loss_limit_positive'), type_='check')
        batch_op.drop_column('daily_profit_limit')
        batch_op.drop_column('daily_loss_limit')

    with op.batch_alter_table('strategies', schema=None) as batch_op:
        for column in reversed(ACTION_COLUMNS):
            batch_op.drop_constraint(op.f(f'ck_strategies_{column}_known'), type_='check')
        batch_op.drop_constraint(op.f('ck_strategies_risk_scope_known'), type_='check')
        for column in reversed(ACTION_COLUMNS):
            batch_op.drop_column(column)
        batch_op.drop_column('risk_scope')

    op.drop_table('account_risk_blocks')
    with op.batch_alter_table('risk_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_risk_events_run_id'))
        batch_op.drop_index('ix_risk_events_user_created')

    op.drop_table('risk_events')
