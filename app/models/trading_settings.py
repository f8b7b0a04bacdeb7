"""Admin-editable trading settings: contract settings, margin per lot, trade-quality grades.

Seeded by migration 0004 from app/domain/contract_defaults.py and margin_defaults.py. Read
them through app/services/margin/ (cached getters), never directly from a view.
Max lots per order is not a column: it is derived (app/domain/sizing.py max_lots_per_order).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow

#: ₹ per lot: up to 99,99,99,99,999.99
MONEY = Numeric(14, 2)


class TradingSettings(Model):
    """Contract settings of one underlying (the stored default; the broker's figure wins)."""

    __tablename__ = "trading_settings"
    __table_args__ = (
        CheckConstraint("lot_size > 0", name="lot_size_positive"),
        CheckConstraint("next_month_lot_size > 0", name="next_month_lot_size_positive"),
        CheckConstraint("freeze_qty > 0", name="freeze_qty_positive"),
        CheckConstraint("strike_step > 0", name="strike_step_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    underlying: Mapped[str] = mapped_column(String(32), unique=True)
    lot_size: Mapped[int] = mapped_column(Integer)
    next_month_lot_size: Mapped[int] = mapped_column(Integer)
    freeze_qty: Mapped[int] = mapped_column(Integer)
    strike_step: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class MarginRequirement(Model):
    """Margin per lot (₹) of one trade type of one underlying, on and off its expiry days."""

    __tablename__ = "margin_requirements"
    __table_args__ = (
        UniqueConstraint("underlying", "trade_type", name="uq_margin_requirements_underlying_trade_type"),
        CheckConstraint("expiry_margin > 0", name="expiry_margin_positive"),
        CheckConstraint("non_expiry_margin > 0", name="non_expiry_margin_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    underlying: Mapped[str] = mapped_column(String(32), index=True)
    trade_type: Mapped[str] = mapped_column(String(32))  # app.domain.margin.TradeType values
    expiry_margin: Mapped[Decimal] = mapped_column(MONEY)
    non_expiry_margin: Mapped[Decimal] = mapped_column(MONEY)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class TradeQuality(Model):
    """A trade-quality grade: the share (%) of available margin the calculator may use."""

    __tablename__ = "trade_qualities"
    __table_args__ = (
        CheckConstraint("percent > 0 AND percent <= 100", name="percent_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grade: Mapped[str] = mapped_column(String(8), unique=True)
    percent: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
