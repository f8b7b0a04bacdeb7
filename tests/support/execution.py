"""Builders for engine tests: paper accounts, a run with planned entry intents, and driving the engine.

The engine is driven by calling `ExecutionEngine.run_pass()` in a loop (`drive`) until a condition
holds (no runner lease is needed): each pass schedules broker work on the engine's own thread pool,
so a test waits on database conditions exactly as the UI would. Until the planner lands, runs are
created here directly (`make_run`), one RunLeg per leg, one RunAccount per account, and planned
entry intents split at the leg's freeze quantity (BUY legs phase 0, SELL legs phase 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from app.domain.execution_policy import entry_phase
from app.domain.sizing import split_quantity
from app.extensions import db
from app.models import TradingAccount
from app.models.execution import OrderIntent, RunAccount, RunLeg, StrategyRun
from app.services.encryption import get_encryptor
from app.services.execution.engine import ExecutionEngine
from tests.helpers import wait_until

CE = "NIFTY06JAN2626000CE"
PE = "NIFTY06JAN2626000PE"
LOT, FREEZE = 65, 1755


@dataclass(frozen=True)
class Leg:
    symbol: str
    action: str
    lots: int = 1
    lot_size: int = LOT
    freeze_qty: int = FREEZE
    exchange: str = "NFO"
    order_type: str = "MARKET"
    price: Decimal | None = None


def add_paper_account(app, user_id: int, name: str, broker_url: str, apikey: str) -> int:
    """A TradingAccount for a paper broker key (the key encrypted like the add form does)."""
    account = TradingAccount(user_id=user_id, account_name=name, host_url=broker_url,
                             api_key_encrypted=get_encryptor().encrypt(apikey), api_key_last4=apikey[-4:],
                             is_paper=True)
    db.session.add(account)
    db.session.commit()
    return account.id


# The paper broker's contracts carry its own (frozen, January 2026) dates; the run's legs are given an
# expiry ahead of the real clock, which the app's gates (a retry of an expired leg) read.
LIVE_EXPIRY = date.today() + timedelta(days=30)


def make_run(user_id: int, account_ids: list[int], legs: list[Leg], *, key: str = "run-1", product: str = "MIS",
             **policy: Any) -> int:
    """A StrategyRun (status entering) with its legs, run accounts and planned entry intents."""
    run = StrategyRun(user_id=user_id, strategy_name="Test", idempotency_key=key, product=product,
                      trading_day=date(2026, 1, 5), **policy)
    db.session.add(run)
    db.session.flush()
    for number, leg in enumerate(legs, start=1):
        db.session.add(RunLeg(run_id=run.id, number=number, label=f"leg {number}", underlying="NIFTY",
                              symbol=leg.symbol, exchange=leg.exchange, action=leg.action, lots=leg.lots,
                              lot_size=leg.lot_size, freeze_qty=leg.freeze_qty, tick_size=Decimal("0.05"),
                              order_type=leg.order_type, ltp=Decimal("100"), expiry=LIVE_EXPIRY))
    for account_id in account_ids:
        account = db.session.get(TradingAccount, account_id)
        ra = RunAccount(run_id=run.id, account_id=account_id, account_name=account.account_name, strategy_lots=1)
        db.session.add(ra)
        db.session.flush()
        for number, leg in enumerate(legs, start=1):
            parts = split_quantity(leg.lots * leg.lot_size, leg.lot_size, leg.freeze_qty)
            for child, quantity in enumerate(parts):
                db.session.add(OrderIntent(
                    intent_key=f"run:{run.id}/acct:{account_id}/leg:{number}/child:{child}/entry/1",
                    user_id=user_id, account_id=account_id, run_id=run.id, run_account_id=ra.id, leg_number=number,
                    child=child, attempt=1, purpose="entry", phase=entry_phase(leg.action), symbol=leg.symbol,
                    exchange=leg.exchange, product=product, action=leg.action, quantity=quantity,
                    price_type=leg.order_type, price=leg.price))
    db.session.commit()
    return run.id


def drive(engine: ExecutionEngine, condition: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Run engine passes until `condition()` (read on a fresh session state) is truthy."""

    def step() -> Any:
        engine.run_pass()
        db.session.expire_all()
        value = condition()
        db.session.commit()
        return value

    return wait_until(step, timeout=timeout, interval=0.05)


def intents(run_id: int) -> list[OrderIntent]:
    db.session.expire_all()
    return list(db.session.scalars(select(OrderIntent).where(OrderIntent.run_id == run_id).order_by(OrderIntent.id)))


def run_done(run_id: int) -> Callable[[], bool]:
    def done() -> bool:
        run = db.session.get(StrategyRun, run_id)
        return run is not None and run.status != "entering"
    return done


def run_checked(run_id: int) -> Callable[[], bool]:
    """The run has left entering and every account's position book was checked (the engine checks
    them once the run is entered and nothing of the account is in flight)."""
    def done() -> bool:
        run = db.session.get(StrategyRun, run_id)
        return run is not None and run.status != "entering" and all(
            a.position_check is not None for a in run.accounts if a.status != "skipped")
    return done


def broker_net(client, symbol: str, exchange: str = "NFO", product: str = "MIS") -> int:
    """The account's net quantity at the broker for one symbol/exchange/product."""
    return sum(p.quantity for p in client.positions()
               if (p.symbol, p.exchange, p.product) == (symbol, exchange, product))


def recorded_net(run_id: int, account_id: int, symbol: str) -> int:
    return sum(i.signed_filled for i in intents(run_id) if i.account_id == account_id and i.symbol == symbol)


def hold_lease(hours: float = 1.0) -> None:
    """A valid services lease row: the web side counts the engine as online (Execute, retry, exits)."""
    from datetime import UTC, datetime, timedelta

    from app.models import ServiceLease
    from app.services.lease import DEFAULT_LEASE_NAME

    now = datetime.now(UTC)
    db.session.merge(ServiceLease(name=DEFAULT_LEASE_NAME, holder="test:1:engine", acquired_at=now, renewed_at=now,
                                  expires_at=now + timedelta(hours=hours)))
    db.session.commit()


# The session broker's clock is frozen at 2026-01-05 10:00 IST, months from this machine's clock:
# its order timestamps are far from our send times, so engine tests widen the clock-skew allowance.
SKEW = 400 * 86400.0
