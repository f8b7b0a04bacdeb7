"""The risk monitor over real HTTP and WebSocket against the paper broker: a price moved with the
admin API reaches the monitor as a tick, and each rule closes what it should, exactly once, with
one risk event naming the exit intents; alert-only sends nothing; unreliable prices hold."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.domain.expiries import ist_today
from app.extensions import db
from app.models.execution import ExitRequest, StrategyRun
from app.strategy.run_view import risk_json
from tests.support.exits import Driver, intents
from tests.support.risk_monitor import LONG, SHORT, entered, risk_events, rules, spin, watching


def test_max_loss_breach_closes_each_account_once_with_one_event_naming_its_intents(setup, sim):
    user, ids, monitor = setup
    # 10 shares per account at base size 1: ₹100 per share of base size scales to ₹1,000 per account.
    run_id = entered(user, ids, [LONG], rules(max_loss="100"))
    spin(monitor, watching(monitor, run_id))
    assert risk_events(run_id=run_id) == [] and db.session.scalars(select(ExitRequest)).all() == []

    sim.post("/sim/prices", {"symbol": "SBIN", "price": 880})  # a profit: nothing happens
    spin(monitor, lambda: monitor.evaluations > 3)
    assert risk_events(run_id=run_id) == []
    monitor.refresh()  # writes the live view the run page shows (any web worker reads it)
    db.session.expire_all()
    risk = risk_json(db.session.get(StrategyRun, run_id))
    assert risk["rules"][:2] == ["Scope: per account", "Max loss ₹100 at base size (close all)"]
    live = risk["live"]
    assert live["reliable"] is True and [u["max_loss"] for u in live["units"]] == ["-1000.00", "-1000.00"]
    assert all(Decimal(u["pnl"]) > 0 for u in live["units"]) and live["prices"][0]["symbol"] == "SBIN"

    sim.post("/sim/prices", {"symbol": "SBIN", "price": 690})  # −₹1,100 per account ≤ −₹1,000
    events = spin(monitor, lambda: len(risk_events(event_type="max_loss")) == 2 and risk_events(event_type="max_loss"))
    for _ in range(5):  # more ticks of the breached price: nothing more is asked for
        monitor.run_once()
    requests = db.session.scalars(select(ExitRequest).order_by(ExitRequest.id)).all()
    assert [(r.purpose, r.leg_number) for r in requests] == [("risk", None), ("risk", None)]
    assert sorted(e.account_id for e in events) == sorted(ids)
    for event in events:
        assert (event.action, event.threshold, event.exit_request_id in {r.id for r in requests}) == \
            ("close_all", Decimal("-1000.00"), True)
        assert event.current_value <= Decimal("-1000")

    driver = Driver()
    driver.run_until(lambda: all(db.session.get(ExitRequest, r.id).status == "done" for r in requests))
    monitor.refresh()
    assert run_id not in monitor._books  # flat: not watched any more
    closes = [i for i in intents(run_id=run_id) if i.purpose == "risk"]
    assert sorted((i.account_id, i.action, i.quantity, i.state) for i in closes) == \
        sorted((a, "SELL", 10, "filled") for a in ids)
    for event in risk_events(event_type="max_loss"):
        mine = [i.id for i in closes if i.account_id == event.account_id]
        assert event.outcome == "filled" and event.intent_ids == mine
    assert len(risk_events(run_id=run_id)) == 2


def test_alert_only_writes_one_event_and_sends_nothing(setup, sim):
    user, ids, monitor = setup
    run_id = entered(user, ids[:1], [LONG], rules(max_loss="100", max_loss_action="alert_only"))
    spin(monitor, watching(monitor, run_id))
    sim.post("/sim/prices", {"symbol": "SBIN", "price": 690})
    [event] = spin(monitor, lambda: risk_events(event_type="max_loss"))
    evaluations = monitor.evaluations
    spin(monitor, lambda: monitor.evaluations > evaluations + 5)
    assert len(risk_events(event_type="max_loss")) == 1 and event.action == "alert_only"
    assert db.session.scalars(select(ExitRequest)).all() == []


def test_an_alert_is_not_repeated_by_a_new_leader(setup, sim, paper_app):
    """The leader dies right after an alert (before its once-a-second state write): its successor
    reads that the alert was given and does not give it again."""
    from app.services.risk.monitor import RiskMonitor

    user, ids, monitor = setup
    run_id = entered(user, ids[:1], [LONG], rules(max_loss="100", max_loss_action="alert_only"))
    spin(monitor, watching(monitor, run_id))
    monitor.refresh_every = 30.0  # no periodic state write in this test's window
    monitor._next_refresh = time.monotonic() + 30.0
    sim.post("/sim/prices", {"symbol": "SBIN", "price": 690})
    spin(monitor, lambda: risk_events(event_type="max_loss"))
    successor = RiskMonitor(paper_app)  # the first is never stopped (kill -9): nothing more is saved
    successor.on_start()
    try:
        spin(successor, watching(successor, run_id))
        evaluations = successor.evaluations
        spin(successor, lambda: successor.evaluations > evaluations + 3)
    finally:
        successor.on_stop()
    assert len(risk_events(event_type="max_loss")) == 1


def test_leg_stop_closes_only_that_leg(setup, sim):
    user, ids, monitor = setup
    legs = {"1": {"stop_loss": ["points", "50"], "target": None}, "2": {"stop_loss": None, "target": None}}
    run_id = entered(user, ids[:1], [LONG, SHORT], rules(legs=legs))
    spin(monitor, watching(monitor, run_id))
    sim.post("/sim/prices", {"symbol": "SBIN", "price": 740})  # BUY at 800, stop 750
    [event] = spin(monitor, lambda: risk_events(event_type="leg_sl"))
    [entry] = [i for i in intents(run_id=run_id) if i.purpose == "entry" and i.leg_number == 1]
    assert (event.action, event.threshold) == ("close_partial", entry.average_price - 50)
    [request] = db.session.scalars(select(ExitRequest)).all()
    assert (request.leg_number, request.purpose) == (1, "risk")
    Driver().run_until(lambda: db.session.get(ExitRequest, request.id).status == "done")
    assert [(i.leg_number, i.action, i.quantity) for i in intents(run_id=run_id) if i.purpose == "risk"] == \
        [(1, "SELL", 10)]


def test_stale_prices_hold_every_rule_and_say_so_once(setup, sim, paper_app):
    user, ids, monitor = setup
    run_id = entered(user, ids[:1], [LONG], rules(max_loss="100"))
    spin(monitor, watching(monitor, run_id))
    monitor.prices.max_age = timedelta(seconds=2)
    # The broker's clock an hour back: every tick's trade time is an hour old, the market is not live
    # (so no quote of the broker's may stand in for the feed either).
    sim.post("/sim/clock", {"time": (datetime.now(UTC) - timedelta(hours=1)).isoformat(), "frozen": True})
    board = monitor.prices
    spin(monitor, lambda: not any(board.host_live(host, datetime.now(UTC)) for host in board.live_hosts()))
    sim.post("/sim/prices", {"symbol": "SBIN", "price": 600})  # far past max loss, but unreliable
    [event] = spin(monitor, lambda: risk_events(event_type="prices_unreliable"))
    evaluations = monitor.evaluations
    spin(monitor, lambda: monitor.evaluations > evaluations + 5)
    assert len(risk_events(event_type="prices_unreliable")) == 1 and event.action == "held"
    assert risk_events(event_type="max_loss") == [] and db.session.scalars(select(ExitRequest)).all() == []


@pytest.mark.parametrize(("bad", "words"), [("zero", "zero or negative price"), ("text", "not a number")])
def test_a_bad_tick_holds_the_rules_until_a_good_price_arrives(setup, sim, paper_app, bad, words):
    from app.services.monitors import last_prices

    user, ids, monitor = setup
    run_id = entered(user, ids[:1], [LONG], rules(max_loss="100"))
    spin(monitor, watching(monitor, run_id))
    sim.set_faults(bad_ticks=bad)  # every market frame of the broker carries a bad ltp
    try:
        sim.post("/sim/prices", {"symbol": "SBIN", "price": 690})  # −₹1,100: past max loss, but not seen
        [event] = spin(monitor, lambda: risk_events(event_type="prices_unreliable"))
        assert event.action == "held" and words in event.detail and "NSE:SBIN" in event.detail
        evaluations = monitor.evaluations
        spin(monitor, lambda: monitor.evaluations > evaluations + 5)
        assert risk_events(event_type="max_loss") == [] and db.session.scalars(select(ExitRequest)).all() == []
        assert last_prices(paper_app).peek("SBIN", "NSE").ltp > 690  # the cache kept the last good price
    finally:
        sim.call("DELETE", "/sim/faults")
    sim.post("/sim/prices", {"symbol": "SBIN", "price": 689})  # a good tick: the breach is acted on, once
    [breach] = spin(monitor, lambda: risk_events(event_type="max_loss"))
    assert breach.current_value <= Decimal("-1100") and breach.action == "close_all"
    [span] = risk_events(event_type="prices_unreliable")
    assert "reliable again after" in span.detail and span.current_value > 0
    [request] = db.session.scalars(select(ExitRequest)).all()
    Driver().run_until(lambda: db.session.get(ExitRequest, request.id).status == "done")
    assert len(risk_events(event_type="max_loss")) == 1


def _nse_today(user, *, open_all_day: bool) -> None:
    """Today's NSE session in the trading calendar: open all day (a special session) or a holiday."""
    from app.services import calendar

    day = ist_today(datetime.now(UTC))
    if open_all_day:
        calendar.add_special_session(user, day, ["NSE"], dtime(0, 0), dtime(23, 59, 59), "test: open all day")
    else:
        calendar.add_holidays(user, day, ["NSE"], "test: closed")
    calendar.invalidate_cache()


