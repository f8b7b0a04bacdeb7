"""Expiry dates: OpenAlgo's date formats, the leg expiry choices, and expiry day.

Expiries always come from the broker (`/expiry`), never from the calendar: these rules only
read the list they are given (DOMAIN.md "Leg expiry choices").

Formats (OPENALGO_API.md §2): `/expiry` lists `DD-MMM-YY` ("30-DEC-25"); requests and
symbols use `DDMMMYY` ("30DEC25"); `/optiongreeks` answers `DD-Mon-YYYY` ("25-Aug-2026").
Months are parsed from a fixed English table, never through the locale (strptime's %b).

Choices, for a list and today's IST date:
- An expiry on today's date is still live: the contract trades until the 15:30 IST close.
  A caller asking after the close passes the next day as `today`.
- Current week = the first live expiry; next week = the second.
- Monthly expiries: best taken from the underlying's futures expiries (`/expiry` with
  instrumenttype "futures"), because futures expire only on monthly dates; pass them as
  `monthly`. Without them, the monthly expiry of a calendar month is the last expiry listed
  in that month. That fallback is wrong in one case: a weekly expiry moved back by a holiday
  into the previous month, after that month's monthly (e.g. SENSEX, Thursday 1 May 2025 a
  holiday: the weekly moved to Wednesday 30 April, after the 24 April monthly).
- Current month = the monthly expiry of today's month if not yet past, else the monthly
  expiry of the next calendar month; next month = the monthly expiry of the calendar month
  after the current month's. A month missing from the list is an error, not a silent jump.
- Monthly-only underlying (e.g. BANKNIFTY): told from the lists themselves. With `monthly`
  given, the options list is monthly-only when every one of its expiries is a monthly one;
  without it, when no calendar month holds more than one expiry (a weekly underlying always
  has several expiries in some month of its list: the weeklies before a monthly). Current /
  next week then map to current / next month.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from enum import StrEnum

from app.domain.errors import ExpiryUnavailable, InvalidExpiry
from app.domain.market_hours import IST

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTH_NUMBER = {name: number for number, name in enumerate(MONTHS, start=1)}
_EXPIRY_RE = re.compile(r"^(\d{1,2})-?([A-Z]{3})-?(\d{2}|\d{4})$")
EXPIRY_CUTOFF_IST = time(15, 30)  # NFO and BFO contracts expire at the close


class ExpiryChoice(StrEnum):
    """Which expiry a leg trades, relative to today."""

    CURRENT_WEEK = "current_week"
    NEXT_WEEK = "next_week"
    CURRENT_MONTH = "current_month"
    NEXT_MONTH = "next_month"


def parse_expiry(text: str) -> date:
    """Parse an expiry written the way OpenAlgo writes one.

    Args:
        text: "30-DEC-25" (`/expiry`), "30DEC25" (symbols, requests) or "25-Aug-2026"
            (`/optiongreeks`); case and surrounding blanks are ignored. Two-digit years are
            20YY.
    Returns:
        The expiry date.
    Raises:
        InvalidExpiry: the text is in none of these formats or names no real day.
    """
    match = _EXPIRY_RE.match(text.strip().upper()) if isinstance(text, str) else None
    if match is None or match.group(2) not in _MONTH_NUMBER:
        raise InvalidExpiry(f"expiry {text!r} is not like 30-DEC-25 or 30DEC25")
    day, month, year = int(match.group(1)), _MONTH_NUMBER[match.group(2)], int(match.group(3))
    if year < 100:
        year += 2000
    try:
        return date(year, month, day)
    except ValueError:
        raise InvalidExpiry(f"expiry {text!r} is not a real date") from None


def format_expiry(expiry: date) -> str:
    """The `DDMMMYY` form used in symbols and in `expiry_date` request fields.

    Args:
        expiry: the expiry date.
    Returns:
        e.g. "30DEC25" for 2025-12-30, "05JAN27" for 2027-01-05 (the year comes from the
        date: nothing is hard-coded).
    """
    return f"{expiry.day:02d}{MONTHS[expiry.month - 1]}{expiry.year % 100:02d}"


def parse_expiries(expiries: Iterable[str | date]) -> tuple[date, ...]:
    """Normalise a broker's expiry list: parsed, de-duplicated and sorted ascending.

    Args:
        expiries: dates, or strings in any format `parse_expiry` accepts.
    Returns:
        The distinct dates, earliest first.
    Raises:
        InvalidExpiry: an entry cannot be parsed.
    """
    return tuple(sorted({e if isinstance(e, date) else parse_expiry(e) for e in expiries}))


def is_monthly_only(expiries: Iterable[str | date], monthly: Iterable[str | date] | None = None) -> bool:
    """Whether an expiry list belongs to an underlying without weekly expiries.

    Args:
        expiries: the broker's full expiry list of one underlying and instrument type.
        monthly: the underlying's futures expiries (the monthly dates), when known.
    Returns:
        True when no calendar month of the list holds more than one expiry and, with
        `monthly`, every listed expiry up to the last futures month is a futures expiry.
        An empty list counts as monthly-only.
    Raises:
        InvalidExpiry: an entry cannot be parsed.
    """
    days = parse_expiries(expiries)
    months = [(d.year, d.month) for d in days]
    if len(months) != len(set(months)):
        return False
    return _confirmed_or_beyond(days, monthly) == days


def _confirmed_or_beyond(days: tuple[date, ...], monthly: Iterable[str | date] | None) -> tuple[date, ...]:
    """Drop the non-monthly expiries that the futures list can vouch for.

    Months up to the last futures expiry keep only futures-confirmed dates; later months
    (options listed beyond the futures, e.g. quarterlies) keep every date, for the
    last-in-month fallback. Without futures expiries, every date is kept.
    """
    confirmed = set(parse_expiries(monthly)) if monthly is not None else set()
    if not confirmed:
        return days
    horizon = max((d.year, d.month) for d in confirmed)
    return tuple(d for d in days if d in confirmed or (d.year, d.month) > horizon)


def monthly_expiries(expiries: Iterable[str | date], monthly: Iterable[str | date] | None = None) -> tuple[date, ...]:
    """The monthly expiry of every calendar month in the list, earliest first.

    Args:
        expiries: the broker's expiry list.
        monthly: the underlying's futures expiries, when known: up to the last futures
            month, the monthly expiries are the listed ones that are also futures expiries.
    Returns:
        One date per calendar month that has one: the futures-confirmed expiry, else (no
        `monthly`, or a month beyond the futures) the month's last listed expiry.
    Raises:
        InvalidExpiry: an entry cannot be parsed.
    """
    days = _confirmed_or_beyond(parse_expiries(expiries), monthly)
    last: dict[tuple[int, int], date] = {}
    for d in days:
        last[(d.year, d.month)] = d  # ascending order: the last write is the month's last expiry
    return tuple(last.values())


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def _month_name(year: int, month: int) -> str:
    return f"{MONTHS[month - 1]} {year}"


def _current_month(monthlies: dict[tuple[int, int], date], today: date) -> date:
    this_month = (today.year, today.month)
    candidate = monthlies.get(this_month)
    if candidate is not None and candidate >= today:
        return candidate
    following = _next_month(*this_month)
    if following not in monthlies:
        raise ExpiryUnavailable(
            f"no current-month expiry: {_month_name(*this_month)} has none left on {today.isoformat()} "
            f"and the list has none in {_month_name(*following)}")
    return monthlies[following]


def choose_expiry(choice: ExpiryChoice | str, expiries: Iterable[str | date], today: date,
                  monthly: Iterable[str | date] | None = None) -> date:
    """Pick a leg's expiry from the broker's list.

    Args:
        choice: current/next week or month (an ExpiryChoice or its value).
        expiries: the broker's expiry list for the leg's instrument type (strings or dates).
        today: today's date in IST (see `ist_today`).
        monthly: the underlying's futures expiries, which mark the monthly dates; optional
            but recommended for options (see the module docstring).
    Returns:
        The chosen expiry date, per the rules in this module's docstring.
    Raises:
        ExpiryUnavailable: the list has no expiry for the choice (nothing live, no second
            expiry, a month missing).
        InvalidExpiry: an entry of the list cannot be parsed.
        ValueError: `choice` is not a known choice.
    """
    choice = ExpiryChoice(choice)
    days = parse_expiries(expiries)
    confirmed = None if monthly is None else parse_expiries(monthly)
    live = [d for d in days if d >= today]
    if not live:
        raise ExpiryUnavailable(f"no expiry on or after {today.isoformat()} in the broker's list")
    if is_monthly_only(days, confirmed):
        if choice is ExpiryChoice.CURRENT_WEEK:
            choice = ExpiryChoice.CURRENT_MONTH
        elif choice is ExpiryChoice.NEXT_WEEK:
            choice = ExpiryChoice.NEXT_MONTH
    if choice is ExpiryChoice.CURRENT_WEEK:
        return live[0]
    if choice is ExpiryChoice.NEXT_WEEK:
        if len(live) < 2:
            raise ExpiryUnavailable(f"no next-week expiry: only {live[0].isoformat()} is left in the list")
        return live[1]
    monthlies = {(d.year, d.month): d for d in monthly_expiries(days, confirmed)}
    current = _current_month(monthlies, today)
    if choice is ExpiryChoice.CURRENT_MONTH:
        return current
    following = _next_month(current.year, current.month)
    if following not in monthlies:
        raise ExpiryUnavailable(f"no next-month expiry: the list has none in {_month_name(*following)}")
    return monthlies[following]


def is_expiry_day(today: date, expiries: Iterable[str | date]) -> bool:
    """Whether today is an expiry day of the underlying whose expiry list this is.

    Args:
        today: today's date in IST.
        expiries: the broker's expiry list (strings or dates).
    Returns:
        True when `today` is one of the listed expiries (never guessed from the weekday).
    Raises:
        InvalidExpiry: an entry cannot be parsed.
    """
    return today in parse_expiries(expiries)


def ist_today(now: datetime) -> date:
    """The IST calendar date of an aware instant.

    Raises:
        ValueError: `now` is naive.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("an aware datetime is required (naive times are ambiguous)")
    return now.astimezone(IST).date()


def expiry_close(expiry: date, cutoff: time = EXPIRY_CUTOFF_IST) -> datetime:
    """The instant a contract expires: `cutoff` IST on its expiry date, as aware UTC.

    Args:
        expiry: the expiry date.
        cutoff: the exchange's expiry time in IST (15:30 for NFO and BFO).
    Returns:
        e.g. 2026-12-29 15:30 IST -> 2026-12-29 10:00 UTC.
    """
    return datetime.combine(expiry, cutoff, tzinfo=IST).astimezone(UTC)
