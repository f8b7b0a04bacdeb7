"""Builders for risk event tests: a user's strategy with one open run on one or two accounts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal

from app.extensions import db
from app.models import RunAccount, RunLeg, Strategy, StrategyRun
from tests.support.strategies import add_account


@dataclass(frozen=True)
class Owned:
    """Ids of one user's records (the test's session may be closed between requests)."""

    user_id: int
    strategy_id: int
    run_id: int
    account_ids: tuple[int, ...]
    run_account_ids: tuple[int, ...]


def make_strategy(user_id: int, name: str) -> Strategy:
    strategy = Strategy(user_id=user_id, name=name, entry_time=time(9, 20), exit_time=time(15, 0),
                        square_off_time=time(15, 15))
    db.session.add(strategy)
    db.session.flush()
    return strategy


def owned_world(app, user_id: int, prefix: str, accounts: int = 2) -> Owned:
    """A strategy named f"{prefix} strategy", its open run, and `accounts` accounts named prefix1, prefix2…"""
    account_ids = tuple(add_account(app, user_id, f"{prefix}{i + 1}") for i in range(accounts))
    with app.app_context():
        strategy = make_strategy(user_id, f"{prefix} strategy")
        run = StrategyRun(user_id=user_id, strategy_id=strategy.id, strategy_name=strategy.name,
                          idempotency_key=f"key-{prefix}", product="MIS", trading_day=date(2026, 1, 5), status="open")
        run.legs = [RunLeg(number=1, label="SELL CE", underlying="NIFTY", symbol="NIFTY06JAN2626100CE",
                           exchange="NFO", action="SELL", lots=1, lot_size=65, freeze_qty=1755,
                           tick_size=Decimal("0.05"), order_type="MARKET", ltp=Decimal("100"),
                           expiry=date(2026, 1, 6))]
        run.accounts = [RunAccount(account_id=a, account_name=f"{prefix}{i + 1}", status="open", strategy_lots=1)
                        for i, a in enumerate(account_ids)]
        db.session.add(run)
        db.session.commit()
        return Owned(user_id, strategy.id, run.id, account_ids, tuple(ra.id for ra in run.accounts))
