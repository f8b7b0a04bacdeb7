"""Payoff at expiry (exact breakevens, max profit/loss, unlimited from slopes), T+0 and greeks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP
from decimal import Decimal as D

import pytest

from app.domain import black76
from app.domain.instruments import Action, OptionType
from app.domain.payoff import (
    PayoffLeg,
    analyze_payoff,
    chart_range,
    payoff_at_expiry,
    payoff_today,
    position_greeks,
    price_grid,
)

BUY, SELL = Action.BUY, Action.SELL
CE, PE = OptionType.CE, OptionType.PE
NOW = datetime(2026, 12, 22, 4, 0, tzinfo=UTC)          # 09:30 IST
EXPIRES = datetime(2026, 12, 29, 10, 0, tzinfo=UTC)     # 15:30 IST a week later


def leg(action, option_type, strike, entry, quantity=65, iv=None):
    return PayoffLeg(action, option_type, None if strike is None else D(strike), D(entry), quantity,
                     None if iv is None else D(iv), EXPIRES if iv is not None else None)


SHORT_STRADDLE = [leg(SELL, CE, 26000, 200), leg(SELL, PE, 26000, 180)]
IRON_CONDOR = [leg(SELL, PE, 25800, 60), leg(BUY, PE, 25600, 25), leg(SELL, CE, 26200, 55), leg(BUY, CE, 26400, 20)]


@pytest.mark.parametrize(("legs", "breakevens", "max_profit", "max_loss", "slope"), [
    (SHORT_STRADDLE, (D(25620), D(26380)), D(24700), None, -65),        # only calls slope up there
    (IRON_CONDOR, (D(25730), D(26270)), D(4550), D(-8450), 0),
    ([leg(BUY, CE, 26000, 150)], (D(26150),), None, D(-9750), 65),
    ([leg(SELL, PE, 26000, 150)], (D(25850),), D(9750), D(-1680250), 0),        # the floor at 0 bounds it
    ([leg(BUY, PE, 26000, 150)], (D(25850),), D(1680250), D(-9750), 0),
    ([leg(BUY, None, None, 26000)], (D(26000),), None, D(-1690000), 65),
    ([leg(SELL, None, None, 26000)], (D(26000),), D(1690000), None, -65),
    ([leg(BUY, None, None, 26000), leg(SELL, CE, 26200, 80)], (D(25920),), D(18200), D(-1684800), 0),
    ([leg(BUY, CE, 26000, 100, 130), leg(SELL, CE, 26100, 60, 195)], (D(26010), D(26280)), D(11700), None, -65),
    ([leg(BUY, CE, 26000, 100), leg(SELL, CE, 26100, 40)], (D(26060),), D(2600), D(-3900), 0),  # bull call spread
    ([leg(BUY, CE, 26000, 200), leg(BUY, PE, 26000, 180)], (D(25620), D(26380)), None, D(-24700), 65),
])
def test_analyze_payoff_exact_breakevens_and_extremes(legs, breakevens, max_profit, max_loss, slope):
    summary = analyze_payoff(legs)
    assert summary.breakevens == breakevens
    assert summary.max_profit == max_profit
    assert summary.max_loss == max_loss
    assert summary.slope_above == slope
    assert summary.profit_unlimited is (max_profit is None)
    assert summary.loss_unlimited is (max_loss is None)


def test_analyze_payoff_breakeven_between_kinks_is_exact_fraction():
    # net debit 10 (30 paid, 20 received), then a slope of 3 units above 100: zero at 100 + 10/3
    legs = [leg(BUY, CE, 100, 10, 3), leg(SELL, PE, 90, 20, 1)]
    summary = analyze_payoff(legs)
    assert summary.breakevens == (D(100) + D(10) / D(3),)
    assert abs(payoff_at_expiry(legs, summary.breakevens)[0]) < D("1e-20")
    assert (summary.max_profit, summary.max_loss) == (None, D(-100))


def test_analyze_payoff_unlimited_is_from_slope_not_sampled_range():
    # profitable everywhere a chart would sample near the money, but the slope is negative far out
    legs = [leg(BUY, CE, 26000, 10, 130), leg(SELL, CE, 30000, 1, 195)]
    summary = analyze_payoff(legs)
    assert summary.loss_unlimited
    assert summary.max_profit == D(130 * 4000 - 1300 + 195)
    assert all(v > 0 for v in payoff_at_expiry(legs, price_grid(D(26100), D(30000), 40)))


@pytest.mark.parametrize(("price", "expected"), [
    (D(26000), D(24700)), (D(25000), D(-40300)), (D(27000), D(-40300)), (D(25620), D(0)), (D("26380.5"), D("-32.5")),
])
def test_payoff_at_expiry_short_straddle_values(price, expected):
    assert payoff_at_expiry(SHORT_STRADDLE, [price]) == (expected,)


def test_price_grid_even_steps_both_ends_included():
    assert price_grid(D(25000), D(27000), 5) == (D(25000), D(25500), D(26000), D(26500), D(27000))


@pytest.mark.parametrize(("low", "high", "points"), [(D(-1), D(10), 3), (D(10), D(10), 3), (D(1), D(10), 1)])
def test_price_grid_bad_range_raises_value_error(low, high, points):
    with pytest.raises(ValueError):
        price_grid(low, high, points)


def test_chart_range_covers_strikes_and_spot_with_padding():
    assert chart_range(IRON_CONDOR, D(26000)) == (D(23000), D(29000))
    assert chart_range(IRON_CONDOR, D(26000), D(100)) == (D(0), D(52400))


def _paise(value: float) -> D:
    return D(repr(value)).quantize(D("0.01"), rounding=ROUND_HALF_UP)


def test_payoff_today_synthetic_future_equals_linear_payoff():
    # BUY CE + SELL PE at one strike is a synthetic long future: at rate 0 its value today is
    # exactly (S - K) whatever the (common) volatility, so the T+0 curve is (S - K - c + p) × qty.
    legs = [leg(BUY, CE, 26000, "210.50", iv=15), leg(SELL, PE, 26000, "160.25", iv=15)]
    assert payoff_today(legs, [D(26100), D(25900), D(26000)], NOW) == (D("3233.75"), D("-9766.25"), D("-3266.25"))
    greeks = position_greeks(legs, D(26050), NOW)
    assert (greeks.delta, greeks.gamma, greeks.theta, greeks.vega) == (D(65), D(0), D(0), D(0))


def test_payoff_today_at_expiry_equals_expiry_payoff():
    legs = [leg(SELL, CE, 26000, 200, iv=13), leg(SELL, PE, 26000, 180, iv=14)]
    prices = [D(25000), D(25620), D(26000), D("26380.5"), D(27000)]
    assert payoff_today(legs, prices, EXPIRES) == payoff_at_expiry(legs, prices)
    assert payoff_today(legs, prices, EXPIRES + timedelta(days=1)) == payoff_at_expiry(legs, prices)


def test_payoff_today_short_straddle_is_black76_value_times_quantity():
    legs = [leg(SELL, CE, 26000, 200, iv=13), leg(SELL, PE, 26000, 180, iv=14)]
    years = black76.years_between(NOW, EXPIRES)
    call = black76.price(26100.0, 26000.0, years, 0.13, CE)
    put = black76.price(26100.0, 26000.0, years, 0.14, PE)
    assert payoff_today(legs, [D(26100)], NOW) == (_paise(-65 * (call - 200) - 65 * (put - 180)),)


def test_position_greeks_short_straddle_sums_legs_with_signs():
    legs = [leg(SELL, CE, 26000, 200, iv=13), leg(SELL, PE, 26000, 180, iv=14)]
    years = black76.years_between(NOW, EXPIRES)
    c = black76.greeks(26100.0, 26000.0, years, 0.13, CE)
    p = black76.greeks(26100.0, 26000.0, years, 0.14, PE)
    greeks = position_greeks(legs, D(26100), NOW)
    assert greeks.delta == D(repr(-65 * (c.delta + p.delta))).quantize(D("0.0001"), rounding=ROUND_HALF_UP)
    assert greeks.theta == _paise(-65 * (c.theta + p.theta))
    assert greeks.vega == _paise(-65 * (c.vega + p.vega))
    assert greeks.gamma < 0 < greeks.theta and greeks.vega < 0


def test_position_greeks_future_leg_is_pure_delta():
    greeks = position_greeks([leg(SELL, None, None, 26000, 130)], D(26000), NOW)
    assert (greeks.delta, greeks.gamma, greeks.theta, greeks.vega) == (D(-130), D(0), D(0), D(0))


def test_payoff_today_price_zero_on_the_axis_uses_the_floor():
    legs = [leg(BUY, PE, 26000, 150, iv=15)]
    assert payoff_today(legs, [D(0)], NOW) == (D(65 * (26000 - 150)),)


def test_payoff_today_option_without_iv_raises_value_error():
    with pytest.raises(ValueError, match="SELL 26000 CE leg needs its IV and expiry"):
        payoff_today([leg(SELL, CE, 26000, 200)], [D(26000)], NOW)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"strike": None}, "needs a positive strike"),
    ({"strike": D(0)}, "needs a positive strike"),
    ({"option_type": None}, "a future leg has no strike"),
    ({"quantity": 0}, "quantity must be a whole number >= 1"),
    ({"entry_price": D(-1)}, "cannot be negative"),
    ({"iv": D(-1)}, "implied volatility cannot be negative"),
    ({"expires_at": datetime(2026, 12, 29, 15, 30)}, "aware"),
])
def test_payoff_leg_bad_values_raise_value_error(kwargs, message):
    args = {"action": SELL, "option_type": CE, "strike": D(26000), "entry_price": D(200), "quantity": 65, **kwargs}
    with pytest.raises(ValueError, match=message):
        PayoffLeg(**args)


def test_analyze_payoff_no_legs_raises_value_error():
    with pytest.raises(ValueError, match="at least one leg"):
        analyze_payoff([])
