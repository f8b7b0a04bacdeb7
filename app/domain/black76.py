"""Black-76: European options on a forward (index options priced off the future).

Floats inside, on purpose: the model is a smooth approximation built on exp, log and the
normal distribution (math.erf), and Decimal has neither the functions nor any use for the
extra digits. The boundary with the Decimal world is payoff.py, which converts prices and
quantities in and rounds results out.

Units:
- forward, strike, price: the same currency units per unit of the underlying.
- years: time to expiry in years of 365 days (see `years_between`).
- vol: annualised volatility as a fraction (0.15 for an IV of 15 %).
- rate: continuously compounded annual rate as a fraction (OpenAlgo's default is 0).
Greeks: delta and gamma with respect to the forward; theta is the change in value per
calendar day (negative for a long option, time decay); vega is the change in value for a
one-percentage-point rise in volatility (15 % -> 16 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from app.domain.instruments import OptionType

DAYS_PER_YEAR = 365.0
_SQRT2 = math.sqrt(2.0)
_SQRT_2PI = math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class OptionGreeks:
    """Price and sensitivities of one option unit (long)."""

    price: float
    delta: float
    gamma: float
    theta: float  # per calendar day
    vega: float  # per 1 percentage point of volatility


def norm_cdf(x: float) -> float:
    """Standard normal cumulative distribution."""
    return 0.5 * (1.0 + math.erf(x / _SQRT2))


def norm_pdf(x: float) -> float:
    """Standard normal density."""
    return math.exp(-0.5 * x * x) / _SQRT_2PI


def years_between(now: datetime, expires_at: datetime) -> float:
    """Time from `now` to `expires_at` in years of 365 days, 0 once expired.

    Raises:
        ValueError: either datetime is naive.
    """
    for moment in (now, expires_at):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("aware datetimes are required")
    return max((expires_at - now).total_seconds(), 0.0) / (DAYS_PER_YEAR * 86400.0)


def _check(forward: float, strike: float, years: float, vol: float) -> None:
    if not (forward > 0 and strike > 0):
        raise ValueError("forward and strike must be positive")
    if years < 0 or vol < 0 or not (math.isfinite(years) and math.isfinite(vol)):
        raise ValueError("time and volatility must be finite and >= 0")


def _intrinsic(forward: float, strike: float, is_call: bool) -> float:
    return max(forward - strike, 0.0) if is_call else max(strike - forward, 0.0)


def price(forward: float, strike: float, years: float, vol: float, option_type: OptionType | str,
          rate: float = 0.0) -> float:
    """Black-76 price of a European call or put.

    Args:
        forward: forward (futures) price of the underlying.
        strike: the option's strike.
        years: time to expiry in years (0 = at expiry).
        vol: volatility as a fraction.
        option_type: CE (call) or PE (put).
        rate: risk-free rate as a fraction (discounting only).
    Returns:
        call = e^(-rT) [F N(d1) - K N(d2)], put = e^(-rT) [K N(-d2) - F N(-d1)]; at T = 0 or
        vol = 0 the discounted intrinsic value.
    Raises:
        ValueError: non-positive forward or strike, negative time or volatility.
    """
    return greeks(forward, strike, years, vol, option_type, rate).price


def greeks(forward: float, strike: float, years: float, vol: float, option_type: OptionType | str,
           rate: float = 0.0) -> OptionGreeks:
    """Black-76 price, delta, gamma, theta (per day) and vega (per 1 % IV) of one long option.

    Arguments and errors as `price`. At T = 0 or vol = 0 the option is worth its discounted
    intrinsic value, delta is the discounted 0/±1 step, and gamma, theta and vega are 0.
    """
    _check(forward, strike, years, vol)
    is_call = OptionType(option_type) is OptionType.CE
    discount = math.exp(-rate * years)
    spread = vol * math.sqrt(years)
    if spread == 0.0:
        value = discount * _intrinsic(forward, strike, is_call)
        step = 1.0 if (forward > strike if is_call else forward < strike) else 0.0
        return OptionGreeks(value, discount * step * (1.0 if is_call else -1.0), 0.0, 0.0, 0.0)
    d1 = (math.log(forward / strike) + 0.5 * spread * spread) / spread
    d2 = d1 - spread
    if is_call:
        value = discount * (forward * norm_cdf(d1) - strike * norm_cdf(d2))
        delta = discount * norm_cdf(d1)
    else:
        value = discount * (strike * norm_cdf(-d2) - forward * norm_cdf(-d1))
        delta = -discount * norm_cdf(-d1)
    density = norm_pdf(d1)
    gamma = discount * density / (forward * spread)
    vega_unit = discount * forward * density * math.sqrt(years)  # per 1.00 of volatility
    # dV/dt in calendar time (T shrinks as t grows): r V from the discount factor, minus the
    # undiscounted decay, which is the same for calls and puts.
    theta_year = rate * value - discount * forward * density * vol / (2.0 * math.sqrt(years))
    return OptionGreeks(value, delta, gamma, theta_year / DAYS_PER_YEAR, vega_unit / 100.0)
