"""The risk monitor tests' fixture: alice with two paper accounts and a monitor on paper_app."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import User
from app.services.risk.monitor import RiskMonitor
from tests.support.exits import add_paper_accounts, engine_online
from tests.support.risk_monitor import MarketMoved


@pytest.fixture
def setup(paper_app, alice, broker, sim):
    """(user, [account ids], monitor) with SBIN at 800 and RELIANCE at 2,500 on a clock set to now."""
    paper_app.config["RISK_PRICE_MAX_AGE_SECONDS"] = 120.0  # the broker's clock is frozen in these tests
    engine_online()
    market = MarketMoved(sim)
    sim.post("/sim/clock", {"time": datetime.now(UTC).isoformat(), "frozen": True})
    sim.post("/sim/prices", {"prices": {"SBIN": 800, "RELIANCE": 2500}})
    user = db.session.scalar(select(User).where(User.username == "alice"))
    accounts = add_paper_accounts(alice, broker, sim, ["One", "Two"])
    monitor = RiskMonitor(paper_app)
    monitor.on_start()
    yield user, [a for a, _ in accounts], monitor
    monitor.on_stop()
    for _, key in accounts:
        sim.call("DELETE", f"/sim/accounts/{key}")
    market.restore()
