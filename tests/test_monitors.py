"""Background services of issue 4, each run once against the paper broker."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models.accounts import TradingAccount
from app.models.audit import ActivityLog
from app.services.accounts import AccountInput, create_account
from app.services.connection import PingOutcome, next_status
from app.services.monitors import AccountDataRefresher, ConnectionMonitor, MarketDataFeed, last_prices
from tests.helpers import make_user, wait_until


@pytest.mark.parametrize(("current", "failures", "outcome", "expected"), [
    ("connected", 0, PingOutcome(True, broker="paper"), ("connected", 0)),
    ("connected", 0, PingOutcome(False, error="down"), ("connected", 1)),
    ("connected", 2, PingOutcome(False, error="down"), ("disconnected", 3)),
    ("disconnected", 5, PingOutcome(True, broker="paper"), ("connected", 0)),
    ("connected", 0, PingOutcome(False, error="403", auth_failed=True), ("auth_error", 1)),
    ("unknown", 1, PingOutcome(False, error="down"), ("unknown", 2)),
])
def test_connection_status_transitions(current, failures, outcome, expected):
    assert next_status(current, failures, outcome) == expected


@pytest.fixture
def monitored(app_factory, broker, sim):
    # The session's paper broker runs a frozen January clock: accept its tick times.
    application = app_factory(PING_RETRY_SECONDS=0.01, BROKER_READ_TIMEOUT=3.0, PRICE_MAX_TICK_AGE_SECONDS=0)
    with application.app_context():
        owner = make_user(application, "alice")
        from app.models.users import User

        user = db.session.get(User, owner.id)
        keys = [sim.new_account(), sim.new_account()]
        accounts = [create_account(user, AccountInput(name, broker.url, broker.ws_url, key))
                    for name, key in zip(("Primary", "Backup"), keys, strict=True)]
        ids = [a.id for a in accounts]
        yield application, keys, ids
        for key in keys:
            sim.call("DELETE", f"/sim/accounts/{key}")


def _account(account_id: int) -> TradingAccount:
    db.session.expire_all()
    return db.session.get(TradingAccount, account_id)


def test_three_failed_pings_disconnect_and_market_data_fails_over_then_back(monitored, sim):
    _application, keys, (primary_id, backup_id) = monitored
    ConnectionMonitor().run_once()  # records the current source
    sim.post("/sim/faults", {"apikey": keys[0], "drop_rate": 1.0, "routes": ["ping"]})
    ConnectionMonitor().run_once()
    primary = _account(primary_id)
    assert primary.connection_status == "disconnected" and primary.consecutive_failures == 3
    assert _account(backup_id).connection_status == "connected"
    sim.call("DELETE", "/sim/faults")
    ConnectionMonitor().run_once()
    assert _account(primary_id).connection_status == "connected"
    actions = db.session.scalars(select(ActivityLog.action).where(ActivityLog.category == "monitor")
                                 .order_by(ActivityLog.id)).all()
    assert actions == ["account_connection_changed", "market_data_failover",
                       "account_connection_changed", "market_data_failback"]


def test_expired_broker_login_is_flagged_at_once(monitored, sim):
    _application, keys, (primary_id, _backup_id) = monitored
    sim.post("/sim/faults", {"apikey": keys[0], "session_expired": True})
    ConnectionMonitor().run_once()
    assert _account(primary_id).connection_status == "auth_error"


def test_refresher_fills_the_cache(monitored):
    _application, _keys, (primary_id, backup_id) = monitored
    AccountDataRefresher().run_once()
    for account_id in (primary_id, backup_id):
        account = _account(account_id)
        assert Decimal(account.last_funds["available_cash"]) == Decimal("1000000")
        assert account.last_positions == [] and account.last_data_at is not None


def test_feed_streams_index_prices_from_the_market_data_account(monitored, sim):
    application, _keys, _ids = monitored
    sim.set_spot(NIFTY=26012.35)
    feed = MarketDataFeed()
    feed.on_start()
    try:
        assert feed.run_once().startswith("1 hosts")
        cache = last_prices(application)
        reading = wait_until(lambda: cache.peek("NIFTY", "NSE_INDEX"), message="no NIFTY tick reached the cache")
        assert reading.ltp == Decimal("26012.35")
    finally:
        feed.on_stop()


def test_feed_closes_connections_when_the_market_closes(monitored, sim):
    feed = MarketDataFeed()
    feed.on_start()
    try:
        feed.run_once()
        assert list(feed.manager.status()) == [next(iter(feed.sources))]
        feed.on_idle()
        assert feed.sources == {} and feed.manager.status() == {}
        feed.run_once()  # market open again: reconnects
        assert len(feed.manager.status()) == 1
    finally:
        feed.on_stop()


def test_monitor_writes_nothing_once_the_lease_is_lost(monitored, sim):
    _application, keys, (primary_id, _backup_id) = monitored
    sim.post("/sim/faults", {"apikey": keys[0], "drop_rate": 1.0, "routes": ["ping"]})
    monitor = ConnectionMonitor()
    monitor.still_leading = lambda: False  # the lease was lost while the pings were in flight
    assert monitor.run_once().startswith("lease lost")
    assert _account(primary_id).connection_status == "connected"
    assert db.session.scalar(select(ActivityLog).where(ActivityLog.category == "monitor")) is None


def test_a_good_data_refresh_after_an_outage_is_a_logged_recovery(monitored, sim):
    _application, keys, (primary_id, _backup_id) = monitored
    sim.post("/sim/faults", {"apikey": keys[0], "drop_rate": 1.0, "routes": ["ping"]})
    ConnectionMonitor().run_once()
    sim.call("DELETE", "/sim/faults")
    AccountDataRefresher().run_once()
    assert _account(primary_id).connection_status == "connected"
    changes = db.session.scalars(select(ActivityLog.details).where(
        ActivityLog.action == "account_connection_changed").order_by(ActivityLog.id)).all()
    assert [(c["from"], c["to"]) for c in changes] == [("connected", "disconnected"), ("disconnected", "connected")]
