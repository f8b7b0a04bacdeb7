"""The Supertrend exit end to end over real HTTP and WebSocket against the paper broker: the legs'
history read from /history, live ticks as the current minute, the run closed on the candle close
after the trend flips, once, with one risk event naming the exit intents, also when a new leader
takes over between the decision and the exit.

The monitor's clock and the broker's frozen clock move together a minute at a time, so that the
test needs no wall-clock minute to pass."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select

from app.domain.expiries import ist_today
from app.domain.premium_series import IST
from app.extensions import db
from app.models.execution import ExitRequest, StrategyRun
from app.services.calendar import get_calendar
from app.services.monitors import last_prices
from app.services.risk.monitor import RiskMonitor
from tests.support.exits import Driver, intents
from tests.support.risk_monitor import SHORT, entered, risk_events, rules, spin, watching

SUPERTREND = {"enabled": True, "period": 2, "multiplier": "1", "timeframe": "1m", "exit": "breakout",
              "action": "close_all"}


class Clock:
    """The monitor's `utcnow`, moved by the test."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch, paper_app):
    # 11:00 IST of the last trading day whose 11:00 has passed (candles are made of session minutes
    # only, and a moment ahead of the wall clock would make every tick look stale), whenever the suite runs.
    now = datetime.now(UTC)
    day = ist_today(now)
    with paper_app.app_context():
        calendar = get_calendar()
    while datetime.combine(day, time(11, 0), IST) > now or not calendar.is_trading_day(day, "NSE"):
        day -= timedelta(days=1)
    session = datetime.combine(day, time(11, 0), IST).astimezone(UTC)
    moved = Clock(session + timedelta(seconds=30))
    monkeypatch.setattr("app.services.risk.monitor.utcnow", moved)
    # The price cache judges a tick's age by the wall clock; the broker's ticks carry the test's hour.
    monkeypatch.setattr(last_prices(paper_app), "_max_tick_age", None)
    return moved


def _enter(user, ids, sim, clock: Clock) -> int:
    return _enter_with(user, ids, sim, clock, rules(supertrend=SUPERTREND))


def _enter_with(user, ids, sim, clock: Clock, settings: dict) -> int:
    """A run entered at the test's session moment (the broker's clock is there; the click too)."""
    for minutes in (2, 1, 0):  # the broker's history of today: the minutes its prices were set
        sim.post("/sim/clock", {"time": (clock.now - timedelta(minutes=minutes)).isoformat(), "frozen": True})
        sim.post("/sim/prices", {"symbol": "RELIANCE", "price": 2500})
    run_id = entered(user, ids, [SHORT], settings)
    db.session.get(StrategyRun, run_id).entered_at = clock.now
    db.session.commit()
    return run_id


def _minute(sim, clock: Clock, monitor: RiskMonitor, at: datetime, price: float) -> None:
    """Both clocks to `at`, then one tick at `price`, seen by the monitor."""
    clock.now = at
    sim.post("/sim/clock", {"time": at.isoformat(), "frozen": True})
    sim.post("/sim/prices", {"symbol": "RELIANCE", "price": price})
    evaluations = monitor.evaluations
    spin(monitor, lambda: monitor.evaluations > evaluations)


def _walk(sim, clock: Clock, monitor: RiskMonitor, until) -> tuple[int, object]:
    """Falling premium for six minutes (the short leg earning), then rising sharply: the breakout.
    Returns (the minute at which `until()` held, its value)."""
    price = 2500.0
    for n, step in enumerate([-3.0] * 6 + [+12.0] * 8):
        price += step
        _minute(sim, clock, monitor, clock.now + timedelta(minutes=1), price)
        found = until()
        if found:
            return n, found
    raise AssertionError("the Supertrend exit never fired")


def test_a_supertrend_flip_closes_the_run_once_on_the_candle_close(setup, sim, clock):
    user, ids, monitor = setup
    run_id = _enter(user, ids, sim, clock)
    spin(monitor, lambda: watching(monitor, run_id)() and
         (w := monitor._watches.get(run_id)) is not None and w.loaded)
    step, [event] = _walk(sim, clock, monitor, lambda: risk_events(event_type="supertrend"))
    assert step >= 6  # on the way up, never while the premium fell
    assert event.action == "close_all" and "turned bullish" in event.detail and event.account_id is None
    assert event.current_value > event.threshold  # the close above the Supertrend line
    [request] = db.session.scalars(select(ExitRequest)).all()
    assert request.purpose == "risk" and (request.run_account_id, request.leg_number) == (None, None)
    # More candles close while the exit runs: nothing is asked twice.
    _minute(sim, clock, monitor, clock.now + timedelta(minutes=1), 2600.0)
    _minute(sim, clock, monitor, clock.now + timedelta(minutes=1), 2610.0)
    Driver().run_until(lambda: db.session.get(ExitRequest, request.id).status == "done")
    closes = [i for i in intents(run_id=run_id) if i.purpose == "risk"]
    assert sorted((i.account_id, i.action, i.quantity, i.state) for i in closes) == \
        sorted((a, "BUY", 5, "filled") for a in ids)
    db.session.expire_all()
    [event] = risk_events(event_type="supertrend")
    assert sorted(event.intent_ids) == sorted(i.id for i in closes) and event.outcome == "filled"
    assert db.session.get(StrategyRun, run_id).status == "closed"
    assert len(db.session.scalars(select(ExitRequest)).all()) == 1


