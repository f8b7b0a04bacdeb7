"""The price-reliability guard: which prices a risk rule may act on, and one log line per span."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from app.domain.price_guard import (
    DEFAULT_MAX_PRICE_AGE,
    PriceCheck,
    PriceProblem,
    SpanEnded,
    SpanStarted,
    UnreliableSpan,
    assess_prices,
    check_price,
    parse_price,
)

NOW = datetime(2026, 1, 5, 4, 0, 0, tzinfo=UTC)  # 09:30 IST
MAX_AGE = timedelta(seconds=5)


def test_default_max_age_is_fifteen_seconds():
    assert DEFAULT_MAX_PRICE_AGE == timedelta(seconds=15)


@pytest.mark.parametrize(("value", "expected"), [
    (D("101.05"), D("101.05")), (101, D("101")), (0.1, D("0.1")), (" 1234.50 ", D("1234.50")),
    ("abc", None), ("", None), ("nan", None), (float("nan"), None), (float("inf"), None), ("Infinity", None),
    (True, None), (None, None), ([1], None),
])
def test_parse_price_accepts_broker_numbers_and_strings_only(value, expected):
    assert parse_price(value) == expected


@pytest.mark.parametrize(("age", "usable"), [
    (timedelta(0), True),
    (MAX_AGE - timedelta(microseconds=1), True),
    (MAX_AGE, True),  # exactly at the limit is still usable
    (MAX_AGE + timedelta(microseconds=1), False),
    (timedelta(hours=3), False),
    (timedelta(seconds=-2), True),  # the source's clock is ahead: not stale
])
def test_check_price_age_limit_is_inclusive(age, usable):
    check = check_price(D("100"), NOW - age, NOW, MAX_AGE)
    assert check.usable is usable
    assert check.age == age
    assert check.price == (D("100") if usable else None)
    assert check.problem is (None if usable else PriceProblem.STALE)


@pytest.mark.parametrize(("value", "priced_at", "problem"), [
    (None, NOW, PriceProblem.MISSING),
    (D("100"), None, PriceProblem.MISSING),
    ("abc", NOW, PriceProblem.NOT_NUMERIC),
    (float("nan"), NOW, PriceProblem.NOT_NUMERIC),
    (D("NaN"), NOW, PriceProblem.NOT_NUMERIC),
    (0, NOW, PriceProblem.NOT_POSITIVE),
    (D("0.00"), NOW, PriceProblem.NOT_POSITIVE),
    ("-5", NOW, PriceProblem.NOT_POSITIVE),
    (D("0"), NOW - timedelta(hours=1), PriceProblem.NOT_POSITIVE),  # a zero is reported as a zero, not as stale
])
def test_check_price_bad_prices_are_not_usable(value, priced_at, problem):
    check = check_price(value, priced_at, NOW, MAX_AGE)
    assert not check.usable
    assert check.problem is problem
    assert check.price is None


def test_check_price_string_price_is_parsed():
    assert check_price("0.05", NOW, NOW).price == D("0.05")


def test_check_price_reasons_name_the_problem_and_the_age():
    assert check_price(D("1"), NOW - timedelta(seconds=12.5), NOW, MAX_AGE).reason == "stale (12.5 s old, limit 5 s)"
    assert check_price(D("1"), NOW - timedelta(seconds=20), NOW, timedelta(seconds=20)).reason == "usable"
    assert check_price(0, NOW, NOW).reason == "zero or negative price"
    assert check_price("x", NOW, NOW).reason == "not a number"
    assert check_price(None, NOW, NOW).reason == "no price"


def test_check_price_naive_times_and_negative_limit_are_refused():
    with pytest.raises(ValueError):
        check_price(D("1"), NOW.replace(tzinfo=None), NOW)
    with pytest.raises(ValueError):
        check_price(D("1"), NOW, NOW.replace(tzinfo=None))
    with pytest.raises(ValueError):
        check_price(D("1"), NOW, NOW, timedelta(seconds=-1))


def _checks(**values: object) -> dict[str, PriceCheck]:
    return {key: check_price(value, NOW - timedelta(seconds=1), NOW, MAX_AGE) for key, value in values.items()}


def test_assess_prices_reliable_only_when_every_open_leg_is_usable():
    assert assess_prices(_checks(CE=D("100"), PE="99.5")).reliable
    assert assess_prices({}).reliable
    verdict = assess_prices(_checks(CE=D("100"), PE=0, FUT="nan"))
    assert not verdict.reliable
    assert [key for key, _ in verdict.problems] == ["PE", "FUT"]
    assert verdict.reason == "PE: zero or negative price; FUT: not a number"


def test_unreliable_span_logs_once_at_start_and_once_at_end_with_duration():
    good = assess_prices(_checks(CE=D("100")))
    zero = assess_prices(_checks(CE=0))
    stale = assess_prices({"CE": check_price(D("100"), NOW - timedelta(seconds=9), NOW, MAX_AGE)})
    sequence = [good, zero, stale, zero, good, good, stale, good]
    span = UnreliableSpan()
    events = []
    for second, verdict in enumerate(sequence):
        span, event = span.observe(verdict, NOW + timedelta(seconds=second))
        events.append(event)
    assert events == [
        None,
        SpanStarted(NOW + timedelta(seconds=1), "CE: zero or negative price"),
        None,
        None,
        SpanEnded(NOW + timedelta(seconds=1), NOW + timedelta(seconds=4), "CE: zero or negative price", 3),
        None,
        SpanStarted(NOW + timedelta(seconds=6), "CE: stale (9 s old, limit 5 s)"),
        SpanEnded(NOW + timedelta(seconds=6), NOW + timedelta(seconds=7), "CE: stale (9 s old, limit 5 s)", 1),
    ]
    assert events[4].duration == timedelta(seconds=3)
    assert not span.active


def test_unreliable_span_is_active_while_holding():
    span, _ = UnreliableSpan().observe(assess_prices(_checks(CE=None)), NOW)
    assert span.active
    assert span.started_at == NOW