def test_a_quiet_hedge_is_read_by_quote_and_does_not_hold_the_max_loss(setup, sim):
    user, ids, monitor = setup
    _nse_today(user, open_all_day=True)
    sim.post("/sim/clock", {"time": datetime.now(UTC).isoformat(), "frozen": False})  # trades carry now
    run_id = entered(user, ids[:1], [LONG, SHORT], rules(max_loss="100"))
    spin(monitor, watching(monitor, run_id))
    monitor.prices.max_age, monitor.quotes.every = timedelta(seconds=4), 0.5
    # SBIN keeps trading; RELIANCE (the other leg) never trades again: without a quote it would be
    # stale after 4 s and hold every rule of the run (a quote is asked for after 0.5 s).
    quiet_since = time.monotonic()
    price = 800.0

    def traded_a_while():
        nonlocal price
        price = 800.05 if price == 800.0 else 800.0
        sim.post("/sim/prices", {"symbol": "SBIN", "price": price})
        return time.monotonic() - quiet_since > 6 and monitor.quotes.reads >= 2
    spin(monitor, traded_a_while)
    assert risk_events(event_type="prices_unreliable") == []
    sim.post("/sim/prices", {"symbol": "SBIN", "price": 690})  # −₹1,100 on SBIN
    [event] = spin(monitor, lambda: risk_events(event_type="max_loss"))
    assert event.action == "close_all" and risk_events(event_type="prices_unreliable") == []
    [request] = db.session.scalars(select(ExitRequest)).all()
    Driver().run_until(lambda: db.session.get(ExitRequest, request.id).status == "done")
    assert sorted((i.leg_number, i.action) for i in intents(run_id=run_id) if i.purpose == "risk") == \
        [(1, "SELL"), (2, "BUY")]


