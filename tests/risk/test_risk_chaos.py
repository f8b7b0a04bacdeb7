"""Chaos for the risk engine (issue 10): three `flask services` processes compete for the lease, the
order routes lose answers and fail with HTTP 500, and the leader is killed with -9 right after a
breach. The exit happens exactly once, every account ends flat, and the risk event names the exit
intents. Runs on SQLite (row lease) and, with TEST_DATABASE_URL, PostgreSQL (advisory lock).
"""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from app.broker.client import OpenAlgoClient
from app.extensions import db
from app.models import TradingAccount
from app.models.execution import ExitRequest, StrategyRun
from app.models.risk import RiskEvent
from app.services.encryption import get_encryptor
from config import new_fernet_key
from tests.execution.test_crash_restart import BOOT_SECONDS, Leaders, _leader_pid
from tests.helpers import make_user, wait_until
from tests.support.execution import Leg, broker_net, intents, make_run
from tests.support.risk_monitor import MarketMoved

SYMBOL = "SBIN"
LEGS = [Leg(SYMBOL, "BUY", lots=10, lot_size=1, freeze_qty=1000, exchange="NSE")]


def _account(app, user_id: int, name: str, broker, key: str, primary: bool) -> int:
    row = TradingAccount(user_id=user_id, account_name=name, host_url=broker.url, websocket_url=broker.ws_url,
                         api_key_encrypted=get_encryptor().encrypt(key), api_key_last4=key[-4:], is_paper=True,
                         is_primary=primary, connection_status="connected")
    db.session.add(row)
    db.session.commit()
    return row.id


@pytest.fixture
def chaos(app_factory, database_url, broker, sim, tmp_path):
    key = new_fernet_key()
    app = app_factory(ENCRYPTION_KEY=key)
    keys = [sim.new_account(), sim.new_account()]
    clients = [OpenAlgoClient(broker.url, k) for k in keys]
    leaders = Leaders(database_url, key, tmp_path)
    # The deterministic broker's clock is frozen (set to now below): its trade times do not advance.
    leaders.base_env.update({"RISK_PRICE_MAX_AGE_SECONDS": "600", "RISK_REFRESH_SECONDS": "0.5"})
    market = MarketMoved(sim)
    sim.post("/sim/clock", {"time": datetime.now(UTC).isoformat(), "frozen": True})
    sim.post("/sim/prices", {"symbol": SYMBOL, "price": 800})
    with app.app_context():
        user = make_user(app, "alice")
        accounts = [_account(app, user.id, f"Paper {n}", broker, k, n == 1) for n, k in enumerate(keys, 1)]
        try:
            yield {"user": user, "accounts": accounts, "keys": keys, "clients": clients, "leaders": leaders}
        finally:
            leaders.stop_all()
            sim.call("DELETE", "/sim/faults")
            for client in clients:
                client.close()
            for k in keys:
                sim.call("DELETE", f"/sim/accounts/{k}")
            market.restore()


def _expire() -> None:
    db.session.expire_all()
    db.session.commit()


def test_breach_under_faults_and_a_killed_leader_exits_exactly_once(chaos, sim):
    s, leaders = chaos, chaos["leaders"]
    run_id = make_run(s["user"].id, s["accounts"], LEGS)
    run = db.session.get(StrategyRun, run_id)
    # Combined scope: 10 shares per account at base size 10 → factor 1 each; ₹1,000 summed to ₹2,000.
    run.risk_settings = {"version": 1, "scope": "combined", "max_loss": "1000", "max_loss_action": "close_all",
                         "max_profit": None, "max_profit_action": "close_all", "trailing_type": None,
                         "trailing_value": None, "trailing_action": "close_all", "supertrend": {"enabled": False},
                         "legs": {}}
    db.session.commit()
    procs = [leaders.start(f"leader-{n}", read_timeout=2.0) for n in (1, 2, 3)]

    def entered() -> bool:
        _expire()
        for proc, n in zip(procs, (1, 2, 3), strict=True):
            if proc.poll() is not None:
                raise AssertionError(f"leader-{n} exited:\n{leaders.output(f'leader-{n}')}")
        return [i.state for i in intents(run_id)] == ["filled", "filled"]

    wait_until(entered, timeout=BOOT_SECONDS, interval=0.2, message="the run was not entered")
    for k in s["keys"]:
        sim.set_faults(k, lost_response_rate=0.3, error_rate=0.2, routes=["placeorder"])
    sim.post("/sim/prices", {"symbol": SYMBOL, "price": 680})  # −₹1,200 × 2 accounts ≤ −₹2,000

    def requested() -> ExitRequest | None:
        _expire()
        return db.session.scalars(select(ExitRequest).where(ExitRequest.run_id == run_id)).first()

    request = wait_until(requested, timeout=60, interval=0.02, message="no exit was requested")
    leader = _leader_pid()
    victim = next(p for p in procs if p.pid == leader)
    os.kill(victim.pid, signal.SIGKILL)
    assert victim.wait(60) == -signal.SIGKILL

    def flat() -> bool:
        _expire()
        row = db.session.get(ExitRequest, request.id)
        return row.status == "done" and all(broker_net(c, SYMBOL, exchange="NSE") == 0 for c in s["clients"])

    wait_until(flat, timeout=120, interval=0.2, message="the run was not closed")
    _expire()
    assert db.session.scalars(select(ExitRequest.id).where(ExitRequest.run_id == run_id)).all() == [request.id]
    # One decision, one event. (A busy machine may also log a prices_unreliable span while a new
    # leader's feed connects: that is the guard holding, not a second decision.)
    events = db.session.scalars(select(RiskEvent).where(RiskEvent.run_id == run_id)).all()
    decisions = [e for e in events if e.event_type != "prices_unreliable"]
    assert len(decisions) == 1, [(e.event_type, e.action, e.detail, e.at) for e in events]
    assert all(e.action == "held" for e in events if e.event_type == "prices_unreliable")
    [event] = decisions
    closes = [i for i in intents(run_id) if i.purpose == "risk"]
    filled = [i for i in closes if i.filled_quantity]
    assert (event.event_type, event.action, event.account_id, event.outcome) == ("max_loss", "close_all", None,
                                                                                 "filled")
    assert event.exit_request_id == request.id and event.intent_ids == [i.id for i in closes]
    for account_id, client in zip(s["accounts"], s["clients"], strict=True):
        # Exactly once: the broker holds one filled SELL of 10 per account, however many attempts it took.
        sells = [o for o in client.orderbook() if o.action == "SELL" and o.status == "complete"]
        assert sum(o.quantity for o in sells) == 10, [(o.order_id, o.quantity, o.status) for o in sells]
        assert sum(i.filled_quantity for i in filled if i.account_id == account_id) == 10
    db.session.expire_all()
    assert db.session.get(StrategyRun, run_id).status == "closed"
