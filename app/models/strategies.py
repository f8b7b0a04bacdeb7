"""Strategies (legs, accounts with their multipliers and caps) and strategy templates.

The columns hold the validated values of the builder; `rule()`, `expiry()` and friends turn
them back into the domain's value objects, so resolution and sizing never read the ORM.
Enum-like columns are short strings holding the domain enums' values.
"""

from __future__ import annotations

from datetime import datetime, time
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
    Time,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.domain.expiries import ExpiryChoice
from app.domain.instruments import Action, InstrumentKind, OptionType, Underlying, underlying
from app.domain.risk_settings import DEFAULT_ACTION, DEFAULT_SCOPE, RiskAction, RiskEventType, RiskScope
from app.domain.sizing import RiskProfile
from app.domain.strategy_settings import (
    DEFAULT_SPLITS,
    MAX_LIMIT_TIMEOUT,
    MAX_RETRIES,
    MAX_SPLITS,
    MIN_LIMIT_TIMEOUT,
    MIN_SPLITS,
    FailurePolicy,
    LegRiskUnit,
    LimitFallback,
    MarketCondition,
    OrderType,
    Product,
    SupertrendExit,
    SupertrendTimeframe,
    TrailingType,
)
from app.domain.strikes import StrikeMethod, StrikeRule
from app.extensions import Model
from app.models.types import UTCDateTime, utcnow

MONEY = Numeric(14, 2)
PRICE = Numeric(12, 2)
RATIO = Numeric(8, 2)
# The breach action column of each strategy-level rule (app/domain/risk_settings.RULES_WITH_ACTION).
ACTION_COLUMNS = {RiskEventType.MAX_LOSS: "max_loss_action", RiskEventType.MAX_PROFIT: "max_profit_action",
                  RiskEventType.TRAILING_SL: "trailing_action", RiskEventType.SUPERTREND: "supertrend_action"}


