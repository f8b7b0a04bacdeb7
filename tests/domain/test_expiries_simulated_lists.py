"""Expiry choice over two years of realistic lists (the paper broker's exchange calendar:
weekly and monthly expiries, holiday shifts), checked against the calendar's own monthlies."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest

from app.domain.expiries import ExpiryChoice, choose_expiry, is_monthly_only
from paperbroker import nse_calendar as cal
from paperbroker.instruments import FUTURE_COUNT, MONTHLY_COUNT, UNDERLYINGS, WEEKLY_COUNT

CHOICES = (ExpiryChoice.CURRENT_WEEK, ExpiryChoice.NEXT_WEEK, ExpiryChoice.CURRENT_MONTH, ExpiryChoice.NEXT_MONTH)


def _days(start: date, end: date):
    while start <= end:
        yield start
        start += timedelta(days=1)


@pytest.mark.parametrize("name", sorted(UNDERLYINGS))
def test_choose_expiry_every_day_2025_2026_matches_exchange_calendar(name):
    u = UNDERLYINGS[name]
    mismatches = []
    for day in _days(date(2025, 1, 1), date(2026, 12, 31)):
        # before the close, and after it (when today's expiry is gone and "today" is tomorrow)
        for clock, today in ((time(10, 0), day), (time(16, 0), day + timedelta(days=1))):
            now = datetime.combine(day, clock, tzinfo=cal.IST)
            monthlies = cal.monthly_expiries(u.monthly_weekday, now, max(MONTHLY_COUNT, FUTURE_COUNT))
            futures = monthlies[:FUTURE_COUNT]
            listed = set(monthlies[:MONTHLY_COUNT])
            if u.weekly_weekday is not None:
                listed.update(cal.weekly_expiries(u.weekly_weekday, now, WEEKLY_COUNT))
            options = sorted(listed)
            weekly = (options[0], options[1]) if u.weekly_weekday is not None else (monthlies[0], monthlies[1])
            expected = (*weekly, monthlies[0], monthlies[1])
            got = tuple(choose_expiry(c, [cal.fmt_expiry(d) for d in options], today, futures) for c in CHOICES)
            if got != expected or is_monthly_only(options, futures) != (u.weekly_weekday is None):
                mismatches.append((now, got, expected))
    assert mismatches == []
