"""In-process unit tests: calendar, symbols, pricing, validation and market determinism."""

from __future__ import annotations

import math
from datetime import date, datetime

import pytest

from paperbroker import nse_calendar as cal
from paperbroker.clock import Clock
from paperbroker.history import history
from paperbroker.instruments import Master, future_symbol, option_symbol
from paperbroker.market import Market
from paperbroker.orders import split_quantities
from paperbroker.pricing import black76, implied_vol
from paperbroker.schemas import SCHEMAS, validate

START = datetime.fromisoformat("2026-01-05T10:00:00+05:30")


def make_market(seed: int = 7) -> Market:
    return Market(seed, Clock(START, frozen=True), Master(), backfill_days=5)


def test_symbols_follow_openalgo_format() -> None:
    assert option_symbol("VEDL", date(2025, 4, 24), 292.5, "CE") == "VEDL24APR25292.5CE"
    assert option_symbol("NIFTY", date(2025, 12, 30), 26000.0, "PE") == "NIFTY30DEC2526000PE"
    assert future_symbol("BANKNIFTY", date(2026, 1, 27)) == "BANKNIFTY27JAN26FUT"


@pytest.mark.parametrize(("weekday", "now", "expected"), [
    (cal.TUESDAY, "2026-03-20T10:00:00+05:30", date(2026, 3, 30)),  # 31 Mar holiday → Mon 30 Mar
    (cal.THURSDAY, "2026-03-20T10:00:00+05:30", date(2026, 3, 25)),  # 26 Mar holiday → Wed 25 Mar
    (cal.TUESDAY, "2026-01-27T15:29:00+05:30", date(2026, 1, 27)),  # live until 15:30 on the day
    (cal.TUESDAY, "2026-01-27T15:30:00+05:30", date(2026, 2, 24)),
])
def test_monthly_expiry_moves_to_previous_trading_day(weekday: int, now: str, expected: date) -> None:
    assert cal.monthly_expiries(weekday, datetime.fromisoformat(now), 1) == [expected]


def test_weekly_expiry_on_holiday_moves_back() -> None:
    weeks = cal.weekly_expiries(cal.TUESDAY, datetime.fromisoformat("2026-03-01T10:00:00+05:30"), 3)
    assert weeks == [date(2026, 3, 2), date(2026, 3, 10), date(2026, 3, 17)]  # 3 Mar holiday → 2 Mar


def test_split_quantities_put_the_remainder_last() -> None:
    assert split_quantities(2600, 1755) == [1755, 845]
    assert split_quantities(5, 2) == [2, 2, 1]


def test_black76_put_call_parity_and_implied_vol_round_trip() -> None:
    f, k, t, r, v = 26000.0, 26200.0, 0.05, 0.065, 0.14
    call, put = black76(f, k, t, v, r, True), black76(f, k, t, v, r, False)
    assert call - put == pytest.approx(math.exp(-r * t) * (f - k), abs=1e-6)
    assert implied_vol(call, f, k, t, r, True) == pytest.approx(v, abs=1e-5)


def test_validation_messages_match_marshmallow() -> None:
    _, errors = validate(SCHEMAS["placeorder"], {"apikey": "k", "strategy": "s", "exchange": "NSE",
                                                 "symbol": "SBIN", "action": "buy", "quantity": "x", "foo": 1})
    assert errors == {"quantity": ["Not a valid number."], "foo": ["Unknown field."]}
    _, errors = validate(SCHEMAS["basketorder"], {"apikey": "k", "strategy": "s", "orders": [
        {"exchange": "NSE", "symbol": "SBIN", "action": "sell", "quantity": "3"}, {"bad": 1}]})
    assert errors["orders"][1]["bad"] == ["Unknown field."] and 0 not in errors["orders"]


def test_same_seed_gives_same_ticks_and_candles() -> None:
    a, b, c = make_market(7), make_market(7), make_market(8)
    for m in (a, b, c):
        for _ in range(30):
            m.clock.advance(20)
            m.step()
    assert a.spot == b.spot and a.spot != c.spot
    nifty = a.master.get("NSE_INDEX", "NIFTY")
    assert nifty is not None
    span = (date(2025, 12, 29), date(2026, 1, 5))
    assert history(a, nifty, "5m", *span) == history(b, nifty, "5m", *span)
    assert history(a, nifty, "5m", *span) != history(c, nifty, "5m", *span)


def test_candles_are_built_from_the_ticks() -> None:
    m = make_market()
    ticks = []
    for _ in range(12):
        m.clock.advance(5)
        m.step()
        ticks.append((int(m.clock.epoch() // 60 * 60), m.spot["NIFTY"]))
    nifty = m.master.get("NSE_INDEX", "NIFTY")
    assert nifty is not None
    rows = {r["timestamp"]: r for r in history(m, nifty, "1m", date(2026, 1, 5), date(2026, 1, 5))}
    for minute in {t for t, _ in ticks}:
        prices = [p for t, p in ticks if t == minute]
        assert rows[minute]["close"] == prices[-1]
        assert rows[minute]["high"] >= max(prices) and rows[minute]["low"] <= min(prices)
    assert rows[max(rows)]["close"] == m.spot["NIFTY"]
