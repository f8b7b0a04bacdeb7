"""Factories and a tiny order loop for the exit-manager and kill-switch tests.

`make_run` writes a run (legs, accounts, planned entry intents) the way the planner does;
`Driver` plays the engine's part that these tests need — send ready intents (claim, place,
apply the answer, phases per group), track accepted orders until terminal — and calls the
exit manager's and kill switch's `step_all`, all over real HTTP against the paper broker.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from app.broker.errors import BrokerError, OrderRejected
from app.domain.expiries import ist_today
from app.domain.order_lifecycle import (
    AT_BROKER,
    BrokerReport,
    IntentEvent,
    IntentState,
    event_for_broker_status,
)
from app.extensions import db
from app.models import TradingAccount
from app.models.execution import OrderIntent, RunAccount, RunLeg, StrategyRun
from app.models.services import ServiceLease
from app.services.accounts import client_for
from app.services.execution.lifecycle import StaleIntent, apply, claim
from app.services.lease import DEFAULT_LEASE_NAME
from tests.helpers import WAIT_SECONDS


def engine_online() -> None:
    """A services lease held for an hour: require_engine_online passes."""
    now = datetime.now(UTC)
    db.session.add(ServiceLease(name=DEFAULT_LEASE_NAME, holder="test:1:x", acquired_at=now, renewed_at=now,
                                expires_at=now + timedelta(hours=1), generation=1))
    db.session.commit()


def add_paper_accounts(client, broker, sim, names: Sequence[str]) -> list[tuple[int, str]]:
    """Paper accounts added through the app's form: [(account id, api key)]."""
    out = []
    for name in names:
        key = sim.new_account()
        client.post_form("/accounts/add", {"account_name": name, "host_url": broker.url,
                                           "websocket_url": broker.ws_url, "api_key": key}, page="/accounts/add")
        account_id = db.session.scalar(select(TradingAccount.id).where(TradingAccount.account_name == name))
        assert account_id is not None, f"account {name} was not added"
        out.append((account_id, key))
    return out


@dataclass(frozen=True)
class LegSpec:
    symbol: str
    exchange: str
    action: str
    quantity: int
    lot_size: int = 1
    freeze_qty: int = 0
    underlying: str = "SBIN"


def make_run(user_id: int, account_ids: Sequence[int], legs: Sequence[LegSpec], *, product: str = "MIS",
             name: str = "Test run", key: str | None = None, sizes: dict[int, int] | None = None) -> int:
    """A run with planned entry intents (BUY legs phase 0, SELL legs phase 1), as the planner writes.
    `sizes`: {account id: how many times the legs' quantities that account trades} (default 1)."""
    run = StrategyRun(user_id=user_id, strategy_name=name, idempotency_key=key or f"test-{time.monotonic_ns()}",
                      status="entering", product=product, trading_day=ist_today(datetime.now(UTC)))
    db.session.add(run)
    db.session.flush()
    for n, spec in enumerate(legs, start=1):
        db.session.add(RunLeg(run_id=run.id, number=n, label=f"leg {n}", underlying=spec.underlying,
                              symbol=spec.symbol, exchange=spec.exchange, action=spec.action, lots=1,
                              lot_size=spec.lot_size, freeze_qty=spec.freeze_qty or 10**9, tick_size=Decimal("0.05"),
                              order_type="MARKET", ltp=Decimal("100"), expiry=run.trading_day))
    for account_id in account_ids:
        ra = RunAccount(run_id=run.id, account_id=account_id, account_name=f"acct {account_id}",
                        status="entering", strategy_lots=1)
        db.session.add(ra)
        db.session.flush()
        for n, spec in enumerate(legs, start=1):
            db.session.add(OrderIntent(
                intent_key=f"run:{run.id}/acct:{account_id}/leg:{n}/child:1/entry/1", user_id=user_id,
                account_id=account_id, run_id=run.id, run_account_id=ra.id, leg_number=n, child=1, attempt=1,
                purpose="entry", phase=0 if spec.action == "BUY" else 1, symbol=spec.symbol,
                exchange=spec.exchange, product=product, action=spec.action,
                quantity=spec.quantity * (sizes or {}).get(account_id, 1)))
    db.session.commit()
    return run.id


def _group(intent: OrderIntent) -> tuple[Any, ...]:
    if intent.run_account_id is not None:
        return ("ra", intent.run_account_id, intent.purpose == "entry", intent.attempt)
    return ("ks", intent.kill_switch_id, intent.account_id)