def _one_of(column: str, values: Any) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class Strategy(Model):
    __tablename__ = "strategies"
    __table_args__ = (CheckConstraint(f"allowed_splits BETWEEN {MIN_SPLITS} AND {MAX_SPLITS}",
                                      name="allowed_splits_range"),
                      CheckConstraint(f"retry_limit BETWEEN 0 AND {MAX_RETRIES}", name="retry_limit_range"),
                      CheckConstraint(f"limit_timeout_seconds BETWEEN {MIN_LIMIT_TIMEOUT} AND {MAX_LIMIT_TIMEOUT}",
                                      name="limit_timeout_range"),
                      CheckConstraint(_one_of("risk_scope", RiskScope), name="risk_scope_known"),
                      *(CheckConstraint(_one_of(column, RiskAction), name=f"{column}_known")
                        for column in ACTION_COLUMNS.values()))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    market_condition: Mapped[str] = mapped_column(String(16), default=MarketCondition.ANY.value)
    risk_profile: Mapped[str] = mapped_column(String(16), default=RiskProfile.BALANCED.value)
    product: Mapped[str] = mapped_column(String(8), default=Product.MIS.value)
    entry_time: Mapped[time] = mapped_column(Time())
    exit_time: Mapped[time] = mapped_column(Time())
    square_off_time: Mapped[time] = mapped_column(Time())
    # A leg above the freeze quantity is sent as at most this many child orders (1–20), each
    # counting against the account's 10 orders/s; so a leg trades at most max lots per order
    # × allowed_splits (NIFTY 27 × 5 = 135 lots by default).
    allowed_splits: Mapped[int] = mapped_column(Integer, default=DEFAULT_SPLITS, server_default=str(DEFAULT_SPLITS))
    # Risk settings: stored and validated now, enforced by the risk engine in a later release.
    max_loss: Mapped[Decimal | None] = mapped_column(MONEY)
    max_profit: Mapped[Decimal | None] = mapped_column(MONEY)
    trailing_type: Mapped[str | None] = mapped_column(String(16))
    trailing_value: Mapped[Decimal | None] = mapped_column(PRICE)
    supertrend_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    supertrend_period: Mapped[int] = mapped_column(Integer, default=7, server_default="7")
    supertrend_multiplier: Mapped[Decimal] = mapped_column(RATIO, default=Decimal(3), server_default="3")
    supertrend_timeframe: Mapped[str] = mapped_column(String(8), default=SupertrendTimeframe.M5.value,
                                                      server_default=SupertrendTimeframe.M5.value)
    supertrend_exit: Mapped[str] = mapped_column(String(16), default=SupertrendExit.BREAKOUT.value,
                                                 server_default=SupertrendExit.BREAKOUT.value)
    # Execution (issue 9): what happens when an account's entry fails part-way (report, retry,
    # unwind), how often a rejected leg is re-sent under "retry", whether an entry order that
    # never reached the broker is sent once more, and what to do with an unfilled LIMIT order.
    failure_policy: Mapped[str] = mapped_column(String(8), default=FailurePolicy.REPORT.value,
                                                server_default=FailurePolicy.REPORT.value)
    retry_limit: Mapped[int] = mapped_column(Integer, default=2, server_default="2")
    resend_not_placed: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    limit_timeout_seconds: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    limit_fallback: Mapped[str] = mapped_column(String(8), default=LimitFallback.CANCEL.value,
                                                server_default=LimitFallback.CANCEL.value)
    # Enter by itself at entry_time on trading days (the leader's scheduler); off by default.
    auto_entry: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Risk engine (issue 10): per-account or combined thresholds, and what each rule's breach does.
    risk_scope: Mapped[str] = mapped_column(String(16), default=DEFAULT_SCOPE.value, server_default=DEFAULT_SCOPE.value)
    max_loss_action: Mapped[str] = mapped_column(String(16), default=DEFAULT_ACTION.value,
                                                 server_default=DEFAULT_ACTION.value)
    max_profit_action: Mapped[str] = mapped_column(String(16), default=DEFAULT_ACTION.value,
                                                   server_default=DEFAULT_ACTION.value)
    trailing_action: Mapped[str] = mapped_column(String(16), default=DEFAULT_ACTION.value,
                                                 server_default=DEFAULT_ACTION.value)
    supertrend_action: Mapped[str] = mapped_column(String(16), default=DEFAULT_ACTION.value,
                                                   server_default=DEFAULT_ACTION.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    legs: Mapped[list[StrategyLeg]] = relationship(
        back_populates="strategy", order_by="StrategyLeg.position", cascade="all, delete-orphan")
    accounts: Mapped[list[StrategyAccount]] = relationship(
        back_populates="strategy", order_by="StrategyAccount.id", cascade="all, delete-orphan")

    def profile(self) -> RiskProfile:
        """The sizing profile (fixed lots or a margin share)."""
        return RiskProfile(self.risk_profile)

    def condition(self) -> MarketCondition:
        return MarketCondition(self.market_condition)

    def product_type(self) -> Product:
        return Product(self.product)

    def trailing(self) -> TrailingType | None:
        return TrailingType(self.trailing_type) if self.trailing_type else None

    def scope(self) -> RiskScope:
        """Per account or combined (DOMAIN.md "Risk management semantics")."""
        return RiskScope(self.risk_scope)

    def breach_action(self, rule: RiskEventType) -> RiskAction:
        """What a breach of `rule` does (max loss, max profit, trailing stop, Supertrend).

        Raises:
            KeyError: `rule` has no action of its choosing (leg rules close their leg).
        """
        return RiskAction(getattr(self, ACTION_COLUMNS[rule]))

    def __repr__(self) -> str:
        return f"<Strategy {self.id} {self.name!r} user={self.user_id}>"


class StrategyLeg(Model):
    __tablename__ = "strategy_legs"
    __table_args__ = (UniqueConstraint("strategy_id", "position", name="uq_strategy_legs_strategy_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    strategy_id: Mapped[int] = mapped_column(ForeignKey("strategies.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 0-based order in the builder
    underlying: Mapped[str] = mapped_column(String(16))
    instrument: Mapped[str] = mapped_column(String(8), default=InstrumentKind.OPTION.value)
    expiry_choice: Mapped[str] = mapped_column(String(16), default=ExpiryChoice.CURRENT_WEEK.value)
    strike_method: Mapped[str | None] = mapped_column(String(16))  # None for futures
    strike_offset: Mapped[int | None] = mapped_column(Integer)
    strike_price: Mapped[Decimal | None] = mapped_column(PRICE)
    target_premium: Mapped[Decimal | None] = mapped_column(PRICE)
    option_type: Mapped[str | None] = mapped_column(String(2))  # None for futures
    action: Mapped[str] = mapped_column(String(4))
    lots: Mapped[int] = mapped_column(Integer)
    order_type: Mapped[str] = mapped_column(String(8), default=OrderType.MARKET.value)
    limit_buffer_pct: Mapped[Decimal | None] = mapped_column(RATIO)
    stop_loss_unit: Mapped[str | None] = mapped_column(String(16))
    stop_loss_value: Mapped[Decimal | None] = mapped_column(PRICE)
    target_unit: Mapped[str | None] = mapped_column(String(16))
    target_value: Mapped[Decimal | None] = mapped_column(PRICE)

    strategy: Mapped[Strategy] = relationship(back_populates="legs")

    def kind(self) -> InstrumentKind:
        return InstrumentKind(self.instrument)

    def index(self) -> Underlying:
        """The underlying's exchanges (quote and derivatives)."""
        return underlying(self.underlying)

    def expiry(self) -> ExpiryChoice:
        return ExpiryChoice(self.expiry_choice)

    def side(self) -> Action:
        return Action(self.action)

    def option(self) -> OptionType | None:
        """CE or PE; None for a future."""
        return OptionType(self.option_type) if self.option_type else None

    def rule(self) -> StrikeRule | None:
        """The leg's strike rule (validated again on construction); None for a future."""
        if self.strike_method is None:
            return None
        return StrikeRule(StrikeMethod(self.strike_method), offset=self.strike_offset,
                          strike=self.strike_price, target_premium=self.target_premium)

    def order(self) -> OrderType:
        return OrderType(self.order_type)

    def stop_loss(self) -> tuple[LegRiskUnit, Decimal] | None:
        if self.stop_loss_unit is None or self.stop_loss_value is None:
            return None
        return LegRiskUnit(self.stop_loss_unit), self.stop_loss_value

    def target(self) -> tuple[LegRiskUnit, Decimal] | None:
        if self.target_unit is None or self.target_value is None:
            return None
        return LegRiskUnit(self.target_unit), self.target_value

    def __repr__(self) -> str:
        return f"<StrategyLeg {self.id} #{self.position} {self.action} {self.underlying} {self.option_type}>"


class StrategyAccount(Model):
    """An account a strategy runs on, with its lot multiplier and optional capital cap (₹)."""

    __tablename__ = "strategy_accounts"
    __table_args__ = (UniqueConstraint("strategy_id", "account_id", name="uq_strategy_accounts_strategy_account"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    strategy_id: Mapped[int] = mapped_column(ForeignKey("strategies.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("trading_accounts.id", ondelete="CASCADE"), index=True)
    lot_multiplier: Mapped[Decimal] = mapped_column(RATIO, default=Decimal(1), server_default="1")
    capital_cap: Mapped[Decimal | None] = mapped_column(MONEY)

    strategy: Mapped[Strategy] = relationship(back_populates="accounts")

    def __repr__(self) -> str:
        return f"<StrategyAccount strategy={self.strategy_id} account={self.account_id} x{self.lot_multiplier}>"


class StrategyTemplate(Model):
    """A reusable strategy definition: built-in (user_id NULL, read-only) or a user's own.

    `spec` is the strategy in the JSON API's shape (settings and legs, never accounts), so a
    template is instantiated through the same validation as any new strategy.
    """

    __tablename__ = "strategy_templates"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_strategy_templates_user_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def builtin(self) -> bool:
        """Built-in templates belong to no user: every user sees them, nobody edits them."""
        return self.user_id is None

    def __repr__(self) -> str:
        return f"<StrategyTemplate {self.id} {self.name!r} user={self.user_id}>"
