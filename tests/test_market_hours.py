"""Market hours: pure rules over the calendar dataclasses (IST trading day, UTC instants)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from app.domain.market_hours import (
    IST,
    Holiday,
    SpecialSession,
    TradingCalendar,
    WeeklySchedule,
    WeeklySession,
)

EXCHANGES = frozenset({"NSE", "BSE", "NFO", "BFO"})
NSE_WEEK = WeeklySchedule(
    name="NSE/BSE equity and F&O",
    exchanges=EXCHANGES,
    sessions=tuple(WeeklySession(day, time(9, 15), time(15, 30)) for day in range(5)),
    pre_open_buffer=timedelta(minutes=15),
)
GURU_NANAK = date(2026, 11, 24)  # Tuesday
DIWALI = date(2026, 11, 8)  # Sunday: a special session on a closed day


def _calendar(*, holidays=(), specials=()) -> TradingCalendar:
    return TradingCalendar(
        schedules=(NSE_WEEK,),
        holidays=(Holiday(GURU_NANAK, "NSE", "Guru Nanak Jayanti"), Holiday(GURU_NANAK, "NFO", "Guru Nanak Jayanti"),
                  *holidays),
        special_sessions=tuple(specials),
    )


def ist(y: int, mo: int, d: int, h: int, mi: int, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=IST)


CAL = _calendar()


def test_is_trading_day_on_holiday_is_false():
    assert GURU_NANAK.weekday() == 1
    assert CAL.is_trading_day(GURU_NANAK, "NSE") is False
    assert CAL.is_trading_day(GURU_NANAK, "nse") is False


def test_is_trading_day_holiday_on_another_exchange_only_closes_that_one():
    assert CAL.is_trading_day(GURU_NANAK, "BSE") is True


@pytest.mark.parametrize(("day", "expected"), [
    (date(2026, 11, 25), True),   # Wednesday
    (date(2026, 11, 28), False),  # Saturday
    (date(2026, 11, 29), False),  # Sunday
])
def test_is_trading_day_weekdays_and_weekend(day, expected):
    assert CAL.is_trading_day(day, "NSE") is expected


@pytest.mark.parametrize(("moment", "expected"), [
    (ist(2026, 11, 25, 9, 14, 59), False),
    (ist(2026, 11, 25, 9, 15), True),
    (ist(2026, 11, 25, 12, 0), True),
    (ist(2026, 11, 25, 15, 29, 59), True),
    (ist(2026, 11, 25, 15, 30), False),  # the close is exclusive
    (ist(2026, 11, 24, 10, 0), False),   # holiday
    (ist(2026, 11, 28, 10, 0), False),   # Saturday
])
def test_is_market_open_decision_table(moment, expected):
    assert CAL.is_market_open(moment, "NSE") is expected


def test_is_market_open_converts_utc_to_ist():
    assert CAL.is_market_open(datetime(2026, 11, 25, 3, 45, tzinfo=UTC), "NSE") is True
    assert CAL.is_market_open(datetime(2026, 11, 25, 3, 44, 59, tzinfo=UTC), "NSE") is False
    assert CAL.is_market_open(datetime(2026, 11, 25, 10, 0, tzinfo=UTC), "NSE") is False  # 15:30 IST


def test_is_market_open_naive_datetime_refused():
    with pytest.raises(ValueError, match="aware"):
        CAL.is_market_open(datetime(2026, 11, 25, 10, 0), "NSE")


def test_session_bounds_are_aware_utc():
    opens, closes = CAL.session_bounds(date(2026, 11, 25), "NSE")
    assert opens == datetime(2026, 11, 25, 3, 45, tzinfo=UTC)
    assert closes == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert opens.tzinfo is UTC
    assert CAL.session_bounds(GURU_NANAK, "NSE") is None


@pytest.mark.parametrize(("moment", "expected"), [
    (ist(2026, 11, 25, 8, 59, 59), False),
    (ist(2026, 11, 25, 8, 59), False),
    (ist(2026, 11, 25, 9, 0), True),
    (ist(2026, 11, 25, 15, 29), True),
    (ist(2026, 11, 25, 15, 30), False),
    (ist(2026, 11, 24, 9, 0), False),    # holiday
    (ist(2026, 11, 28, 9, 30), False),   # Saturday
])
def test_monitors_should_run_with_schedule_buffer(moment, expected):
    assert CAL.monitors_should_run(moment, "NSE") is expected


def test_monitors_should_run_explicit_buffer_overrides_schedule():
    assert CAL.monitors_should_run(ist(2026, 11, 25, 8, 45), "NSE", timedelta(minutes=30)) is True
    assert CAL.monitors_should_run(ist(2026, 11, 25, 9, 5), "NSE", timedelta(0)) is False


def test_monitors_should_run_negative_buffer_refused():
    with pytest.raises(ValueError):
        CAL.monitors_should_run(ist(2026, 11, 25, 9, 0), "NSE", timedelta(minutes=-1))


def test_special_session_on_holiday_opens_market():
    cal = _calendar(specials=[SpecialSession(GURU_NANAK, "NSE", time(18, 0), time(19, 0), "Special")])
    assert cal.is_trading_day(GURU_NANAK, "NSE") is True
    assert cal.is_market_open(ist(2026, 11, 24, 18, 30), "NSE") is True
    assert cal.is_market_open(ist(2026, 11, 24, 10, 0), "NSE") is False  # regular hours do not apply
    assert cal.monitors_should_run(ist(2026, 11, 24, 17, 45), "NSE") is True
    assert cal.monitors_should_run(ist(2026, 11, 24, 17, 44), "NSE") is False


def test_special_session_on_sunday_opens_only_its_exchange():
    cal = _calendar(specials=[SpecialSession(DIWALI, "NSE", time(18, 0), time(19, 15), "Muhurat trading")])
    assert cal.is_market_open(ist(2026, 11, 8, 19, 0), "NSE") is True
    assert cal.is_market_open(ist(2026, 11, 8, 19, 0), "BSE") is False


def test_special_session_replaces_regular_hours_on_trading_day():
    cal = _calendar(specials=[SpecialSession(date(2026, 11, 25), "NSE", time(9, 15), time(13, 0), "Half day")])
    assert cal.is_market_open(ist(2026, 11, 25, 12, 59), "NSE") is True
    assert cal.is_market_open(ist(2026, 11, 25, 13, 0), "NSE") is False


def test_unknown_exchange_never_trades():
    assert CAL.is_trading_day(date(2026, 11, 25), "MCX") is False
    assert CAL.is_market_open(ist(2026, 11, 25, 10, 0), "MCX") is False
    assert CAL.monitors_should_run(ist(2026, 11, 25, 10, 0), "MCX") is False


def test_inactive_weekday_session_is_closed():
    schedule = WeeklySchedule("short week", frozenset({"NSE"}),
                              (WeeklySession(2, time(9, 15), time(15, 30), active=False),))
    cal = TradingCalendar(schedules=(schedule,))
    assert cal.is_trading_day(date(2026, 11, 25), "NSE") is False


def test_buffer_reaching_back_across_midnight():
    early = WeeklySchedule("early", frozenset({"X"}), (WeeklySession(3, time(0, 30), time(2, 0)),),
                           pre_open_buffer=timedelta(minutes=60))
    cal = TradingCalendar(schedules=(early,))
    assert cal.monitors_should_run(ist(2026, 11, 25, 23, 45), "X") is True  # Wednesday night, Thursday session
    assert cal.monitors_should_run(ist(2026, 11, 25, 23, 29), "X") is False


def test_next_open_skips_holiday_and_weekend():
    assert CAL.next_open(ist(2026, 11, 23, 16, 0), "NSE") == ist(2026, 11, 25, 9, 15).astimezone(UTC)
    assert CAL.next_open(ist(2026, 11, 27, 16, 0), "NSE") == ist(2026, 11, 30, 9, 15).astimezone(UTC)
    assert CAL.next_open(ist(2026, 11, 25, 10, 0), "MCX") is None


@pytest.mark.parametrize("bad", [
    lambda: WeeklySession(7, time(9, 15), time(15, 30)),
    lambda: WeeklySession(0, time(15, 30), time(9, 15)),
    lambda: SpecialSession(DIWALI, "NSE", time(19, 0), time(18, 0)),
])
def test_invalid_sessions_refused(bad):
    with pytest.raises(ValueError):
        bad()
