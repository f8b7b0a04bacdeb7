"""Contract settings, margin per lot and trade-quality grades (issue 8), seeded with defaults.

trading_settings: lot size, next-month lot size, freeze quantity and strike step per
underlying (max lots per order is derived, not stored). margin_requirements: ₹ per lot per
underlying and trade type, on and off expiry days. trade_qualities: grades A/B/C as a share
of available margin. The seed rows are frozen copies of the domain defaults (app/domain/contract_defaults.py,
app/domain/margin_defaults.py: plain tuples); admins edit them at /margin/settings.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 22:11:57.424701

"""
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# The seed as it was when this revision was written: a migration never imports app code, so a later
# change of the app's defaults cannot rewrite history (edit the rows through the admin page instead).
CONTRACT_DEFAULT_ROWS = (('NIFTY', 65, 65, 1755, 50),
 ('BANKNIFTY', 30, 30, 600, 100),
 ('SENSEX', 20, 20, 1000, 100),
 ('FINNIFTY', 60, 60, 1200, 50),
 ('MIDCPNIFTY', 120, 120, 2800, 25))
MARGIN_DEFAULT_ROWS = (('NIFTY', 'ce_or_pe_sell', 205000, 250000),
 ('NIFTY', 'ce_and_pe_sell', 250000, 320000),
 ('NIFTY', 'futures', 215000, 215000),
 ('NIFTY', 'option_buying', 20000, 20000),
 ('BANKNIFTY', 'ce_or_pe_sell', 205000, 250000),
 ('BANKNIFTY', 'ce_and_pe_sell', 250000, 320000),
 ('BANKNIFTY', 'futures', 215000, 215000),
 ('BANKNIFTY', 'option_buying', 20000, 20000),
 ('SENSEX', 'ce_or_pe_sell', 180000, 220000),
 ('SENSEX', 'ce_and_pe_sell', 225000, 290000),
 ('SENSEX', 'futures', 185000, 185000),
 ('SENSEX', 'option_buying', 20000, 20000),
 ('FINNIFTY', 'ce_or_pe_sell', 205000, 250000),
 ('FINNIFTY', 'ce_and_pe_sell', 250000, 320000),
 ('FINNIFTY', 'futures', 215000, 215000),
 ('FINNIFTY', 'option_buying', 20000, 20000),
 ('MIDCPNIFTY', 'ce_or_pe_sell', 205000, 250000),
 ('MIDCPNIFTY', 'ce_and_pe_sell', 250000, 320000),
 ('MIDCPNIFTY', 'futures', 215000, 215000),
 ('MIDCPNIFTY', 'option_buying', 20000, 20000))
TRADE_QUALITY_DEFAULT_ROWS = (('A', 95), ('B', 65), ('C', 36))


def upgrade():
    op.create_table('margin_requirements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('underlying', sa.String(length=32), nullable=False),
    sa.Column('trade_type', sa.String(length=32), nullable=False),
    sa.Column('expiry_margin', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('non_expiry_margin', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('expiry_margin > 0', name=op.f('ck_margin_requirements_expiry_margin_positive')),
    sa.CheckConstraint('non_expiry_margin > 0', name=op.f('ck_margin_requirements_non_expiry_margin_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_margin_requirements')),
    sa.UniqueConstraint('underlying', 'trade_type', name='uq_margin_requirements_underlying_trade_type')
    )
    with op.batch_alter_table('margin_requirements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_margin_requirements_underlying'), ['underlying'], unique=False)

    op.create_table('trade_qualities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('grade', sa.String(length=8), nullable=False),
    sa.Column('percent', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('percent > 0 AND percent <= 100', name=op.f('ck_trade_qualities_percent_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trade_qualities')),
    sa.UniqueConstraint('grade', name=op.f('uq_trade_qualities_grade'))
    )
    op.create_table('trading_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('underlying', sa.String(length=32), nullable=False),
    sa.Column('lot_size', sa.Integer(), nullable=False),
    sa.Column('next_month_lot_size', sa.Integer(), nullable=False),
    sa.Column('freeze_qty', sa.Integer(), nullable=False),
    sa.Column('strike_step', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('freeze_qty > 0', name=op.f('ck_trading_settings_freeze_qty_positive')),
    sa.CheckConstraint('lot_size > 0', name=op.f('ck_trading_settings_lot_size_positive')),
    sa.CheckConstraint('next_month_lot_size > 0', name=op.f('ck_trading_settings_next_month_lot_size_positive')),
    sa.CheckConstraint('strike_step > 0', name=op.f('ck_trading_settings_strike_step_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trading_settings')),
    sa.UniqueConstraint('underlying', name=op.f('uq_trading_settings_underlying'))
    )
    _seed()


def _seed():
    now = datetime.now(UTC)
    if op.get_context().dialect.name == "sqlite":
        now = now.replace(tzinfo=None)  # UTCDateTime stores naive UTC on SQLite
    contracts = sa.table("trading_settings", sa.column("underlying", sa.String), sa.column("lot_size", sa.Integer),
                         sa.column("next_month_lot_size", sa.Integer), sa.column("freeze_qty", sa.Integer),
                         sa.column("strike_step", sa.Integer), sa.column("updated_at", sa.DateTime(timezone=True)))
    margins = sa.table("margin_requirements", sa.column("underlying", sa.String), sa.column("trade_type", sa.String),
                       sa.column("expiry_margin", sa.Numeric(14, 2)), sa.column("non_expiry_margin", sa.Numeric(14, 2)),
                       sa.column("updated_at", sa.DateTime(timezone=True)))
    grades = sa.table("trade_qualities", sa.column("grade", sa.String), sa.column("percent", sa.Numeric(5, 2)),
                      sa.column("updated_at", sa.DateTime(timezone=True)))
    op.bulk_insert(contracts, [
        {"underlying": name, "lot_size": lot, "next_month_lot_size": next_lot, "freeze_qty": freeze,
         "strike_step": step, "updated_at": now}
        for name, lot, next_lot, freeze, step in CONTRACT_DEFAULT_ROWS])
    op.bulk_insert(margins, [
        {"underlying": name, "trade_type": trade_type, "expiry_margin": Decimal(on_expiry),
         "non_expiry_margin": Decimal(off_expiry), "updated_at": now}
        for name, trade_type, on_expiry, off_expiry in MARGIN_DEFAULT_ROWS])
    op.bulk_insert(grades, [{"grade": grade, "percent": Decimal(percent), "updated_at": now}
                            for grade, percent in TRADE_QUALITY_DEFAULT_ROWS])


def downgrade():
    op.drop_table('trading_settings')
    op.drop_table('trade_qualities')
    with op.batch_alter_table('margin_requirements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_margin_requirements_underlying'))
    op.drop_table('margin_requirements')
