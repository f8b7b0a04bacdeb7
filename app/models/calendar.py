"""Trading calendar: weekly session templates, holidays and special sessions per exchange."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, Time, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow


class TradingHoursTemplate(Model):
    """A named weekly schedule for a set of exchanges (e.g. "NSE/BSE equity and F&O")."""

    __tablename__ = "trading_hours_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    exchanges: Mapped[str] = mapped_column(String(128))  # comma-separated, e.g. "NSE,BSE,NFO,BFO"
    pre_open_buffer_minutes: Mapped[int] = mapped_column(Integer, default=15, server_default="15")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sessions: Mapped[list[TradingSession]] = relationship(
        back_populates="template", cascade="all, delete-orphan", order_by="TradingSession.day_of_week"
    )


class TradingSession(Model):
    """One weekday's session of a template, in IST wall-clock time."""

    __tablename__ = "trading_sessions"
    __table_args__ = (UniqueConstraint("template_id", "day_of_week", name="uq_trading_sessions_template_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("trading_hours_templates.id", ondelete="CASCADE"), index=True)
    day_of_week: Mapped[int] = mapped_column(Integer)  # Monday = 0 … Sunday = 6
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    template: Mapped[TradingHoursTemplate] = relationship(back_populates="sessions")


class MarketHoliday(Model):
    __tablename__ = "market_holidays"
    __table_args__ = (UniqueConstraint("holiday_date", "exchange", name="uq_market_holidays_date_exchange"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    holiday_date: Mapped[date] = mapped_column(Date, index=True)
    exchange: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(128))
    holiday_type: Mapped[str] = mapped_column(String(32), default="trading", server_default="trading")


class SpecialTradingSession(Model):
    """A session on a day that is normally closed (e.g. Muhurat trading); overrides a holiday."""

    __tablename__ = "special_trading_sessions"
    __table_args__ = (UniqueConstraint("session_date", "exchange", name="uq_special_trading_sessions_date_exchange"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_date: Mapped[date] = mapped_column(Date, index=True)
    exchange: Mapped[str] = mapped_column(String(16))
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)
    description: Mapped[str] = mapped_column(String(128))
