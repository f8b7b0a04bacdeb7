"""Black-76 against textbook cases, an independent high-precision evaluation, parity and
finite differences."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext

import pytest

from app.domain import black76
from app.domain.instruments import OptionType

CE, PE = OptionType.CE, OptionType.PE
_PI = Decimal("3.14159265358979323846264338327950288419716939937510582097494459")


def _reference_price(forward, strike, years, vol, rate, is_call) -> Decimal:
    """Black-76 in 60-digit Decimal, with the normal CDF from erf's Taylor series: written
    independently of the module under test (no math.erf, no floats)."""
    with localcontext() as ctx:
        ctx.prec = 60
        f, k, t, s, r = (Decimal(str(x)) for x in (forward, strike, years, vol, rate))

        def cdf(x: Decimal) -> Decimal:
            z = x / Decimal(2).sqrt()
            term, total, n = z, z, 0
            while abs(term) > Decimal("1e-55"):
                n += 1
                term = -term * z * z / n
                total += term / (2 * n + 1)
            return (1 + 2 / _PI.sqrt() * total) / 2

        spread = s * t.sqrt()
        d1 = ((f / k).ln() + spread * spread / 2) / spread
        d2 = d1 - spread
        discount = (-r * t).exp()
        if is_call:
            return discount * (f * cdf(d1) - k * cdf(d2))
        return discount * (k * cdf(-d2) - f * cdf(-d1))


@pytest.mark.parametrize(("forward", "strike", "years", "vol", "rate", "option_type", "textbook", "places"), [
    (19.0, 19.0, 0.75, 0.28, 0.10, CE, 1.7011, 4),        # Haug, Black-76 example: c = p = 1.7011
    (19.0, 19.0, 0.75, 0.28, 0.10, PE, 1.7011, 4),
    (20.0, 20.0, 4 / 12, 0.25, 0.09, PE, 1.12, 2),        # Hull, put on a futures contract: 1.12
])
def test_price_textbook_case_matches_published_and_reference(forward, strike, years, vol, rate, option_type,
                                                             textbook, places):
    value = black76.price(forward, strike, years, vol, option_type, rate)
    assert round(value, places) == textbook
    reference = _reference_price(forward, strike, years, vol, rate, option_type is CE)
    assert abs(value - float(reference)) < 1e-6


@pytest.mark.parametrize(("forward", "strike", "years", "vol", "rate"), [
    (26050.0, 26000.0, 7 / 365, 0.13, 0.065),
    (26050.0, 27000.0, 35 / 365, 0.15, 0.0),
    (59000.0, 57500.0, 0.5 / 365, 0.22, 0.07),
    (85000.0, 85000.0, 1.0, 0.12, 0.0),
])
def test_price_index_cases_match_reference_to_1e_6(forward, strike, years, vol, rate):
    for option_type in (CE, PE):
        value = black76.price(forward, strike, years, vol, option_type, rate)
        reference = _reference_price(forward, strike, years, vol, rate, option_type is CE)
        assert abs(value - float(reference)) < 1e-6


@pytest.mark.parametrize(("forward", "strike", "years", "vol", "rate"), [
    (26050.0, 26000.0, 7 / 365, 0.13, 0.065),
    (26050.0, 24000.0, 60 / 365, 0.18, 0.07),
    (19.0, 25.0, 2.0, 0.4, 0.1),
    (100.0, 100.0, 1e-4, 0.9, 0.0),
])
def test_price_put_call_parity_holds(forward, strike, years, vol, rate):
    call = black76.price(forward, strike, years, vol, CE, rate)
    put = black76.price(forward, strike, years, vol, PE, rate)
    assert call - put == pytest.approx(math.exp(-rate * years) * (forward - strike), abs=1e-7)


@pytest.mark.parametrize("option_type", [CE, PE])
@pytest.mark.parametrize(("forward", "strike", "years", "vol", "rate"), [
    (26050.0, 26000.0, 7 / 365, 0.13, 0.065),
    (26050.0, 25500.0, 30 / 365, 0.16, 0.0),
])
def test_greeks_match_finite_differences(option_type, forward, strike, years, vol, rate):
    g = black76.greeks(forward, strike, years, vol, option_type, rate)

    def p(f=forward, t=years, s=vol):
        return black76.price(f, strike, t, s, option_type, rate)

    h = 0.01
    assert g.delta == pytest.approx((p(f=forward + h) - p(f=forward - h)) / (2 * h), abs=1e-6)
    assert g.gamma == pytest.approx((p(f=forward + 1) - 2 * p() + p(f=forward - 1)) / 1.0, rel=1e-4)
    dv = 1e-5
    assert g.vega == pytest.approx((p(s=vol + dv) - p(s=vol - dv)) / (2 * dv) / 100, rel=1e-6)
    dt = 1e-6
    theta_day = -(p(t=years + dt) - p(t=years - dt)) / (2 * dt) / 365
    assert g.theta == pytest.approx(theta_day, rel=1e-5)


def test_greeks_signs_long_atm_call_and_put():
    call = black76.greeks(26000.0, 26000.0, 7 / 365, 0.13, CE)
    put = black76.greeks(26000.0, 26000.0, 7 / 365, 0.13, PE)
    assert 0.5 < call.delta < 0.52 and -0.5 < put.delta < -0.48
    assert call.delta - put.delta == pytest.approx(1.0, abs=1e-12)     # rate 0: N(d1) + N(-d1)
    assert call.gamma == pytest.approx(put.gamma, rel=1e-12)
    assert call.vega == pytest.approx(put.vega, rel=1e-12)
    assert call.theta < 0 and call.theta == pytest.approx(put.theta, rel=1e-12)


@pytest.mark.parametrize(("years", "vol", "option_type", "expected", "delta"), [
    (0.0, 0.15, CE, 50.0, 1.0),
    (0.0, 0.15, PE, 0.0, 0.0),
    (0.5, 0.0, CE, 50.0, 1.0),
])
def test_greeks_at_expiry_or_zero_vol_intrinsic(years, vol, option_type, expected, delta):
    g = black76.greeks(26050.0, 26000.0, years, vol, option_type)
    assert (g.price, g.delta, g.gamma, g.theta, g.vega) == (expected, delta, 0.0, 0.0, 0.0)


@pytest.mark.parametrize(("forward", "strike", "years", "vol"), [(0.0, 100.0, 1.0, 0.2), (100.0, -1.0, 1.0, 0.2),
                                                                 (100.0, 100.0, -1.0, 0.2), (100.0, 100.0, 1.0, -0.1),
                                                                 (100.0, 100.0, math.nan, 0.2)])
def test_price_bad_inputs_raise_value_error(forward, strike, years, vol):
    with pytest.raises(ValueError):
        black76.price(forward, strike, years, vol, CE)


def test_years_between_uses_365_day_years_and_stops_at_zero():
    now = datetime(2026, 12, 22, 10, 0, tzinfo=UTC)
    assert black76.years_between(now, now + timedelta(days=73)) == pytest.approx(0.2, abs=1e-15)
    assert black76.years_between(now, now - timedelta(hours=1)) == 0.0
    with pytest.raises(ValueError, match="aware"):
        black76.years_between(datetime(2026, 12, 22), now)
