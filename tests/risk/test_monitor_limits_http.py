"""More rules over real HTTP against the paper broker: the trailing stop, the combined scope, and the
account daily loss limit (which closes the account's runs and blocks its entries for the day)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.domain.expiries import ist_today
from app.extensions import db
from app.models import TradingAccount
from app.models.execution import ExitRequest, StrategyRun
from app.models.services import ServiceLease
from app.models.types import utcnow
from app.services.execution.exits import request_exit
from app.services.risk.events import entries_blocked
from tests.support.exits import Driver, intents
from tests.support.risk_monitor import LONG, SHORT, entered, risk_events, rules, spin, watching


@pytest.mark.parametrize("trailing_type, value", [("amount", "20"), ("percentage", "2.5"), ("points", "20")])
def test_trailing_stop_arms_trails_and_fires_once(setup, sim, trailing_type, value):
    """Each distance is about ₹200 on the account's 10 shares bought near ₹800: ₹20 per share of
    base size; 2.5% of the ₹8,000 entry premium; 20 points × 10 shares."""
    user, ids, monitor = setup
    run_id = entered(user, ids[:1], [LONG], rules(trailing_type=trailing_type, trailing_value=value))
    spin(monitor, watching(monitor, run_id))
    entry = Decimal(str(monitor._books[run_id].accounts[0].entry_fills[1][0][1]))
    distance = entry * 10 * Decimal("0.025") if trailing_type == "percentage" else Decimal(200)
    sim.post("/sim/prices", {"symbol": "SBIN", "price": float(entry + 50)})  # +₹500: armed, stop ₹300

    def trail():
        state = monitor._states.get(run_id)
        return state is not None and state.trailing and state.trailing[0][1].armed and state.trailing[0][1]
    armed = spin(monitor, trail)
    assert armed.peak >= Decimal("490") and armed.stop == armed.peak - distance
    sim.post("/sim/prices", {"symbol": "SBIN", "price": float(entry + 40)})  # +₹400 > stop: holds
    evaluations = monitor.evaluations
    spin(monitor, lambda: monitor.evaluations > evaluations + 8)
    assert risk_events(event_type="trailing_sl") == []
    sim.post("/sim/prices", {"symbol": "SBIN", "price": float(entry + 25)})  # +₹250 ≤ stop ₹300: fires
    [event] = spin(monitor, lambda: risk_events(event_type="trailing_sl"))
    assert abs(event.threshold - armed.stop) <= Decimal("0.005") and event.action == "close_all"  # stored to the paisa
    [request] = db.session.scalars(select(ExitRequest)).all()
    assert request.run_account_id is not None and request.leg_number is None


def test_combined_scope_sums_accounts_and_closes_them_together(setup, sim):
    user, ids, monitor = setup
    run_id = entered(user, ids, [LONG], rules(scope="combined", max_loss="100"))
    spin(monitor, watching(monitor, run_id))
    sim.post("/sim/prices", {"symbol": "SBIN", "price": 690})  # −₹1,100 × 2 ≤ −₹2,000
    [event] = spin(monitor, lambda: risk_events(event_type="max_loss"))
    assert (event.account_id, event.threshold) == (None, Decimal("-2000.00"))
    [request] = db.session.scalars(select(ExitRequest)).all()
    assert (request.run_account_id, request.leg_number) == (None, None)


def test_per_account_thresholds_scale_with_each_accounts_size(setup, sim):
    user, ids, monitor = setup
    # Base size is the leg's 1 share (make_run's lots × lot size): ₹10 at base is ₹100 for 10
    # shares and ₹300 for 30.
    run_id = entered(user, ids, [LONG], rules(max_loss="10"), sizes={ids[0]: 1, ids[1]: 3})
    spin(monitor, watching(monitor, run_id))
    entry = {a.account_id: Decimal(str(a.entry_fills[1][0][1])) for a in monitor._books[run_id].accounts}
    low = max(entry.values())
    sim.post("/sim/prices", {"symbol": "SBIN", "price": float(low - 8)})  # −₹80+ and −₹240+: both hold
    evaluations = monitor.evaluations
    spin(monitor, lambda: monitor.evaluations > evaluations + 5)
    assert risk_events(event_type="max_loss") == []  # unscaled, −₹240 ≤ −₹10 would have closed Two
    sim.post("/sim/prices", {"symbol": "SBIN", "price": float(min(entry.values()) - 11)})
    events = spin(monitor, lambda: len(risk_events(event_type="max_loss")) == 2 and risk_events(event_type="max_loss"))
    assert {e.account_id: e.threshold for e in events} == {ids[0]: Decimal("-100.00"), ids[1]: Decimal("-300.00")}
    assert all(e.current_value <= e.threshold for e in events)
    assert {db.session.get(ExitRequest, e.exit_request_id).run_account_id for e in events} == \
        {a.id for a in db.session.get(StrategyRun, run_id).accounts}


def test_account_daily_loss_limit_closes_its_runs_and_blocks_entries_for_the_day(setup, sim):
    user, ids, monitor = setup
    account = db.session.get(TradingAccount, ids[0])
    account.daily_loss_limit = Decimal("500")
    db.session.commit()
    first = entered(user, ids[:1], [LONG], rules())
    second = entered(user, ids, [SHORT], rules())
    spin(monitor, lambda: first in monitor._books and second in monitor._books)
    sim.post("/sim/prices", {"symbol": "SBIN", "price": 740})  # −₹600 on the first run alone
    events = spin(monitor, lambda: len(risk_events(event_type="account_loss_limit")) == 2 and
                   risk_events(event_type="account_loss_limit"))
    assert {e.run_id for e in events} == {first, second} and {e.account_id for e in events} == {ids[0]}
    assert all(e.threshold == Decimal("-500.00") for e in events)
    assert entries_blocked(ids[0], ist_today(utcnow())) is not None
    assert entries_blocked(ids[1], ist_today(utcnow())) is None
    requests = db.session.scalars(select(ExitRequest).order_by(ExitRequest.id)).all()
    parts = {r.run_account_id for r in requests}
    mine = {a.id for run_id in (first, second) for a in db.session.get(StrategyRun, run_id).accounts
            if a.account_id == ids[0]}
    assert parts == mine  # the other account's part of the second run stays open
    Driver().run_until(lambda: all(db.session.get(ExitRequest, r.id).status == "done" for r in requests))


def _close_by_hand(user, run_id, run_account=None) -> None:
    request = request_exit(user, db.session.get(StrategyRun, run_id), run_account=run_account, purpose="manual",
                           reason="test")
    Driver().run_until(lambda: db.session.get(ExitRequest, request.id).status == "done")


def test_a_day_lost_in_runs_already_closed_blocks_the_account_with_one_event(setup, sim):
    user, ids, monitor = setup
    db.session.get(TradingAccount, ids[0]).daily_loss_limit = Decimal("500")
    db.session.commit()
    # Entered at 800 and closed by hand at 740 before the monitor ever saw the run: −₹600 realized.
    run_id = entered(user, ids[:1], [LONG], rules())
    sim.post("/sim/prices", {"symbol": "SBIN", "price": 740})
    _close_by_hand(user, run_id)
    [event] = spin(monitor, lambda: risk_events(event_type="account_loss_limit"))
    assert (event.account_id, event.run_id, event.action) == (ids[0], None, "none")
    fills = {i.purpose: i for i in intents(run_id=run_id)}  # market orders: the ask in, the bid out
    assert (event.threshold, event.current_value) == \
        (Decimal("-500.00"), (fills["manual"].average_price - fills["entry"].average_price) * 10)
    assert event.current_value <= Decimal("-600")
    assert "no open position to close" in event.detail
    assert entries_blocked(ids[0], ist_today(utcnow())) is not None
    assert entries_blocked(ids[1], ist_today(utcnow())) is None
    monitor._next_full_reload = 0.0  # a full reload sees the same day: no second event
    spin(monitor, lambda: monitor._next_full_reload > 0)
    assert len(risk_events(event_type="account_loss_limit")) == 1


def test_a_closed_part_of_an_open_run_counts_in_the_days_pnl(setup, sim):
    user, ids, monitor = setup
    db.session.get(TradingAccount, ids[0]).daily_loss_limit = Decimal("500")
    db.session.commit()
    shared = entered(user, ids, [LONG], rules())  # both accounts at 800
    sim.post("/sim/prices", {"symbol": "SBIN", "price": 760})
    mine = next(a for a in db.session.get(StrategyRun, shared).accounts if a.account_id == ids[0])
    _close_by_hand(user, shared, run_account=mine.id)  # One realizes −₹400; Two still holds
    alone = entered(user, ids[:1], [LONG], rules())  # One again, at 760
    spin(monitor, lambda: watching(monitor, shared)() and watching(monitor, alone)())
    evaluations = monitor.evaluations
    spin(monitor, lambda: monitor.evaluations > evaluations + 5)
    assert risk_events(event_type="account_loss_limit") == []  # −₹400 so far
    sim.post("/sim/prices", {"symbol": "SBIN", "price": 749})  # −₹110 on the new run: −₹510 today
    [event] = spin(monitor, lambda: risk_events(event_type="account_loss_limit"))
    assert (event.run_id, event.account_id) == (alone, ids[0]) and event.current_value <= Decimal("-510")
    [request] = [r for r in db.session.scalars(select(ExitRequest)) if r.purpose == "risk"]
    assert request.run_id == alone
    Driver().run_until(lambda: db.session.get(ExitRequest, request.id).status == "done")
    # Two's part of the shared run (no limit) is left open: only One's hand exit ever touched that run.
    assert [r.run_account_id for r in db.session.scalars(select(ExitRequest).where(ExitRequest.run_id == shared))] \
        == [mine.id]


def test_a_run_with_a_supertrend_exit_gets_its_legs_history_and_is_watched(setup, sim):
    user, ids, monitor = setup
    supertrend = {"enabled": True, "period": 7, "multiplier": "3", "timeframe": "1m", "exit": "breakout",
                  "action": "close_all"}
    run_id = entered(user, ids[:1], [LONG], rules(supertrend=supertrend))
    watch = spin(monitor, lambda: (w := monitor._watches.get(run_id)) is not None and w.loaded and w)
    # The broker's clock was just moved to now: its history holds the minutes since then only.
    assert watch.error is None and any(watch.candles.closes[0])
    assert risk_events(event_type="supertrend") == []


def test_a_risk_exit_that_fails_is_asked_for_again_and_then_closes(setup, sim):
    user, ids, monitor = setup
    monitor.failed_exit_retry = 0.0
    run_id = entered(user, ids[:1], [LONG], rules(max_loss="100"))
    spin(monitor, watching(monitor, run_id))
    for k in [a["apikey"] for a in sim.call("GET", "/sim/accounts")["accounts"]]:  # the RMS refuses everything
        sim.set_faults(k, reject_rate=1.0, reject_reason="rms_block", routes=["placeorder"])
    try:
        sim.post("/sim/prices", {"symbol": "SBIN", "price": 690})
        spin(monitor, lambda: risk_events(event_type="max_loss"))
        [first] = db.session.scalars(select(ExitRequest)).all()
        Driver().run_until(lambda: db.session.get(ExitRequest, first.id).status == "failed")
    finally:
        sim.call("DELETE", "/sim/faults")
    requests = spin(monitor, lambda: (rows := db.session.scalars(select(ExitRequest).order_by(ExitRequest.id))
                                      .all()) and len(rows) == 2 and rows)
    assert requests[0].status == "failed" and requests[1].purpose == "risk"
    Driver().run_until(lambda: db.session.get(ExitRequest, requests[1].id).status == "done")
    assert [e.event_type for e in risk_events(run_id=run_id)] == ["max_loss", "max_loss"]
    assert risk_events(run_id=run_id)[0].outcome == "failed"


def test_subscriptions_dropped_by_the_market_feed_are_taken_again(setup, sim, paper_app):
    from app.services.monitors import feed_manager
    from app.services.risk.monitor import OWNER

    user, ids, monitor = setup
    run_id = entered(user, ids[:1], [LONG], rules(max_loss="100"))
    spin(monitor, watching(monitor, run_id))
    manager = feed_manager(paper_app)
    [host] = list(monitor._subscribed)
    manager.drop_host(host)  # as the market feed does at market close
    assert OWNER not in manager.owners(host, {"symbol": "SBIN", "exchange": "NSE"})
    monitor.refresh()
    assert OWNER in manager.owners(host, {"symbol": "SBIN", "exchange": "NSE"})


def test_max_profit_closes_the_account(setup, sim):
    user, ids, monitor = setup
    run_id = entered(user, ids[:1], [LONG], rules(max_profit="50"))  # ₹500 for 10 shares
    spin(monitor, watching(monitor, run_id))
    sim.post("/sim/prices", {"symbol": "SBIN", "price": 860})
    [event] = spin(monitor, lambda: risk_events(event_type="max_profit"))
    assert (event.action, event.threshold) == ("close_all", Decimal("500.00")) and event.current_value >= 500
    [request] = db.session.scalars(select(ExitRequest)).all()
    Driver().run_until(lambda: db.session.get(ExitRequest, request.id).status == "done")


def test_leg_target_closes_only_its_leg(setup, sim):
    user, ids, monitor = setup
    legs = {"1": {"stop_loss": None, "target": ["percentage", "5"]}, "2": {"stop_loss": None, "target": None}}
    run_id = entered(user, ids[:1], [LONG, SHORT], rules(legs=legs))
    spin(monitor, watching(monitor, run_id))
    sim.post("/sim/prices", {"symbol": "SBIN", "price": 850})  # +6.25 % on the BUY leg
    [event] = spin(monitor, lambda: risk_events(event_type="leg_tp"))
    [request] = db.session.scalars(select(ExitRequest)).all()
    assert (event.action, request.leg_number) == ("close_partial", 1)


def test_close_partial_max_loss_closes_the_losing_leg_only(setup, sim):
    user, ids, monitor = setup
    run_id = entered(user, ids[:1], [LONG, SHORT], rules(max_loss="100", max_loss_action="close_partial"))
    spin(monitor, watching(monitor, run_id))
    # RELIANCE down ₹50 first (+₹250 on the short), then SBIN down ₹140 (−₹1,400 on the long):
    # −₹1,150 ≤ −₹1,000, and only the long is losing.
    sim.post("/sim/prices", {"symbol": "RELIANCE", "price": 2450})
    spin(monitor, lambda: (live := monitor._live.get(run_id)) and live["units"]
         and Decimal(live["units"][0]["pnl"]) > 200)
    sim.post("/sim/prices", {"symbol": "SBIN", "price": 660})
    [event] = spin(monitor, lambda: risk_events(event_type="max_loss"))
    requests = db.session.scalars(select(ExitRequest)).all()
    assert event.action == "close_partial" and [r.leg_number for r in requests] == [1]


def test_account_profit_limit_blocks_entries_too(setup, sim):
    user, ids, monitor = setup
    account = db.session.get(TradingAccount, ids[0])
    account.daily_profit_limit = Decimal("300")
    db.session.commit()
    run_id = entered(user, ids[:1], [LONG], rules())
    spin(monitor, lambda: run_id in monitor._books)
    sim.post("/sim/prices", {"symbol": "SBIN", "price": 840})
    [event] = spin(monitor, lambda: risk_events(event_type="account_profit_limit"))
    assert event.threshold == Decimal("300.00") and entries_blocked(ids[0], ist_today(utcnow())) is not None


def test_a_blocked_accounts_close_that_failed_is_asked_for_again_until_the_account_is_flat(setup, sim):
    """A daily limit's close whose rounds are all rejected: the account stays blocked and is closed
    again (same event type) once the retry wait has passed."""
    user, ids, monitor = setup
    monitor.failed_exit_retry = 0.0
    db.session.get(TradingAccount, ids[0]).daily_loss_limit = Decimal("500")
    db.session.commit()
    run_id = entered(user, ids[:1], [LONG], rules())
    spin(monitor, watching(monitor, run_id))
    keys = [a["apikey"] for a in sim.call("GET", "/sim/accounts")["accounts"]]
    for k in keys:  # the RMS refuses everything
        sim.set_faults(k, reject_rate=1.0, reject_reason="rms_block", routes=["placeorder"])
    try:
        sim.post("/sim/prices", {"symbol": "SBIN", "price": 740})  # −₹600
        spin(monitor, lambda: risk_events(event_type="account_loss_limit"))
        [first] = db.session.scalars(select(ExitRequest)).all()
        Driver().run_until(lambda: db.session.get(ExitRequest, first.id).status == "failed")
    finally:
        sim.call("DELETE", "/sim/faults")
    assert entries_blocked(ids[0], ist_today(utcnow())) is not None

    requests = spin(monitor, lambda: (rows := db.session.scalars(select(ExitRequest).order_by(ExitRequest.id))
                                      .all()) and len(rows) == 2 and rows)
    assert (requests[1].purpose, requests[1].run_account_id) == ("risk", first.run_account_id)
    Driver().run_until(lambda: db.session.get(ExitRequest, requests[1].id).status == "done")
    events = risk_events(event_type="account_loss_limit")
    assert len(events) == 2 and events[0].threshold == events[1].threshold == Decimal("-500.00")
    assert "asked again" in events[1].detail or "asked again" in (db.session.get(ExitRequest, requests[1].id)
                                                                 .reason or "")
    for _ in range(3):  # refreshes read the blocks again: the account is flat, nothing is asked a third time
        monitor.refresh()
    db.session.expire_all()
    assert len(db.session.scalars(select(ExitRequest)).all()) == 2


def test_a_blocked_accounts_close_refused_while_the_engine_was_offline_is_asked_for_again(setup, sim):
    user, ids, monitor = setup
    db.session.get(TradingAccount, ids[0]).daily_loss_limit = Decimal("500")
    db.session.commit()
    run_id = entered(user, ids[:1], [LONG], rules())
    spin(monitor, watching(monitor, run_id))
    leases = db.session.scalars(select(ServiceLease)).all()
    for lease in leases:  # no leader: request_exit refuses (EngineOffline)
        lease.expires_at = utcnow()
    db.session.commit()
    sim.post("/sim/prices", {"symbol": "SBIN", "price": 740})  # −₹600
    spin(monitor, lambda: risk_events(event_type="account_loss_limit"))
    assert db.session.scalars(select(ExitRequest)).all() == []
    assert entries_blocked(ids[0], ist_today(utcnow())) is not None
    for _ in range(3):  # refreshes within the retry wait: the refusal is not asked (nor written) again
        monitor.refresh()
    [refused] = risk_events(run_id=run_id)
    assert refused.action == "none" and "could not be requested" in refused.detail

    monitor.failed_exit_retry = 0.0

    for lease in leases:  # the leader is back
        lease.expires_at = utcnow() + timedelta(hours=1)
    db.session.commit()
    [request] = spin(monitor, lambda: db.session.scalars(select(ExitRequest)).all())
    assert request.purpose == "risk"
    Driver().run_until(lambda: db.session.get(ExitRequest, request.id).status == "done")
    assert [e.event_type for e in risk_events(run_id=run_id)] == ["account_loss_limit", "account_loss_limit"]
