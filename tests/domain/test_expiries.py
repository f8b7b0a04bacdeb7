"""Expiry choice: the broker's list, today's IST date, and the DOMAIN.md rules."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from app.domain.errors import ExpiryUnavailable, InvalidExpiry
from app.domain.expiries import (
    IST,
    ExpiryChoice,
    choose_expiry,
    expiry_close,
    format_expiry,
    is_expiry_day,
    is_monthly_only,
    ist_today,
    monthly_expiries,
    parse_expiry,
)

CW, NW, CM, NM = ExpiryChoice.CURRENT_WEEK, ExpiryChoice.NEXT_WEEK, ExpiryChoice.CURRENT_MONTH, ExpiryChoice.NEXT_MONTH

# NIFTY-like: weekly Tuesdays across the 2026/2027 year end, as /expiry writes them. The
# January monthly (last Tuesday, Jan 26, Republic Day) moved to Monday Jan 25.
NIFTY = ["01-DEC-26", "08-DEC-26", "15-DEC-26", "22-DEC-26", "29-DEC-26", "05-JAN-27", "12-JAN-27",
         "19-JAN-27", "25-JAN-27", "02-FEB-27", "23-FEB-27", "30-MAR-27"]
# BANKNIFTY-like: monthly only (last Tuesday, the same holiday shift).
BANKNIFTY = ["29-DEC-26", "25-JAN-27", "23-FEB-27", "30-MAR-27"]
# SENSEX-like: weekly Thursdays; the December monthly falls on Dec 31.
SENSEX = ["03-DEC-26", "10-DEC-26", "17-DEC-26", "24-DEC-26", "31-DEC-26", "07-JAN-27", "14-JAN-27",
          "28-JAN-27", "25-FEB-27"]


@pytest.mark.parametrize(("expiries", "today", "choice", "expected"), [
    # weekly underlying, an expiry day: today's contract is still live
    (NIFTY, date(2026, 12, 1), CW, date(2026, 12, 1)),
    (NIFTY, date(2026, 12, 1), NW, date(2026, 12, 8)),
    (NIFTY, date(2026, 12, 1), CM, date(2026, 12, 29)),
    (NIFTY, date(2026, 12, 1), NM, date(2027, 1, 25)),
    # the day after an expiry
    (NIFTY, date(2026, 12, 2), CW, date(2026, 12, 8)),
    (NIFTY, date(2026, 12, 2), NW, date(2026, 12, 15)),
    # the month's last expiry day
    (NIFTY, date(2026, 12, 29), CW, date(2026, 12, 29)),
    (NIFTY, date(2026, 12, 29), NW, date(2027, 1, 5)),
    (NIFTY, date(2026, 12, 29), CM, date(2026, 12, 29)),
    (NIFTY, date(2026, 12, 29), NM, date(2027, 1, 25)),
    # past this month's last expiry: current month is next month's (holiday-shifted) last
    (NIFTY, date(2026, 12, 30), CW, date(2027, 1, 5)),
    (NIFTY, date(2026, 12, 30), NW, date(2027, 1, 12)),
    (NIFTY, date(2026, 12, 30), CM, date(2027, 1, 25)),
    (NIFTY, date(2026, 12, 30), NM, date(2027, 2, 23)),
    (NIFTY, date(2027, 1, 26), CW, date(2027, 2, 2)),
    (NIFTY, date(2027, 1, 26), NW, date(2027, 2, 23)),
    (NIFTY, date(2027, 1, 26), CM, date(2027, 2, 23)),
    (NIFTY, date(2027, 1, 26), NM, date(2027, 3, 30)),
    # monthly-only: weeks map to months
    (BANKNIFTY, date(2026, 12, 1), CW, date(2026, 12, 29)),
    (BANKNIFTY, date(2026, 12, 1), NW, date(2027, 1, 25)),
    (BANKNIFTY, date(2026, 12, 1), CM, date(2026, 12, 29)),
    (BANKNIFTY, date(2026, 12, 1), NM, date(2027, 1, 25)),
    (BANKNIFTY, date(2026, 12, 29), CW, date(2026, 12, 29)),
    (BANKNIFTY, date(2026, 12, 29), NW, date(2027, 1, 25)),
    (BANKNIFTY, date(2026, 12, 30), CW, date(2027, 1, 25)),
    (BANKNIFTY, date(2026, 12, 30), NW, date(2027, 2, 23)),
    (BANKNIFTY, date(2026, 12, 30), NM, date(2027, 2, 23)),
    # Thursday weeklies, the monthly on the last day of the year
    (SENSEX, date(2026, 12, 31), CW, date(2026, 12, 31)),
    (SENSEX, date(2026, 12, 31), CM, date(2026, 12, 31)),
    (SENSEX, date(2026, 12, 31), NM, date(2027, 1, 28)),
    (SENSEX, date(2027, 1, 1), CW, date(2027, 1, 7)),
    (SENSEX, date(2027, 1, 1), NW, date(2027, 1, 14)),
    (SENSEX, date(2027, 1, 1), CM, date(2027, 1, 28)),
    (SENSEX, date(2027, 1, 1), NM, date(2027, 2, 25)),
])
def test_choose_expiry_decision_table_returns_expected_date(expiries, today, choice, expected):
    assert choose_expiry(choice, expiries, today) == expected


def test_choose_expiry_accepts_dates_unsorted_and_choice_values():
    days = [date(2027, 1, 25), date(2026, 12, 29), date(2026, 12, 29)]
    assert choose_expiry("next_week", days, date(2026, 12, 1)) == date(2027, 1, 25)


@pytest.mark.parametrize(("expiries", "today", "choice", "message"), [
    ([], date(2026, 12, 1), CW, "no expiry on or after 2026-12-01"),
    (NIFTY, date(2027, 3, 31), CM, "no expiry on or after 2027-03-31"),
    (NIFTY, date(2027, 3, 30), NW, "no next-week expiry: only 2027-03-30 is left"),
    (["01-DEC-26", "08-DEC-26", "29-DEC-26"], date(2026, 12, 1), NM, "the list has none in JAN 2027"),
    (["01-DEC-26", "08-DEC-26", "29-DEC-26", "23-FEB-27"], date(2026, 12, 30), CM,
     "DEC 2026 has none left on 2026-12-30 and the list has none in JAN 2027"),
    (BANKNIFTY, date(2027, 3, 1), NW, "the list has none in APR 2027"),
])
def test_choose_expiry_missing_choice_raises_expiry_unavailable(expiries, today, choice, message):
    with pytest.raises(ExpiryUnavailable, match=message):
        choose_expiry(choice, expiries, today)


def test_choose_expiry_unknown_choice_raises_value_error():
    with pytest.raises(ValueError, match="far_month"):
        choose_expiry("far_month", NIFTY, date(2026, 12, 1))


@pytest.mark.parametrize(("expiries", "expected"), [
    (NIFTY, False),
    (SENSEX, False),
    (BANKNIFTY, True),
    (["29-DEC-26"], True),
    ([], True),
    (["29-DEC-26", "31-DEC-26"], False),
])
def test_is_monthly_only_by_expiries_per_month(expiries, expected):
    assert is_monthly_only(expiries) is expected


def test_monthly_expiries_picks_last_of_each_month():
    assert monthly_expiries(NIFTY) == (date(2026, 12, 29), date(2027, 1, 25), date(2027, 2, 23), date(2027, 3, 30))


@pytest.mark.parametrize(("text", "expected"), [
    ("30-DEC-25", date(2025, 12, 30)),
    ("30DEC25", date(2025, 12, 30)),
    ("25-Aug-2026", date(2026, 8, 25)),
    (" 05-jan-27 ", date(2027, 1, 5)),
    ("29-FEB-28", date(2028, 2, 29)),
])
def test_parse_expiry_openalgo_formats_returns_date(text, expected):
    assert parse_expiry(text) == expected


@pytest.mark.parametrize("text", ["30-DEK-25", "31-FEB-26", "2025-12-30", "", "30-12-25", "29-FEB-27"])
def test_parse_expiry_bad_text_raises_invalid_expiry(text):
    with pytest.raises(InvalidExpiry):
        parse_expiry(text)


@pytest.mark.parametrize(("day", "expected"), [
    (date(2026, 12, 29), "29DEC26"),
    (date(2027, 1, 5), "05JAN27"),
    (date(2099, 3, 3), "03MAR99"),
    (date(2030, 10, 1), "01OCT30"),
])
def test_format_expiry_from_real_date_returns_ddmmmyy(day, expected):
    assert format_expiry(day) == expected


@pytest.mark.parametrize(("today", "expected"), [
    (date(2026, 12, 1), True),
    (date(2026, 12, 2), False),
    (date(2027, 1, 25), True),
    (date(2027, 1, 26), False),
])
def test_is_expiry_day_from_list_not_weekday(today, expected):
    assert is_expiry_day(today, NIFTY) is expected


def test_expiry_close_is_1530_ist_in_utc():
    assert expiry_close(date(2026, 12, 29)) == datetime(2026, 12, 29, 10, 0, tzinfo=UTC)


def test_ist_today_late_utc_evening_is_next_ist_day():
    assert ist_today(datetime(2026, 12, 31, 20, 0, tzinfo=UTC)) == date(2027, 1, 1)
    assert ist_today(datetime(2027, 1, 1, 0, 30, tzinfo=IST)) == date(2027, 1, 1)


def test_ist_today_naive_raises_value_error():
    with pytest.raises(ValueError, match="aware"):
        ist_today(datetime(2026, 12, 31, 20, 0))


# SENSEX in April/May 2025: Thursday 1 May was a holiday, so that weekly moved back to
# Wednesday 30 April, after April's monthly (Thursday 24 April). Only the futures list tells.
SENSEX_2025 = ["17-APR-25", "24-APR-25", "30-APR-25", "08-MAY-25", "15-MAY-25", "22-MAY-25", "29-MAY-25", "26-JUN-25"]
SENSEX_2025_FUTURES = ["24-APR-25", "29-MAY-25", "26-JUN-25"]


@pytest.mark.parametrize(("monthly", "choice", "expected"), [
    (SENSEX_2025_FUTURES, CM, date(2025, 4, 24)),
    (SENSEX_2025_FUTURES, NM, date(2025, 5, 29)),
    (None, CM, date(2025, 4, 30)),   # the last-in-month fallback picks the shifted weekly
    (SENSEX_2025_FUTURES, CW, date(2025, 4, 17)),
    (SENSEX_2025_FUTURES, NW, date(2025, 4, 24)),
])
def test_choose_expiry_with_futures_list_months_come_from_futures(monthly, choice, expected):
    assert choose_expiry(choice, SENSEX_2025, date(2025, 4, 16), monthly) == expected


@pytest.mark.parametrize(("expiries", "monthly", "expected"), [
    (SENSEX_2025, SENSEX_2025_FUTURES, False),
    (NIFTY, ["29-DEC-26", "25-JAN-27", "23-FEB-27"], False),
    # options beyond the futures horizon (a quarterly) do not make a monthly-only list weekly
    ([*BANKNIFTY, "29-JUN-27"], ["29-DEC-26", "25-JAN-27", "23-FEB-27"], True),
    # one expiry per month, but one of them is no futures expiry: not monthly-only
    (["22-DEC-26", "25-JAN-27"], ["29-DEC-26", "25-JAN-27"], False),
    (BANKNIFTY, [], True),
])
def test_is_monthly_only_with_futures_list(expiries, monthly, expected):
    assert is_monthly_only(expiries, monthly) is expected
