"""Scheduled exit, square-off and entry: one request per run and purpose at the IST minute, on
trading days only, driven by an injected clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import User
from app.models.execution import ExitRequest, StrategyRun
from app.models.strategies import Strategy
from app.services.calendar import get_calendar
from app.services.execution import scheduler
from app.services.execution.scheduler import SchedulerService, tick
from app.timeutil import IST
from tests.helpers import make_user
from tests.support.exits import LegSpec, engine_online, make_run
from tests.support.strategies import add_account


def _day(trading: bool) -> date:
    calendar = get_calendar()
    day = date(2026, 1, 1)
    while calendar.is_trading_day(day, "NSE") is not trading or (not trading and day.weekday() >= 5):
        day += timedelta(days=1)
    return day


def _ist(day: date, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=IST).astimezone(UTC)


@pytest.fixture
def scheduled(app):
    engine_online()
    user = make_user(app, "sam")
    account_id = add_account(app, user.id, "A1")
    strategy = Strategy(user_id=user.id, name="Timed", entry_time=time(9, 20), exit_time=time(15, 0),
                        square_off_time=time(15, 15))
    db.session.add(strategy)
    db.session.commit()
    return user, account_id, strategy.id


def _open_run(user, account_id, strategy_id, clicked: datetime) -> int:
    run_id = make_run(user.id, [account_id], [LegSpec("SBIN", "NSE", "BUY", 5)])
    run = db.session.get(StrategyRun, run_id)
    run.strategy_id, run.status, run.clicked_at = strategy_id, "open", clicked
    db.session.commit()
    return run_id


def _requests() -> list[tuple[int, str]]:
    db.session.expire_all()
    return [(r.run_id, r.purpose) for r in db.session.scalars(select(ExitRequest).order_by(ExitRequest.id))]


def test_tick_creates_one_exit_then_one_square_off_per_run_at_the_ist_minute(scheduled):
    user, account_id, strategy_id = scheduled
    day = _day(trading=True)
    runs = [_open_run(user, account_id, strategy_id, _ist(day, 9, 20)) for _ in range(2)]
    late = _open_run(user, account_id, strategy_id, _ist(day, 15, 5))  # clicked after the exit time

    assert tick(_ist(day, 14, 59, 59)).exits == []
    assert tick(_ist(day, 15, 0, 0)).exits == [(runs[0], "exit"), (runs[1], "exit")]
    assert tick(_ist(day, 15, 0, 30)).exits == []
    assert tick(_ist(day, 15, 14, 59)).exits == []
    assert tick(_ist(day, 15, 15, 0)).exits == [(runs[0], "square_off"), (runs[1], "square_off"),
                                                (late, "square_off")]
    assert tick(_ist(day, 15, 16)).exits == []
    assert _requests() == [(runs[0], "exit"), (runs[1], "exit"), (runs[0], "square_off"), (runs[1], "square_off"),
                           (late, "square_off")]
    row = db.session.scalars(select(ExitRequest).order_by(ExitRequest.id)).first()  # PG: no order without one
    assert row.reason == "scheduled exit at 15:00 IST" and row.status == "pending"


def test_tick_on_a_holiday_creates_nothing(scheduled):
    user, account_id, strategy_id = scheduled
    day = _day(trading=False)
    _open_run(user, account_id, strategy_id, _ist(day, 9, 20) - timedelta(days=1))
    for hh, mm in ((15, 0), (15, 15), (15, 20)):
        assert tick(_ist(day, hh, mm)).exits == []
    assert _requests() == []


def test_tick_skips_closed_runs(scheduled):
    user, account_id, strategy_id = scheduled
    day = _day(trading=True)
    run_id = _open_run(user, account_id, strategy_id, _ist(day, 9, 20))
    db.session.get(StrategyRun, run_id).status = "closed"
    db.session.commit()
    assert tick(_ist(day, 15, 15)).exits == []


def test_tick_auto_entry_submits_once_with_the_schedule_key_in_the_entry_minute(scheduled, monkeypatch):
    from app.services.execution import planner

    _, _, strategy_id = scheduled
    db.session.get(Strategy, strategy_id).auto_entry = True
    db.session.commit()
    calls: list[tuple[int, str, str]] = []

    def submit(owner, strategy, *, idempotency_key, trigger="manual", **_):
        calls.append((strategy.id, idempotency_key, trigger))
        run = StrategyRun(user_id=owner.id, strategy_id=strategy.id, strategy_name=strategy.name,
                          idempotency_key=idempotency_key, trigger=trigger, product="MIS", trading_day=day)
        db.session.add(run)
        db.session.commit()
        return run

    monkeypatch.setattr(planner, "submit_execution", submit)
    day = _day(trading=True)
    assert tick(_ist(day, 9, 19, 59)).entries == []
    assert tick(_ist(day, 9, 20, 0)).entries == [strategy_id]
    assert tick(_ist(day, 9, 20, 40)).entries == []
    assert tick(_ist(day, 9, 25)).entries == []
    assert calls == [(strategy_id, f"schedule:{strategy_id}:{day.isoformat()}", "scheduled")]
    assert tick(_ist(_day(trading=False), 9, 20)).entries == []


def test_scheduler_service_ticks_with_its_injected_clock(scheduled):
    user, account_id, strategy_id = scheduled
    day = _day(trading=True)
    run_id = _open_run(user, account_id, strategy_id, _ist(day, 9, 20))
    service = SchedulerService(clock=lambda: _ist(day, 15, 1))
    assert service.run_once() == "exits 1, entries 0, skipped 0"
    assert _requests() == [(run_id, "exit")]
    assert scheduler.ENTRY_GRACE == timedelta(minutes=2)


@pytest.fixture
def paper_scheduled(alice, broker, sim, apikey):
    from tests.support.exits import add_paper_accounts

    engine_online()
    user = db.session.scalar(select(User).where(User.username == "alice"))
    ((account_id, key),) = add_paper_accounts(alice, broker, sim, ["One"])
    strategy = Strategy(user_id=user.id, name="Timed", entry_time=time(9, 20), exit_time=time(15, 25),
                        square_off_time=time(15, 15))
    db.session.add(strategy)
    db.session.commit()
    yield user, account_id, key, strategy.id
    sim.call("DELETE", "/sim/faults")
    sim.call("DELETE", f"/sim/accounts/{key}")


def test_tick_after_a_failed_square_off_requests_it_again_a_minute_later_until_closed(paper_scheduled, sim):
    from tests.support.exits import Driver, filled_entries, net_positions

    user, account_id, key, strategy_id = paper_scheduled
    day = _day(trading=True)
    run_id = make_run(user.id, [account_id], [LegSpec("SBIN", "NSE", "BUY", 5)])
    driver = Driver()
    filled_entries(driver, run_id)
    run = db.session.get(StrategyRun, run_id)
    run.strategy_id, run.status, run.clicked_at = strategy_id, "open", _ist(day, 9, 20)
    db.session.commit()
    sim.set_faults(key, reject_rate=1.0, reject_reason="rms_block", reject_mode="http", routes=["placeorder"])

    assert tick(_ist(day, 15, 15)).exits == [(run_id, "square_off")]
    first = db.session.scalars(select(ExitRequest)).one()
    driver.run_until(lambda: db.session.get(ExitRequest, first.id).status == "failed")
    # The exit manager failed it in real time; put that moment on the injected clock's day.
    db.session.get(ExitRequest, first.id).done_at = _ist(day, 15, 15, 20)
    db.session.commit()
    sim.call("DELETE", "/sim/faults")

    assert tick(_ist(day, 15, 16, 19)).exits == []  # at most once a minute after the failure
    assert tick(_ist(day, 15, 16, 20)).exits == [(run_id, "square_off")]
    assert tick(_ist(day, 15, 16, 30)).exits == []  # the new one is working
    second = db.session.scalars(select(ExitRequest).order_by(ExitRequest.id.desc())).first()
    assert second.reason == f"scheduled square-off at 15:15 IST (again: request {first.id} failed)"
    assert driver.run_until(lambda: db.session.get(ExitRequest, second.id).status in ("done", "failed")) \
        and db.session.get(ExitRequest, second.id).status == "done"
    assert net_positions(account_id) == {}
    assert tick(_ist(day, 15, 18)).exits == []  # closed: nothing more
    assert _requests() == [(run_id, "square_off"), (run_id, "square_off")]
