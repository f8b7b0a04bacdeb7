"""Trading accounts: one OpenAlgo server (host, WebSocket, API key) owned by one user."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow

STATUS_UNKNOWN = "unknown"
STATUS_CONNECTED = "connected"
STATUS_DISCONNECTED = "disconnected"
STATUS_AUTH_ERROR = "auth_error"  # the key is wrong or the broker session in OpenAlgo expired
CONNECTION_STATUSES = (STATUS_UNKNOWN, STATUS_CONNECTED, STATUS_DISCONNECTED, STATUS_AUTH_ERROR)


class TradingAccount(Model):
    __tablename__ = "trading_accounts"
    __table_args__ = (UniqueConstraint("user_id", "account_name", name="uq_trading_accounts_user_name"),
                      CheckConstraint("daily_loss_limit IS NULL OR daily_loss_limit > 0",
                                      name="daily_loss_limit_positive"),
                      CheckConstraint("daily_profit_limit IS NULL OR daily_profit_limit > 0",
                                      name="daily_profit_limit_positive"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    account_name: Mapped[str] = mapped_column(String(64))
    broker_name: Mapped[str | None] = mapped_column(String(64))
    host_url: Mapped[str] = mapped_column(String(255))
    websocket_url: Mapped[str | None] = mapped_column(String(255))
    api_key_encrypted: Mapped[str] = mapped_column(Text, info={"encrypted": True})
    api_key_last4: Mapped[str] = mapped_column(String(4))
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    is_paper: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Order in which secondary accounts take over market data (lower first).
    failover_order: Mapped[int] = mapped_column(Integer, default=100, server_default="100")
    connection_status: Mapped[str] = mapped_column(String(16), default=STATUS_UNKNOWN, server_default=STATUS_UNKNOWN)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_funds: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_positions: Mapped[list[Any] | None] = mapped_column(JSON)
    last_holdings: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_data_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # Soft delete: history rows that reference the account stay readable.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    # Risk engine (issue 10): ₹ limits on the account's P&L over the IST trading day, across all its
    # runs; a breach closes its runs and blocks new entries until the next trading day. None = no limit.
    daily_loss_limit: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    daily_profit_limit: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))

    @property
    def masked_key(self) -> str:
        return "•" * 8 + self.api_key_last4

    def __repr__(self) -> str:
        return f"<TradingAccount {self.id} {self.account_name!r} user={self.user_id}>"
