"""Execution records: strategy runs, their accounts and legs, order intents and their events,
exit requests and kill switches.

The database is the source of truth for everything in flight: a leader that starts after a
crash finds every intent here and reconciles it with the brokers (LESSONS.md "Processes").

Our order id is `OrderIntent.id` (an integer we assign before any request); the broker's is
`OrderIntent.broker_order_id` (a string the broker assigns, one per child order). They are
never the same column and never the same type.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.domain.instruments import Action
from app.domain.order_lifecycle import IntentState
from app.extensions import Model
from app.models.types import UTCDateTime, utcnow

PRICE = Numeric(12, 2)
RATIO = Numeric(8, 2)


class RunStatus:
    ENTERING = "entering"  # entry intents are being sent
    OPEN = "open"  # entered (fully or partly), positions held
    CLOSING = "closing"  # an exit covering the whole run is in progress
    CLOSED = "closed"  # every account flat for this run
    FAILED = "failed"  # nothing was entered on any account


class RunAccountStatus:
    PLANNED = "planned"
    ENTERING = "entering"
    OPEN = "open"  # every entry intent filled
    PARTIAL = "partial"  # some entry intents failed (policy report): flagged
    FAILED = "failed"  # nothing filled
    UNWINDING = "unwinding"
    CLOSING = "closing"
    CLOSED = "closed"
    SKIPPED = "skipped"  # not sized (no margin, error, inactive): no intents


class Purpose:
    ENTRY = "entry"
    EXIT = "exit"
    SQUARE_OFF = "square_off"
    KILL_SWITCH = "kill_switch"
    UNWIND = "unwind"
    MANUAL = "manual"
    RISK = "risk"

    CLOSING = frozenset({"exit", "square_off", "kill_switch", "unwind", "manual", "risk"})


class StrategyRun(Model):
    """One execution of a strategy: the click (or the scheduled entry) and everything it sent."""

    __tablename__ = "strategy_runs"
    __table_args__ = (UniqueConstraint("user_id", "idempotency_key", name="uq_strategy_runs_user_idempotency"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    strategy_id: Mapped[int | None] = mapped_column(ForeignKey("strategies.id", ondelete="SET NULL"), index=True)
    strategy_name: Mapped[str] = mapped_column(String(100))
    idempotency_key: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(16), default="manual")  # manual or scheduled
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.ENTERING, index=True)
    product: Mapped[str] = mapped_column(String(8))
    # Partial-failure policy (report / retry / unwind) and its numbers, copied from the strategy.
    failure_policy: Mapped[str] = mapped_column(String(8), default="report")
    retry_limit: Mapped[int] = mapped_column(Integer, default=0)
    resend_not_placed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    limit_timeout_seconds: Mapped[int] = mapped_column(Integer, default=30)
    limit_fallback: Mapped[str] = mapped_column(String(8), default="cancel")  # cancel or market
    source: Mapped[str | None] = mapped_column(String(100))  # market-data account of the resolution
    trading_day: Mapped[date] = mapped_column(Date)  # IST
    clicked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    entered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The risk rules the run was entered with (app/services/risk/snapshot.py): a later edit or a
    # delete of the strategy never leaves an open run unprotected. None for runs entered before.
    risk_settings: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # What the risk monitor must not forget across a change of leader (trailing peaks, alerts sent).
    risk_state: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    legs: Mapped[list[RunLeg]] = relationship(back_populates="run", order_by="RunLeg.number",
                                              cascade="all, delete-orphan")
    accounts: Mapped[list[RunAccount]] = relationship(back_populates="run", order_by="RunAccount.id",
                                                      cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"<StrategyRun {self.id} {self.strategy_name!r} {self.status}>"


class RunLeg(Model):
    """A leg as resolved for this run (the contract, its size and the price at the click)."""

    __tablename__ = "run_legs"
    __table_args__ = (UniqueConstraint("run_id", "number", name="uq_run_legs_run_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("strategy_runs.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # 1-based, the builder's order
    label: Mapped[str] = mapped_column(String(100))
    underlying: Mapped[str] = mapped_column(String(16))
    symbol: Mapped[str] = mapped_column(String(64))
    exchange: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(4))
    lots: Mapped[int] = mapped_column(Integer)  # per strategy lot
    lot_size: Mapped[int] = mapped_column(Integer)
    freeze_qty: Mapped[int] = mapped_column(Integer)
    tick_size: Mapped[Decimal] = mapped_column(PRICE)
    order_type: Mapped[str] = mapped_column(String(8))
    limit_buffer_pct: Mapped[Decimal | None] = mapped_column(RATIO)
    ltp: Mapped[Decimal] = mapped_column(PRICE)  # at resolution
    expiry: Mapped[date] = mapped_column(Date)

    run: Mapped[StrategyRun] = relationship(back_populates="legs")


class RunAccount(Model):
    """One account's part of a run: its size, its state, and the position check after it."""

    __tablename__ = "run_accounts"
    __table_args__ = (UniqueConstraint("run_id", "account_id", name="uq_run_accounts_run_account"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("strategy_runs.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("trading_accounts.id", ondelete="CASCADE"), index=True)
    account_name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default=RunAccountStatus.PLANNED)
    strategy_lots: Mapped[int] = mapped_column(Integer, default=0)
    skip_reason: Mapped[str | None] = mapped_column(Text)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    flag_note: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The last position check: {"checked_at", "ok", "differences": [{symbol, exchange, product, expected, actual}]}
    position_check: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    run: Mapped[StrategyRun] = relationship(back_populates="accounts")

    def add_flag(self, note: str) -> None:
        """Flag the account for the user's attention; notes accumulate, one per line."""
        self.flagged = True
        lines = [line for line in self.flag_note.splitlines() if line]
        if note not in lines:
            lines.append(note)
        self.flag_note = "\n".join(lines)[-2000:]


class ExitRequest(Model):
    """A request to close a run, one account's part of it or one leg (handled by the leader)."""

    __tablename__ = "exit_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("strategy_runs.id", ondelete="CASCADE"), index=True)
    run_account_id: Mapped[int | None] = mapped_column(ForeignKey("run_accounts.id", ondelete="CASCADE"))
    leg_number: Mapped[int | None] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(String(16))  # exit, square_off, unwind, risk, manual
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # pending/working/done/failed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class KillSwitch(Model):
    """One press of the kill switch: every account of the user, cancel, close, check, report."""

    __tablename__ = "kill_switches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # pending/closing/done
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Per account: {"account_id", "name", "cancelled": [...], "closed": [...], "failed": [...], "still_open": [...]}
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class OrderIntent(Model):
    """One order the app means to send (one child order of a split leg), committed before sending.

    `intent_key` makes a second order for the same thing impossible: for a run it is
    "run:<run>/acct:<account>/leg:<n>/child:<c>/<entry|close>/<attempt>" (every closing
    purpose shares "close", so a manual exit and a square-off of the same leg collide), and
    for a kill switch "kill:<id>/acct:<account>/<symbol>:<exchange>:<product>/child:<c>".
    """

    __tablename__ = "order_intents"
    __table_args__ = (
        UniqueConstraint("intent_key", name="uq_order_intents_intent_key"),
        Index("ix_order_intents_state", "state"),
        Index("ix_order_intents_account_broker_order", "account_id", "broker_order_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # our intent id
    intent_key: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("trading_accounts.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("strategy_runs.id", ondelete="CASCADE"), index=True)
    run_account_id: Mapped[int | None] = mapped_column(ForeignKey("run_accounts.id", ondelete="CASCADE"),
                                                       index=True)
    exit_request_id: Mapped[int | None] = mapped_column(ForeignKey("exit_requests.id", ondelete="SET NULL"))
    kill_switch_id: Mapped[int | None] = mapped_column(ForeignKey("kill_switches.id", ondelete="CASCADE"),
                                                       index=True)
    replaces_intent_id: Mapped[int | None] = mapped_column(ForeignKey("order_intents.id", ondelete="SET NULL"))
    leg_number: Mapped[int | None] = mapped_column(Integer)
    child: Mapped[int] = mapped_column(Integer, default=0)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    purpose: Mapped[str] = mapped_column(String(16))
    # Within one account's group of intents, phase p is sent only when every intent of a lower
    # phase is filled (entries: BUY legs 0, SELL legs 1; exits: the shorts 0, the longs 1).
    phase: Mapped[int] = mapped_column(Integer, default=0)
    symbol: Mapped[str] = mapped_column(String(64))
    exchange: Mapped[str] = mapped_column(String(16))
    product: Mapped[str] = mapped_column(String(8))
    action: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[int] = mapped_column(Integer)
    price_type: Mapped[str] = mapped_column(String(8), default="MARKET")
    price: Mapped[Decimal | None] = mapped_column(PRICE)
    state: Mapped[str] = mapped_column(String(20), default=IntentState.PLANNED.value)
    broker_order_id: Mapped[str | None] = mapped_column(String(64))
    filled_quantity: Mapped[int] = mapped_column(Integer, default=0)
    average_price: Mapped[Decimal | None] = mapped_column(PRICE)
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    filled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    events: Mapped[list[OrderIntentEvent]] = relationship(order_by="OrderIntentEvent.id",
                                                          cascade="all, delete-orphan", passive_deletes=True)

    @property
    def lifecycle_state(self) -> IntentState:
        return IntentState(self.state)

    @property
    def signed_filled(self) -> int:
        """Filled units with the position's sign: + for BUY, − for SELL."""
        return Action(self.action).sign * self.filled_quantity

    def __repr__(self) -> str:
        return f"<OrderIntent {self.id} {self.purpose} {self.action} {self.quantity} {self.symbol} {self.state}>"


class OrderIntentEvent(Model):
    """One transition of an intent: when, from, to, which event, and what the broker said."""

    __tablename__ = "order_intent_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    intent_id: Mapped[int] = mapped_column(ForeignKey("order_intents.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    event: Mapped[str] = mapped_column(String(20))
    from_state: Mapped[str] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(Text, default="", server_default="")  # broker payload excerpt