def test_no_quote_stands_in_for_a_quiet_leg_while_its_exchange_is_closed(setup, sim):
    user, ids, monitor = setup
    _nse_today(user, open_all_day=False)  # a holiday: the last prices are the close's, not news
    sim.post("/sim/clock", {"time": datetime.now(UTC).isoformat(), "frozen": False})
    run_id = entered(user, ids[:1], [LONG, SHORT], rules(max_loss="100"))
    spin(monitor, watching(monitor, run_id))
    monitor.prices.max_age, monitor.quotes.every = timedelta(seconds=2), 0.5

    def sbin_trades():
        sim.post("/sim/prices", {"symbol": "SBIN", "price": 800.05})
        sim.post("/sim/prices", {"symbol": "SBIN", "price": 800.0})
        return risk_events(event_type="prices_unreliable")
    [event] = spin(monitor, sbin_trades)
    assert "NSE:RELIANCE: stale" in event.detail and monitor.quotes.reads == 0


def test_refresh_reloads_only_the_runs_whose_intents_moved(setup, sim):
    user, ids, monitor = setup
    quiet = entered(user, ids[:1], [LONG], rules(max_loss="100000"))
    moving = entered(user, ids[1:2], [LONG], rules(max_loss="100000"))
    spin(monitor, lambda: watching(monitor, quiet)() and watching(monitor, moving)())
    before = dict(monitor._books)
    # One account of `moving` closes its leg by hand (through the exit manager): only its book moves.
    from app.services.execution.exits import request_exit

    request_exit(user, db.session.get(StrategyRun, moving), purpose="manual", reason="test")
    Driver().run_until(lambda: db.session.scalars(select(ExitRequest)).one().status == "done")
    monitor.refresh()
    assert monitor._books[quiet] is before[quiet]  # not read again
    assert moving not in monitor._books  # flat now: not watched any more
    monitor._next_full_reload = 0.0  # the periodic full reload reads every run again
    monitor.refresh()
    assert monitor._books[quiet] is not before[quiet] and monitor._books[quiet].run_id == quiet


