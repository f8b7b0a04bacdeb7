"""Execution engine (issue 9): strategy runs with their legs and accounts, order intents and
their event history, exit requests, kill switches, and the strategies' execution settings
(partial-failure policy, retries, re-send of a not-placed entry, LIMIT timeout and fallback).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 00:47:55

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('kill_switches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('report', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_kill_switches_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kill_switches'))
    )
    with op.batch_alter_table('kill_switches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kill_switches_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_kill_switches_user_id'), ['user_id'], unique=False)

    op.create_table('strategy_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('strategy_id', sa.Integer(), nullable=True),
    sa.Column('strategy_name', sa.String(length=100), nullable=False),
    sa.Column('idempotency_key', sa.String(length=64), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('product', sa.String(length=8), nullable=False),
    sa.Column('failure_policy', sa.String(length=8), nullable=False),
    sa.Column('retry_limit', sa.Integer(), nullable=False),
    sa.Column('resend_not_placed', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('limit_timeout_seconds', sa.Integer(), nullable=False),
    sa.Column('limit_fallback', sa.String(length=8), nullable=False),
    sa.Column('source', sa.String(length=100), nullable=True),
    sa.Column('trading_day', sa.Date(), nullable=False),
    sa.Column('clicked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('entered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('note', sa.Text(), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['strategy_id'], ['strategies.id'], name=op.f('fk_strategy_runs_strategy_id_strategies'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_strategy_runs_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_strategy_runs')),
    sa.UniqueConstraint('user_id', 'idempotency_key', name='uq_strategy_runs_user_idempotency')
    )
    with op.batch_alter_table('strategy_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_strategy_runs_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_strategy_runs_strategy_id'), ['strategy_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_strategy_runs_user_id'), ['user_id'], unique=False)

    op.create_table('run_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('account_name', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('strategy_lots', sa.Integer(), nullable=False),
    sa.Column('skip_reason', sa.Text(), nullable=True),
    sa.Column('flagged', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('flag_note', sa.Text(), server_default='', nullable=False),
    sa.Column('position_check', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['trading_accounts.id'], name=op.f('fk_run_accounts_account_id_trading_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['strategy_runs.id'], name=op.f('fk_run_accounts_run_id_strategy_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_run_accounts')),
    sa.UniqueConstraint('run_id', 'account_id', name='uq_run_accounts_run_account')
    )
    with op.batch_alter_table('run_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_run_accounts_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_run_accounts_run_id'), ['run_id'], unique=False)

    op.create_table('run_legs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.Column('underlying', sa.String(length=16), nullable=False),
    sa.Column('symbol', sa.String(length=64), nullable=False),
    sa.Column('exchange', sa.String(length=16), nullable=False),
    sa.Column('action', sa.String(length=4), nullable=False),
    sa.Column('lots', sa.Integer(), nullable=False),
    sa.Column('lot_size', sa.Integer(), nullable=False),
    sa.Column('freeze_qty', sa.Integer(), nullable=False),
    sa.Column('tick_size', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('order_type', sa.String(length=8), nullable=False),
    sa.Column('limit_buffer_pct', sa.Numeric(precision=8, scale=2), nullable=True),
    sa.Column('ltp', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('expiry', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['strategy_runs.id'], name=op.f('fk_run_legs_run_id_strategy_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_run_legs')),
    sa.UniqueConstraint('run_id', 'number', name='uq_run_legs_run_number')
    )
    with op.batch_alter_table('run_legs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_run_legs_run_id'), ['run_id'], unique=False)

    op.create_table('exit_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('run_account_id', sa.Integer(), nullable=True),
    sa.Column('leg_number', sa.Integer(), nullable=True),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('report', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['run_account_id'], ['run_accounts.id'], name=op.f('fk_exit_requests_run_account_id_run_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['strategy_runs.id'], name=op.f('fk_exit_requests_run_id_strategy_runs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_exit_requests_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exit_requests'))
    )
    with op.batch_alter_table('exit_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exit_requests_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_exit_requests_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_exit_requests_user_id'), ['user_id'], unique=False)

    op.create_table('order_intents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('intent_key', sa.String(length=200), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('run_account_id', sa.Integer(), nullable=True),
    sa.Column('exit_request_id', sa.Integer(), nullable=True),
    sa.Column('kill_switch_id', sa.Integer(), nullable=True),
    sa.Column('replaces_intent_id', sa.Integer(), nullable=True),
    sa.Column('leg_number', sa.Integer(), nullable=True),
    sa.Column('child', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('phase', sa.Integer(), nullable=False),
    sa.Column('symbol', sa.String(length=64), nullable=False),
    sa.Column('exchange', sa.String(length=16), nullable=False),
    sa.Column('product', sa.String(length=8), nullable=False),
    sa.Column('action', sa.String(length=4), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('price_type', sa.String(length=8), nullable=False),
    sa.Column('price', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('broker_order_id', sa.String(length=64), nullable=True),
    sa.Column('filled_quantity', sa.Integer(), nullable=False),
    sa.Column('average_price', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('rejection_reason', sa.Text(), nullable=True),
    sa.Column('flagged', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('note', sa.Text(), server_default='', nullable=False),
    sa.Column('claimed_by', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('filled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['trading_accounts.id'], name=op.f('fk_order_intents_account_id_trading_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['exit_request_id'], ['exit_requests.id'], name=op.f('fk_order_intents_exit_request_id_exit_requests'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['kill_switch_id'], ['kill_switches.id'], name=op.f('fk_order_intents_kill_switch_id_kill_switches'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['replaces_intent_id'], ['order_intents.id'], name=op.f('fk_order_intents_replaces_intent_id_order_intents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['run_account_id'], ['run_accounts.id'], name=op.f('fk_order_intents_run_account_id_run_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['strategy_runs.id'], name=op.f('fk_order_intents_run_id_strategy_runs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_order_intents_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_intents')),
    sa.UniqueConstraint('intent_key', name='uq_order_intents_intent_key')
    )
    with op.batch_alter_table('order_intents', schema=None) as batch_op:
        batch_op.create_index('ix_order_intents_account_broker_order', ['account_id', 'broker_order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_order_intents_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_order_intents_kill_switch_id'), ['kill_switch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_order_intents_run_account_id'), ['run_account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_order_intents_run_id'), ['run_id'], unique=False)
        batch_op.create_index('ix_order_intents_state', ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_order_intents_user_id'), ['user_id'], unique=False)

    op.create_table('order_intent_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('intent_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('event', sa.String(length=20), nullable=False),
    sa.Column('from_state', sa.String(length=20), nullable=False),
    sa.Column('to_state', sa.String(length=20), nullable=False),
    sa.Column('detail', sa.Text(), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['intent_id'], ['order_intents.id'], name=op.f('fk_order_intent_events_intent_id_order_intents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_intent_events'))
    )
    with op.batch_alter_table('order_intent_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_intent_events_intent_id'), ['intent_id'], unique=False)

    with op.batch_alter_table('strategies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failure_policy', sa.String(length=8), server_default='report', nullable=False))
        batch_op.add_column(sa.Column('retry_limit', sa.Integer(), server_default='2', nullable=False))
        batch_op.add_column(sa.Column('resend_not_placed', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('limit_timeout_seconds', sa.Integer(), server_default='30', nullable=False))
        batch_op.add_column(sa.Column('limit_fallback', sa.String(length=8), server_default='cancel', nullable=False))
        batch_op.add_column(sa.Column('auto_entry', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_check_constraint(op.f('ck_strategies_retry_limit_range'), 'retry_limit BETWEEN 0 AND 5')
        batch_op.create_check_constraint(op.f('ck_strategies_limit_timeout_range'),
                                         'limit_timeout_seconds BETWEEN 1 AND 600')



def downgrade():
    with op.batch_alter_table('strategies', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_strategies_limit_timeout_range'), type_='check')
        batch_op.drop_constraint(op.f('ck_strategies_retry_limit_range'), type_='check')
        batch_op.drop_column('auto_entry')
        batch_op.drop_column('limit_fallback')
        batch_op.drop_column('limit_timeout_seconds')
        batch_op.drop_column('resend_not_placed')
        batch_op.drop_column('retry_limit')
        batch_op.drop_column('failure_policy')

    with op.batch_alter_table('order_intent_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_intent_events_intent_id'))

    op.drop_table('order_intent_events')
    with op.batch_alter_table('order_intents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_intents_user_id'))
        batch_op.drop_index('ix_order_intents_state')
        batch_op.drop_index(batch_op.f('ix_order_intents_run_id'))
        batch_op.drop_index(batch_op.f('ix_order_intents_run_account_id'))
        batch_op.drop_index(batch_op.f('ix_order_intents_kill_switch_id'))
        batch_op.drop_index(batch_op.f('ix_order_intents_account_id'))
        batch_op.drop_index('ix_order_intents_account_broker_order')

    op.drop_table('order_intents')
    with op.batch_alter_table('exit_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exit_requests_user_id'))
        batch_op.drop_index(batch_op.f('ix_exit_requests_status'))
        batch_op.drop_index(batch_op.f('ix_exit_requests_run_id'))

    op.drop_table('exit_requests')
    with op.batch_alter_table('run_legs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_run_legs_run_id'))

    op.drop_table('run_legs')
    with op.batch_alter_table('run_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_run_accounts_run_id'))
        batch_op.drop_index(batch_op.f('ix_run_accounts_account_id'))

    op.drop_table('run_accounts')
    with op.batch_alter_table('strategy_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_strategy_runs_user_id'))
        batch_op.drop_index(batch_op.f('ix_strategy_runs_strategy_id'))
        batch_op.drop_index(batch_op.f('ix_strategy_runs_status'))

    op.drop_table('strategy_runs')
    with op.batch_alter_table('kill_switches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kill_switches_user_id'))
        batch_op.drop_index(batch_op.f('ix_kill_switches_status'))

    op.drop_table('kill_switches')
