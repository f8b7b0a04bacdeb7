"""Trading accounts, the trading calendar (seeded with NSE/BSE defaults), the service lease.

Seed data (DOMAIN.md, editable by admins): Monday–Friday 09:15–15:30 IST for NSE, BSE, NFO
and BFO, monitors start 15 minutes before the open, and the 2025–2026 exchange holidays.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 23:28:52.088175

"""
from datetime import UTC, date, datetime, time

import sqlalchemy as sa
from alembic import op

EXCHANGES = ("NSE", "BSE", "NFO", "BFO")
HOLIDAYS = {
    2025: [("02-26", "Mahashivratri"), ("03-14", "Holi"), ("03-31", "Id-Ul-Fitr (Ramadan Eid)"),
           ("04-10", "Shri Mahavir Jayanti"), ("04-14", "Dr. Baba Saheb Ambedkar Jayanti"),
           ("04-18", "Good Friday"), ("05-01", "Maharashtra Day"), ("08-15", "Independence Day"),
           ("08-27", "Ganesh Chaturthi"), ("10-02", "Mahatma Gandhi Jayanti / Dussehra"),
           ("10-21", "Diwali Laxmi Pujan"), ("10-22", "Diwali Balipratipada"), ("11-05", "Guru Nanak Jayanti"),
           ("12-25", "Christmas")],
    2026: [("01-26", "Republic Day"), ("03-03", "Holi"), ("03-26", "Shri Ram Navami"),
           ("03-31", "Shri Mahavir Jayanti"), ("04-03", "Good Friday"),
           ("04-14", "Dr. Baba Saheb Ambedkar Jayanti"), ("05-01", "Maharashtra Day"), ("05-28", "Bakri Id"),
           ("06-26", "Muharram"), ("09-14", "Ganesh Chaturthi"), ("10-02", "Mahatma Gandhi Jayanti"),
           ("10-20", "Dussehra"), ("11-10", "Diwali Balipratipada"), ("11-24", "Guru Nanak Jayanti"),
           ("12-25", "Christmas")],
}


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('market_holidays',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('holiday_date', sa.Date(), nullable=False),
    sa.Column('exchange', sa.String(length=16), nullable=False),
    sa.Column('description', sa.String(length=128), nullable=False),
    sa.Column('holiday_type', sa.String(length=32), server_default='trading', nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_market_holidays')),
    sa.UniqueConstraint('holiday_date', 'exchange', name='uq_market_holidays_date_exchange')
    )
    with op.batch_alter_table('market_holidays', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_market_holidays_holiday_date'), ['holiday_date'], unique=False)

    op.create_table('service_heartbeats',
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('last_beat_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('details', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('service', name=op.f('pk_service_heartbeats'))
    )
    op.create_table('service_leases',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.Column('acquired_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('renewed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('generation', sa.Integer(), server_default='1', nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_service_leases'))
    )
    op.create_table('special_trading_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_date', sa.Date(), nullable=False),
    sa.Column('exchange', sa.String(length=16), nullable=False),
    sa.Column('start_time', sa.Time(), nullable=False),
    sa.Column('end_time', sa.Time(), nullable=False),
    sa.Column('description', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_special_trading_sessions')),
    sa.UniqueConstraint('session_date', 'exchange', name='uq_special_trading_sessions_date_exchange')
    )
    with op.batch_alter_table('special_trading_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_special_trading_sessions_session_date'), ['session_date'], unique=False)

    op.create_table('trading_hours_templates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('exchanges', sa.String(length=128), nullable=False),
    sa.Column('pre_open_buffer_minutes', sa.Integer(), server_default='15', nullable=False),
    sa.Column('is_active', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trading_hours_templates')),
    sa.UniqueConstraint('name', name=op.f('uq_trading_hours_templates_name'))
    )
    op.create_table('trading_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('account_name', sa.String(length=64), nullable=False),
    sa.Column('broker_name', sa.String(length=64), nullable=True),
    sa.Column('host_url', sa.String(length=255), nullable=False),
    sa.Column('websocket_url', sa.String(length=255), nullable=True),
    sa.Column('api_key_encrypted', sa.Text(), nullable=False),
    sa.Column('api_key_last4', sa.String(length=4), nullable=False),
    sa.Column('is_primary', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('is_active', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('is_paper', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('failover_order', sa.Integer(), server_default='100', nullable=False),
    sa.Column('connection_status', sa.String(length=16), server_default='unknown', nullable=False),
    sa.Column('consecutive_failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_connected_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('last_funds', sa.JSON(), nullable=True),
    sa.Column('last_positions', sa.JSON(), nullable=True),
    sa.Column('last_holdings', sa.JSON(), nullable=True),
    sa.Column('last_data_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_trading_accounts_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trading_accounts')),
    sa.UniqueConstraint('user_id', 'account_name', name='uq_trading_accounts_user_name')
    )
    with op.batch_alter_table('trading_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_trading_accounts_deleted_at'), ['deleted_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_trading_accounts_user_id'), ['user_id'], unique=False)

    op.create_table('trading_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('template_id', sa.Integer(), nullable=False),
    sa.Column('day_of_week', sa.Integer(), nullable=False),
    sa.Column('start_time', sa.Time(), nullable=False),
    sa.Column('end_time', sa.Time(), nullable=False),
    sa.Column('is_active', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.ForeignKeyConstraint(['template_id'], ['trading_hours_templates.id'], name=op.f('fk_trading_sessions_template_id_trading_hours_templates'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trading_sessions')),
    sa.UniqueConstraint('template_id', 'day_of_week', name='uq_trading_sessions_template_day')
    )
    with op.batch_alter_table('trading_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_trading_sessions_template_id'), ['template_id'], unique=False)



    _seed()


def _seed():
    templates = sa.table("trading_hours_templates", sa.column("id", sa.Integer), sa.column("name", sa.String),
                         sa.column("exchanges", sa.String), sa.column("pre_open_buffer_minutes", sa.Integer),
                         sa.column("is_active", sa.Boolean), sa.column("created_at", sa.DateTime(timezone=True)))
    sessions = sa.table("trading_sessions", sa.column("template_id", sa.Integer), sa.column("day_of_week", sa.Integer),
                        sa.column("start_time", sa.Time), sa.column("end_time", sa.Time),
                        sa.column("is_active", sa.Boolean))
    holidays = sa.table("market_holidays", sa.column("holiday_date", sa.Date), sa.column("exchange", sa.String),
                        sa.column("description", sa.String), sa.column("holiday_type", sa.String))
    now = datetime.now(UTC)
    if op.get_bind().dialect.name == "sqlite":
        now = now.replace(tzinfo=None)
    name = "NSE/BSE equity and F&O"
    op.bulk_insert(templates, [{"name": name, "exchanges": ",".join(EXCHANGES),
                                "pre_open_buffer_minutes": 15, "is_active": True, "created_at": now}])
    template_id = op.get_bind().execute(sa.select(templates.c.id).where(templates.c.name == name)).scalar_one()
    op.bulk_insert(sessions, [{"template_id": template_id, "day_of_week": day, "start_time": time(9, 15),
                               "end_time": time(15, 30), "is_active": True} for day in range(5)])
    op.bulk_insert(holidays, [
        {"holiday_date": date.fromisoformat(f"{year}-{md}"), "exchange": exchange, "description": name,
         "holiday_type": "trading"}
        for year, days in HOLIDAYS.items() for md, name in days for exchange in EXCHANGES
    ])


def downgrade():
    with op.batch_alter_table('trading_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_trading_sessions_template_id'))

    op.drop_table('trading_sessions')
    with op.batch_alter_table('trading_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_trading_accounts_user_id'))
        batch_op.drop_index(batch_op.f('ix_trading_accounts_deleted_at'))

    op.drop_table('trading_accounts')
    op.drop_table('trading_hours_templates')
    with op.batch_alter_table('special_trading_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_special_trading_sessions_session_date'))

    op.drop_table('special_trading_sessions')
    op.drop_table('service_leases')
    op.drop_table('service_heartbeats')
    with op.batch_alter_table('market_holidays', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_market_holidays_holiday_date'))

    op.drop_table('market_holidays')
