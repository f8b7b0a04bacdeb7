"""NSE/BSE trading calendar: holidays, sessions and derivative expiry dates (DOMAIN.md)."""

from __future__ import annotations

import calendar as _cal
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")
SESSION_OPEN = time(9, 15)
SESSION_CLOSE = time(15, 30)
SQUARE_OFF = time(15, 15)
EXPIRY_CUTOFF = time(15, 30)

HOLIDAYS: frozenset[date] = frozenset(
    date.fromisoformat(d)
    for d in (
        "2025-02-26", "2025-03-14", "2025-03-31", "2025-04-10", "2025-04-14", "2025-04-18",
        "2025-05-01", "2025-08-15", "2025-08-27", "2025-10-02", "2025-10-21", "2025-10-22",
        "2025-11-05", "2025-12-25",
        "2026-01-26", "2026-03-03", "2026-03-26", "2026-03-31", "2026-04-03", "2026-04-14",
        "2026-05-01", "2026-05-28", "2026-06-26", "2026-09-14", "2026-10-02", "2026-10-20",
        "2026-11-10", "2026-11-24", "2026-12-25",
    )
)

TUESDAY, THURSDAY = 1, 3
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def is_trading_day(d: date) -> bool:
    return d.weekday() < 5 and d not in HOLIDAYS


def previous_trading_day(d: date) -> date:
    """The latest trading day on or before ``d``."""
    while not is_trading_day(d):
        d -= timedelta(days=1)
    return d


def trading_days_before(end: date, count: int) -> list[date]:
    """The ``count`` trading days strictly before ``end``, oldest first."""
    out: list[date] = []
    d = end - timedelta(days=1)
    while len(out) < count:
        if is_trading_day(d):
            out.append(d)
        d -= timedelta(days=1)
    return out[::-1]


def last_weekday_of_month(year: int, month: int, weekday: int) -> date:
    last = date(year, month, _cal.monthrange(year, month)[1])
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    idx = year * 12 + (month - 1) + n
    return idx // 12, idx % 12 + 1


def is_expired(expiry: date, now_ist: datetime) -> bool:
    """An expiry is live until 15:30 IST on its day."""
    return (expiry, EXPIRY_CUTOFF) <= (now_ist.date(), now_ist.time())


def monthly_expiries(weekday: int, now_ist: datetime, count: int) -> list[date]:
    """The next ``count`` monthly expiries (last ``weekday`` of the month, holiday → previous day)."""
    out: list[date] = []
    n = 0
    while len(out) < count:
        y, m = _add_months(now_ist.year, now_ist.month, n)
        d = previous_trading_day(last_weekday_of_month(y, m, weekday))
        if not is_expired(d, now_ist):
            out.append(d)
        n += 1
    return out


def weekly_expiries(weekday: int, now_ist: datetime, count: int) -> list[date]:
    """The next ``count`` weekly expiries on ``weekday`` (holiday → previous trading day)."""
    out: list[date] = []
    d = now_ist.date() - timedelta(days=(now_ist.weekday() - weekday) % 7)
    while len(out) < count:
        adjusted = previous_trading_day(d)
        if not is_expired(adjusted, now_ist) and adjusted not in out:
            out.append(adjusted)
        d += timedelta(days=7)
    return out


def fmt_symbol_date(d: date) -> str:
    """``30DEC25``: the date as embedded in symbols and expiry_date parameters."""
    return f"{d.day:02d}{_MONTHS[d.month - 1]}{d.year % 100:02d}"


def fmt_expiry(d: date) -> str:
    """``30-DEC-25``: the master-contract and /expiry format."""
    return f"{d.day:02d}-{_MONTHS[d.month - 1]}-{d.year % 100:02d}"


def parse_symbol_date(text: str) -> date | None:
    """Parse ``DDMMMYY`` (any case); None when malformed."""
    text = text.upper()
    if len(text) != 7 or text[2:5] not in _MONTHS or not (text[:2].isdigit() and text[5:].isdigit()):
        return None
    try:
        return date(2000 + int(text[5:]), _MONTHS.index(text[2:5]) + 1, int(text[:2]))
    except ValueError:
        return None


def session_bounds(d: date) -> tuple[datetime, datetime]:
    """The aware IST open and close of the session on ``d``."""
    return datetime.combine(d, SESSION_OPEN, IST), datetime.combine(d, SESSION_CLOSE, IST)


def in_session(now_ist: datetime) -> bool:
    return is_trading_day(now_ist.date()) and SESSION_OPEN <= now_ist.time() < SESSION_CLOSE