class Driver:
    """The engine's sending and tracking, in-line, for these tests (no threads)."""

    def __init__(self, *, exits: bool = True, kill: bool = False, hold: Callable[[OrderIntent], bool] | None = None):
        self.exits, self.kill, self.hold = exits, kill, hold
        self.sent: list[int] = []

    def step(self) -> None:
        if self.kill:
            from app.services.execution import killswitch

            killswitch.step_all()
        if self.exits:
            from app.services.execution import exits

            exits.step_all()
        self.send_ready()
        self.track()

    def send_ready(self) -> None:
        db.session.expire_all()
        rows = list(db.session.scalars(select(OrderIntent).order_by(OrderIntent.id)))
        groups: dict[tuple[Any, ...], list[OrderIntent]] = defaultdict(list)
        for row in rows:
            groups[_group(row)].append(row)
        for group in groups.values():
            for intent in group:
                if intent.state != "planned" or (self.hold and self.hold(intent)):
                    continue
                lower = [i for i in group if i.phase < intent.phase]
                if any(i.state != "filled" for i in lower):
                    continue
                self.send(intent)

    def send(self, intent: OrderIntent) -> None:
        if not claim(intent, "test-driver"):
            return
        self.place(intent)

    def place(self, intent: OrderIntent) -> None:
        """Place an intent this driver (or the test) has claimed, and apply the answer."""
        account = db.session.get(TradingAccount, intent.account_id)
        db.session.commit()
        self.sent.append(intent.id)
        try:
            ack = client_for(account).place_order(  # type: ignore[arg-type]
                symbol=intent.symbol, exchange=intent.exchange, action=intent.action, quantity=intent.quantity,
                product=intent.product, price_type=intent.price_type,
                price=None if intent.price is None else str(intent.price))
        except OrderRejected as exc:
            apply(intent, IntentEvent.REJECT, rejection_reason=str(exc), detail=str(exc))
            return
        except BrokerError as exc:
            apply(intent, IntentEvent.NOT_SENT, note=str(exc), detail=str(exc))
            return
        apply(intent, IntentEvent.ACCEPTED, broker_order_id=ack.order_ids[0], detail="ack")

    def track(self) -> None:
        db.session.expire_all()
        states = [s.value for s in AT_BROKER]
        for intent in list(db.session.scalars(select(OrderIntent).where(OrderIntent.state.in_(states)))):
            account = db.session.get(TradingAccount, intent.account_id)
            db.session.commit()
            try:
                order = client_for(account).order_status(intent.broker_order_id)  # type: ignore[arg-type]
            except BrokerError:
                continue
            filled = order.filled_quantity if order.filled_quantity is not None else (
                order.quantity if order.status.lower() == "complete" else 0)
            event = event_for_broker_status(intent.state, intent.filled_quantity,
                                            BrokerReport(order.status, order.quantity, filled))
            if event is None:
                continue
            facts: dict[str, Any] = {"filled_quantity": filled}
            if order.average_price is not None:
                facts["average_price"] = order.average_price
            if event is IntentEvent.REJECT:
                facts["rejection_reason"] = order.rejection_reason or "rejected"
            try:
                apply(intent, event, detail=order.status, **facts)
            except StaleIntent:
                continue

    def run_until(self, predicate: Callable[[], Any], timeout: float = WAIT_SECONDS) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            self.step()
            db.session.expire_all()
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError("condition not reached while driving the engine")
            time.sleep(0.05)


def intents(**where: Any) -> list[OrderIntent]:
    db.session.expire_all()
    query = select(OrderIntent).order_by(OrderIntent.id)
    for name, value in where.items():
        query = query.where(getattr(OrderIntent, name) == value)
    return list(db.session.scalars(query))


def net_positions(account_id: int) -> dict[tuple[str, str, str], int]:
    """The broker's position book of an account (non-zero rows only)."""
    account = db.session.get(TradingAccount, account_id)
    out: dict[tuple[str, str, str], int] = {}
    for pos in client_for(account).positions():  # type: ignore[arg-type]
        if pos.quantity:
            out[(pos.symbol, pos.exchange, pos.product)] = out.get((pos.symbol, pos.exchange, pos.product), 0) \
                + pos.quantity
    return out


def run_accounts(run_id: int) -> list[RunAccount]:
    db.session.expire_all()
    return list(db.session.scalars(select(RunAccount).where(RunAccount.run_id == run_id).order_by(RunAccount.id)))


def filled_entries(driver: Driver, run_id: int) -> None:
    """Drive until every entry intent of the run is terminal."""
    driver.run_until(lambda: all(i.state in ("filled", "rejected", "cancelled", "not_placed")
                                 for i in intents(run_id=run_id, purpose="entry")))


def states(rows: Sequence[OrderIntent]) -> list[str]:
    return [IntentState(r.state).value for r in rows]