def test_a_new_leader_does_not_fire_a_supertrend_exit_that_was_already_requested(setup, sim, clock, paper_app):
    user, ids, monitor = setup
    run_id = _enter(user, ids[:1], sim, clock)
    spin(monitor, lambda: watching(monitor, run_id)() and
         (w := monitor._watches.get(run_id)) is not None and w.loaded)
    _walk(sim, clock, monitor, lambda: risk_events(event_type="supertrend"))
    monitor.on_stop()  # the leader goes away before its exit was sent
    successor = RiskMonitor(paper_app)
    successor.on_start()
    try:
        spin(successor, lambda: (w := successor._watches.get(run_id)) is not None and w.loaded)
        assert successor._watches[run_id].fired  # from the run's saved risk state
        for price in (2620.0, 2640.0, 2660.0):  # the trend stays bullish over more closed candles
            _minute(sim, clock, successor, clock.now + timedelta(minutes=1), price)
        assert len(risk_events(event_type="supertrend")) == 1
        [request] = db.session.scalars(select(ExitRequest)).all()
        Driver().run_until(lambda: db.session.get(ExitRequest, request.id).status == "done")
    finally:
        successor.on_stop()
    assert [(i.action, i.quantity, i.state) for i in intents(run_id=run_id) if i.purpose == "risk"] == \
        [("BUY", 5, "filled")]


def test_an_alert_only_supertrend_flip_writes_one_event_and_sends_nothing(setup, sim, clock):
    user, ids, monitor = setup
    run_id = _enter_with(user, ids[:1], sim, clock, rules(supertrend={**SUPERTREND, "action": "alert_only"}))
    spin(monitor, lambda: (w := monitor._watches.get(run_id)) is not None and w.loaded)
    _, [event] = _walk(sim, clock, monitor, lambda: risk_events(event_type="supertrend"))
    assert event.action == "alert_only" and "turned bullish" in event.detail
    for price in (2620.0, 2640.0, 2660.0):  # more bullish candles close: the alert is not repeated
        _minute(sim, clock, monitor, clock.now + timedelta(minutes=1), price)
    assert len(risk_events(event_type="supertrend")) == 1
    assert db.session.scalars(select(ExitRequest)).all() == []
    assert [i for i in intents(run_id=run_id) if i.purpose == "risk"] == []


def test_a_history_the_broker_cannot_give_holds_only_the_supertrend_exit(setup, sim, clock):
    """/history answers 500: one held event for the Supertrend exit; the monitor keeps running and
    the run's max loss still closes it."""
    user, ids, monitor = setup
    for key in [a["apikey"] for a in sim.call("GET", "/sim/accounts")["accounts"]]:
        sim.set_faults(key, error_rate=1.0, routes=["history"])
    try:
        run_id = _enter_with(user, ids[:1], sim, clock, rules(max_loss="80", supertrend=SUPERTREND))
        [held] = spin(monitor, lambda: risk_events(event_type="supertrend"))
        assert held.action == "held" and held.run_id == run_id
        watch = monitor._watches[run_id]
        assert not watch.loaded
        watch.next_load = 0.0  # the retry is due: it fails the same way, and says nothing new
        spin(monitor, lambda: watch.next_load > 0 and run_id not in monitor._history_jobs)
        # The short of 5 against a base of 1 per leg: the ₹80 line is ₹400; 100 points up lose ₹500.
        _minute(sim, clock, monitor, clock.now + timedelta(minutes=1), 2600.0)
        [loss] = spin(monitor, lambda: risk_events(event_type="max_loss"))
        assert loss.action == "close_all"
    finally:
        sim.call("DELETE", "/sim/faults")
    [request] = db.session.scalars(select(ExitRequest)).all()
    Driver().run_until(lambda: db.session.get(ExitRequest, request.id).status == "done")
    assert len(risk_events(event_type="supertrend")) == 1  # held once, not once per refresh
