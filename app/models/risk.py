"""Risk records: the risk event log and the per-account entry blocks of the daily limits.

A risk event is written for every decision the risk engine or an exit path makes, including
the decision not to act on an unreliable price (DOMAIN.md "Risk management semantics"). It
must stay readable after the strategy is deleted (strategies are hard-deleted): the strategy's
name is copied onto the row and every reference to another record is SET NULL on delete.

The user id is the owner: every query for events starts from it (app/services/risk/events.py),
so another user's rows are never reachable by id.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.risk_settings import RiskEventAction, RiskEventOutcome, RiskEventType
from app.extensions import Model
from app.models.types import UTCDateTime, utcnow

MONEY = Numeric(14, 2)


def _one_of(column: str, values: list[str], *, nullable: bool = False) -> str:
    listed = ", ".join(f"'{v}'" for v in values)
    return f"{column} IS NULL OR {column} IN ({listed})" if nullable else f"{column} IN ({listed})"


EVENT_TYPES = [t.value for t in RiskEventType]
EVENT_ACTIONS = [a.value for a in RiskEventAction]
EVENT_OUTCOMES = [o.value for o in RiskEventOutcome]


class RiskEvent(Model):
    """One risk decision: what fired (or held), against which threshold, what was done, and the
    exit intents it led to with their outcome."""

    __tablename__ = "risk_events"
    __table_args__ = (
        Index("ix_risk_events_user_created", "user_id", "created_at"),
        CheckConstraint(_one_of("event_type", EVENT_TYPES), name="event_type_known"),
        CheckConstraint(_one_of("action", EVENT_ACTIONS), name="action_known"),
        CheckConstraint(_one_of("outcome", EVENT_OUTCOMES, nullable=True), name="outcome_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Owner; the (user_id, created_at) index serves both the ownership filter and the page's order.
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    strategy_id: Mapped[int | None] = mapped_column(ForeignKey("strategies.id", ondelete="SET NULL"))
    strategy_name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    run_id: Mapped[int | None] = mapped_column(ForeignKey("strategy_runs.id", ondelete="SET NULL"), index=True)
    run_account_id: Mapped[int | None] = mapped_column(ForeignKey("run_accounts.id", ondelete="SET NULL"))
    # The account the decision was about; None = the run's accounts combined.
    account_id: Mapped[int | None] = mapped_column(ForeignKey("trading_accounts.id", ondelete="SET NULL"))
    event_type: Mapped[str] = mapped_column(String(24))
    # ₹ for P&L rules (the stop level for a trailing stop), a price for leg rules, seconds of
    # price age for prices_unreliable; None where the event has no threshold (kill switch).
    threshold: Mapped[Decimal | None] = mapped_column(MONEY)
    current_value: Mapped[Decimal | None] = mapped_column(MONEY)
    action: Mapped[str] = mapped_column(String(16))
    exit_request_id: Mapped[int | None] = mapped_column(ForeignKey("exit_requests.id", ondelete="SET NULL"))
    # Our order intent ids (OrderIntent.id), never the broker's order ids.
    intent_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    outcome: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def kind(self) -> RiskEventType:
        return RiskEventType(self.event_type)

    def taken(self) -> RiskEventAction:
        return RiskEventAction(self.action)

    def result(self) -> RiskEventOutcome | None:
        return RiskEventOutcome(self.outcome) if self.outcome else None

    def __repr__(self) -> str:
        return f"<RiskEvent {self.id} {self.event_type} {self.action} run={self.run_id} user={self.user_id}>"


class AccountRiskBlock(Model):
    """New entries on an account are refused for one IST trading day after a daily loss or
    profit limit was breached; the next trading day has no row, so entries are allowed again."""

    __tablename__ = "account_risk_blocks"
    __table_args__ = (UniqueConstraint("account_id", "trading_day", name="uq_account_risk_blocks_account_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("trading_accounts.id", ondelete="CASCADE"))
    trading_day: Mapped[date] = mapped_column(Date)  # IST
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"<AccountRiskBlock account={self.account_id} {self.trading_day}>"