def test_a_tick_re_evaluates_only_the_runs_holding_its_instrument(setup, sim):
    user, ids, monitor = setup
    sbin_run = entered(user, ids[:1], [LONG], rules(max_loss="1000"))
    reliance_run = entered(user, ids[:1], [SHORT], rules(max_loss="1000"))
    spin(monitor, lambda: watching(monitor, sbin_run)() and watching(monitor, reliance_run)())
    monitor.refresh_every = 30.0  # no sweep of every run in this test's window
    monitor._next_refresh = time.monotonic() + 30.0
    before = dict(monitor._evaluated_at)
    sim.post("/sim/prices", {"symbol": "SBIN", "price": 801})
    spin(monitor, lambda: monitor._evaluated_at.get(sbin_run, 0.0) > before[sbin_run])
    assert monitor._evaluated_at[reliance_run] == before[reliance_run]


def test_a_new_run_counts_only_its_own_fills_and_its_rules_fire_afresh(setup, sim):
    """Run 1 closes at a max loss; run 2 of the same leg on the same account starts at ₹0 (run 1's
    loss is not its own) and its max loss fires again, once, for run 2."""
    user, ids, monitor = setup
    first = entered(user, ids[:1], [LONG], rules(max_loss="50"))  # ₹500 on the 10 shares
    spin(monitor, watching(monitor, first))
    sim.post("/sim/prices", {"symbol": "SBIN", "price": 740})
    [request] = spin(monitor, lambda: db.session.scalars(select(ExitRequest)).all())
    Driver().run_until(lambda: db.session.get(ExitRequest, request.id).status == "done")
    sim.post("/sim/prices", {"symbol": "SBIN", "price": 800})
    second = entered(user, ids[:1], [LONG], rules(max_loss="50"))
    spin(monitor, lambda: first not in monitor._books and watching(monitor, second)())
    [unit] = spin(monitor, lambda: (live := monitor._live.get(second)) and live["units"])
    assert abs(Decimal(unit["pnl"])) < 50  # about ₹0 at the entry's price, not run 1's −₹600
    assert [e.run_id for e in risk_events(event_type="max_loss")] == [first]
    sim.post("/sim/prices", {"symbol": "SBIN", "price": 740})
    spin(monitor, lambda: len(risk_events(event_type="max_loss")) == 2)
    assert [e.run_id for e in risk_events(event_type="max_loss")] == [first, second]
