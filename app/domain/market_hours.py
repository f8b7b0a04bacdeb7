"""Market hours: when an exchange trades and when the monitors that watch it should run.

Pure rules over plain dataclasses (no Flask, no database). Wall-clock times of sessions are
Indian Standard Time; every datetime going in or out is aware, and results are in UTC.

Rules:
- A day's session comes from the weekly schedule (template) that lists the exchange; the
  first matching schedule wins, so at most one applies.
- A holiday for the exchange closes the day.
- A special session (e.g. Muhurat trading) for the exchange replaces that day's session, on
  a holiday, a weekend or a normal trading day alike: a special session overrides a holiday.
- A session is the half-open interval [start, end): at 09:15:00 the market is open, at
  15:30:00 it is closed. Monitors run in [start - pre-open buffer, end).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")
DEFAULT_PRE_OPEN_BUFFER = timedelta(minutes=15)


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("an aware datetime is required (naive times are ambiguous)")


def _norm(exchange: str) -> str:
    return exchange.strip().upper()


@dataclass(frozen=True)
class WeeklySession:
    """One weekday's regular session, IST wall-clock; Monday = 0 … Sunday = 6."""

    day_of_week: int
    start: time
    end: time
    active: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.day_of_week <= 6:
            raise ValueError(f"day_of_week must be 0..6, got {self.day_of_week}")
        if self.end <= self.start:
            raise ValueError("a session must end after it starts")


@dataclass(frozen=True)
class WeeklySchedule:
    """A weekly template for a set of exchanges."""

    name: str
    exchanges: frozenset[str]
    sessions: tuple[WeeklySession, ...]
    pre_open_buffer: timedelta = DEFAULT_PRE_OPEN_BUFFER

    def session_on(self, weekday: int) -> WeeklySession | None:
        """The active session on a weekday, or None when the schedule is closed that day."""
        for session in self.sessions:
            if session.day_of_week == weekday and session.active:
                return session
        return None


@dataclass(frozen=True)
class Holiday:
    day: date
    exchange: str
    description: str = ""


@dataclass(frozen=True)
class SpecialSession:
    """A session on a given date that replaces the regular one (IST wall-clock)."""

    day: date
    exchange: str
    start: time
    end: time
    description: str = ""

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("a special session must end after it starts")


@dataclass(frozen=True)
class TradingCalendar:
    """Schedules, holidays and special sessions, with the questions services ask of them."""

    schedules: tuple[WeeklySchedule, ...] = ()
    holidays: tuple[Holiday, ...] = ()
    special_sessions: tuple[SpecialSession, ...] = ()
    _holidays: frozenset[tuple[date, str]] = field(init=False, repr=False, compare=False)
    _specials: dict[tuple[date, str], SpecialSession] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_holidays", frozenset((h.day, _norm(h.exchange)) for h in self.holidays))
        object.__setattr__(self, "_specials", {(s.day, _norm(s.exchange)): s for s in self.special_sessions})

    def schedule_for(self, exchange: str) -> WeeklySchedule | None:
        """The weekly schedule that covers an exchange, or None (the exchange never trades)."""
        code = _norm(exchange)
        for schedule in self.schedules:
            if code in schedule.exchanges:
                return schedule
        return None

    def is_holiday(self, day: date, exchange: str) -> bool:
        return (day, _norm(exchange)) in self._holidays

    def _wall_clock_session(self, day: date, exchange: str) -> tuple[time, time] | None:
        special = self._specials.get((day, _norm(exchange)))
        if special is not None:
            return special.start, special.end
        if self.is_holiday(day, exchange):
            return None
        schedule = self.schedule_for(exchange)
        session = schedule.session_on(day.weekday()) if schedule is not None else None
        return (session.start, session.end) if session is not None else None

    def is_trading_day(self, day: date, exchange: str) -> bool:
        """Whether the exchange has a session on an IST calendar day.

        Args:
            day: the IST calendar date.
            exchange: exchange code, e.g. "NSE" (case-insensitive).

        Returns:
            True when a special session is set that day, or when the day is not a holiday
            and the exchange's schedule has an active session on that weekday.
        """
        return self._wall_clock_session(day, exchange) is not None

    def session_bounds(self, day: date, exchange: str) -> tuple[datetime, datetime] | None:
        """The session of an IST calendar day as aware UTC instants.

        Args:
            day: the IST calendar date.
            exchange: exchange code.

        Returns:
            (open, close) in UTC, the close exclusive; None when the exchange does not trade that day.
        """
        wall = self._wall_clock_session(day, exchange)
        if wall is None:
            return None
        start, end = wall
        opens = datetime.combine(day, start, tzinfo=IST).astimezone(UTC)
        closes = datetime.combine(day, end, tzinfo=IST).astimezone(UTC)
        return opens, closes

    def is_market_open(self, now: datetime, exchange: str) -> bool:
        """Whether the exchange is in session at an instant.

        Args:
            now: an aware datetime (any zone; converted to IST for the trading day).
            exchange: exchange code.

        Returns:
            True when open <= now < close for the IST day of `now`.

        Raises:
            ValueError: `now` is naive.
        """
        _require_aware(now)
        bounds = self.session_bounds(now.astimezone(IST).date(), exchange)
        return bounds is not None and bounds[0] <= now < bounds[1]

    def monitors_should_run(self, now: datetime, exchange: str, pre_open_buffer: timedelta | None = None) -> bool:
        """Whether market-hours services should be active at an instant.

        They start `pre_open_buffer` before the open and stop at the close.

        Args:
            now: an aware datetime.
            exchange: exchange code.
            pre_open_buffer: lead time before the open; defaults to the exchange schedule's
                buffer (15 minutes when the exchange has no schedule).

        Returns:
            True when open - buffer <= now < close for today's or tomorrow's IST session
            (a buffer can reach back across midnight).

        Raises:
            ValueError: `now` is naive or the buffer is negative.
        """
        _require_aware(now)
        if pre_open_buffer is None:
            schedule = self.schedule_for(exchange)
            pre_open_buffer = schedule.pre_open_buffer if schedule is not None else DEFAULT_PRE_OPEN_BUFFER
        if pre_open_buffer < timedelta(0):
            raise ValueError("the pre-open buffer cannot be negative")
        today = now.astimezone(IST).date()
        for day in (today, today + timedelta(days=1)):
            bounds = self.session_bounds(day, exchange)
            if bounds is not None and bounds[0] - pre_open_buffer <= now < bounds[1]:
                return True
        return False

    def next_open(self, now: datetime, exchange: str, horizon_days: int = 14) -> datetime | None:
        """The next session open at or after `now` (UTC), within `horizon_days`; None if none.

        Raises:
            ValueError: `now` is naive.
        """
        _require_aware(now)
        today = now.astimezone(IST).date()
        for offset in range(horizon_days + 1):
            bounds = self.session_bounds(today + timedelta(days=offset), exchange)
            if bounds is not None and bounds[0] >= now:
                return bounds[0]
        return None
