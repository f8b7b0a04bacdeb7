"""Helpers of the risk monitor tests: rule snapshots, entered runs, the monitor's loop."""

from __future__ import annotations

import time

from sqlalchemy import select

from app.extensions import db
from app.models.execution import StrategyRun
from app.models.risk import RiskEvent
from tests.helpers import WAIT_SECONDS
from tests.support.exits import Driver, LegSpec, filled_entries, make_run

LONG = LegSpec("SBIN", "NSE", "BUY", 10)
SHORT = LegSpec("RELIANCE", "NSE", "SELL", 5, underlying="RELIANCE")


def rules(**changes) -> dict:
    base = {"version": 1, "scope": "per_account", "max_loss": None, "max_loss_action": "close_all",
            "max_profit": None, "max_profit_action": "close_all", "trailing_type": None, "trailing_value": None,
            "trailing_action": "close_all", "supertrend": {"enabled": False}, "legs": {}}
    return {**base, **changes}


def entered(user, ids, legs, settings, sizes=None) -> int:
    run_id = make_run(user.id, ids, legs, sizes=sizes)
    filled_entries(Driver(), run_id)
    run = db.session.get(StrategyRun, run_id)
    run.risk_settings = settings
    db.session.commit()
    return run_id


def risk_events(**where):
    db.session.expire_all()
    query = select(RiskEvent).order_by(RiskEvent.id)
    for name, value in where.items():
        query = query.where(getattr(RiskEvent, name) == value)
    return list(db.session.scalars(query))


def spin(monitor, until, seconds: float = WAIT_SECONDS):
    """Run the monitor's loop until `until()` is truthy (generous deadline, no fixed sleeps)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        monitor.run_once()
        db.session.expire_all()
        found = until()
        if found:
            return found
    raise AssertionError("condition not reached")


def watching(monitor, run_id):
    return lambda: run_id in monitor._books and monitor._states.get(run_id) is not None




class MarketMoved:
    """Sets the session broker's clock and prices for a test and puts them back afterwards: the other
    tests of the session expect the broker's start time and spot prices."""

    def __init__(self, sim) -> None:
        self.sim = sim
        status = sim.call("GET", "/sim/status")
        self.clock, self.frozen, self.spot = status["clock"], status["frozen"], dict(status["spot"])

    def restore(self) -> None:
        self.sim.post("/sim/clock", {"time": self.clock, "frozen": self.frozen})
        self.sim.post("/sim/prices", {"prices": self.spot})
