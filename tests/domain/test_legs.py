"""LegSpec validation and the LIMIT price rule."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from app.domain.expiries import ExpiryChoice
from app.domain.instruments import Action, InstrumentKind, OptionType
from app.domain.legs import LegSpec, expiry_reference_day, leg_expiry, limit_price
from app.domain.strategy_settings import OrderType
from app.domain.strikes import StrikeMethod, StrikeRule

OTM2 = StrikeRule(StrikeMethod.OTM, offset=2)


def _option(**overrides) -> LegSpec:
    fields = {"underlying": "nifty", "kind": "option", "expiry_choice": "current_week", "strike_rule": OTM2,
              "option_type": "CE", "action": "SELL", "lots": 1}
    return LegSpec(**{**fields, **overrides})


def test_option_leg_from_strings_holds_enums():
    leg = _option()
    assert (leg.underlying, leg.kind, leg.expiry_choice, leg.option_type, leg.action, leg.order_type) == (
        "NIFTY", InstrumentKind.OPTION, ExpiryChoice.CURRENT_WEEK, OptionType.CE, Action.SELL, OrderType.MARKET)
    assert leg.label == "SELL NIFTY OTM2 CE (current week)"


def test_future_leg_label():
    leg = LegSpec("BANKNIFTY", InstrumentKind.FUTURE, ExpiryChoice.NEXT_MONTH, None, None, Action.BUY, 2)
    assert leg.label == "BUY BANKNIFTY FUT (next month)"


@pytest.mark.parametrize(("overrides", "message"), [
    ({"underlying": "RELIANCE"}, "unknown underlying"),
    ({"lots": 0}, "at least 1"),
    ({"lots": 1.5}, "whole number"),
    ({"lots": True}, "whole number"),
    ({"strike_rule": None}, "needs a strike rule"),
    ({"option_type": None}, "needs a strike rule"),
    ({"kind": "future"}, "takes no strike rule"),
    ({"order_type": "LIMIT"}, "needs a buffer"),
    ({"order_type": "LIMIT", "limit_buffer_pct": Decimal("-1")}, "from 0 to 50"),
    ({"order_type": "LIMIT", "limit_buffer_pct": Decimal("50.01")}, "from 0 to 50"),
    ({"limit_buffer_pct": Decimal("1")}, "MARKET leg takes no limit buffer"),
    ({"expiry_choice": "weekly"}, "weekly"),
])
def test_invalid_leg_is_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        _option(**overrides)


@pytest.mark.parametrize(("ltp", "action", "buffer", "tick", "expected"), [
    (Decimal("100"), "BUY", Decimal("2"), Decimal("0.05"), Decimal("102.00")),
    (Decimal("100"), "SELL", Decimal("2"), Decimal("0.05"), Decimal("98.00")),
    (Decimal("81.15"), "BUY", Decimal("1"), Decimal("0.05"), Decimal("82.00")),  # 81.9615 → up
    (Decimal("81.15"), "SELL", Decimal("1"), Decimal("0.05"), Decimal("80.30")),  # 80.3385 → down
    (Decimal("0.05"), "SELL", Decimal("50"), Decimal("0.05"), Decimal("0.05")),  # never below a tick
    (Decimal("100"), "BUY", Decimal("0"), Decimal("0"), Decimal("100")),
])
def test_limit_price_rounds_away_from_the_market(ltp, action, buffer, tick, expected):
    assert limit_price(ltp, action, buffer, tick) == expected


def test_limit_price_needs_a_positive_ltp():
    with pytest.raises(ValueError, match="positive LTP"):
        limit_price(Decimal(0), "BUY", Decimal(1), Decimal("0.05"))


@pytest.mark.parametrize(("instant", "expected"), [
    ("2026-01-06T15:29:59+05:30", date(2026, 1, 6)),
    ("2026-01-06T15:30:00+05:30", date(2026, 1, 7)),  # the close: today's contracts have expired
    ("2026-01-06T18:45:00+00:00", date(2026, 1, 7)),  # 00:15 IST on the 7th
    ("2026-01-05T23:59:00+00:00", date(2026, 1, 6)),  # 05:29 IST on the 6th, before its close
])
def test_expiry_reference_day_moves_past_the_close(instant, expected):
    assert expiry_reference_day(datetime.fromisoformat(instant)) == expected


NIFTY_OPTIONS = ["06-JAN-26", "13-JAN-26", "20-JAN-26", "27-JAN-26", "03-FEB-26", "24-FEB-26"]
NIFTY_FUTURES = ["27-JAN-26", "24-FEB-26", "30-MAR-26"]


@pytest.mark.parametrize(("kind", "choice", "expected"), [
    ("option", "current_week", "2026-01-06"),
    ("option", "next_week", "2026-01-13"),
    ("option", "current_month", "2026-01-27"),
    ("option", "next_month", "2026-02-24"),
    ("future", "current_week", "2026-01-27"),  # a futures list is monthly-only: weeks map to months
    ("future", "next_week", "2026-02-24"),
    ("future", "current_month", "2026-01-27"),
    ("future", "next_month", "2026-02-24"),
])
def test_leg_expiry_from_the_brokers_lists(kind, choice, expected):
    if kind == "option":
        spec = _option(expiry_choice=choice)
    else:
        spec = LegSpec("NIFTY", "future", choice, None, None, "BUY", 1)
    assert leg_expiry(spec, NIFTY_OPTIONS, NIFTY_FUTURES, date(2026, 1, 5)) == date.fromisoformat(expected)


def test_label_writes_stored_prices_short():
    strike = _option(strike_rule=StrikeRule(StrikeMethod.STRIKE, strike=Decimal("26025.00")))
    premium = _option(strike_rule=StrikeRule(StrikeMethod.PREMIUM_NEAR, target_premium=Decimal("40.50")))
    assert (strike.label, premium.label) == ("SELL NIFTY strike 26025 CE (current week)",
                                             "SELL NIFTY premium ≈ 40.5 CE (current week)")
