"""Black-76 option pricing, Greeks, implied volatility and the volatility smile."""

from __future__ import annotations

import math
from dataclasses import dataclass

RISK_FREE = 0.065
MIN_T = 1e-6
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / _SQRT2))


def norm_pdf(x: float) -> float:
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


def smile_vol(atm_vol: float, forward: float, strike: float, t: float) -> float:
    """ATM volatility bent into a put-skewed smile in log-moneyness, clipped to a sane band."""
    m = math.log(strike / forward) / max(math.sqrt(max(t, MIN_T)), 0.1)
    vol = atm_vol * (1.0 - 0.25 * m + 0.35 * m * m)
    return min(max(vol, 0.5 * atm_vol), 3.0 * atm_vol)


def black76(forward: float, strike: float, t: float, vol: float, rate: float, is_call: bool) -> float:
    """Discounted Black-76 price of a European option on a forward."""
    if t <= MIN_T or vol <= 0:
        intrinsic = forward - strike if is_call else strike - forward
        return max(intrinsic, 0.0)
    sd = vol * math.sqrt(t)
    d1 = (math.log(forward / strike) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    df = math.exp(-rate * t)
    if is_call:
        return df * (forward * norm_cdf(d1) - strike * norm_cdf(d2))
    return df * (strike * norm_cdf(-d2) - forward * norm_cdf(-d1))


@dataclass(frozen=True, slots=True)
class Greeks:
    delta: float
    gamma: float
    theta: float  # per calendar day
    vega: float  # per 1 volatility point
    rho: float  # per 1 % rate

    def as_dict(self) -> dict[str, float]:
        return {
            "delta": round(self.delta, 4), "gamma": round(self.gamma, 6), "theta": round(self.theta, 4),
            "vega": round(self.vega, 4), "rho": round(self.rho, 6),
        }


def greeks(forward: float, strike: float, t: float, vol: float, rate: float, is_call: bool) -> Greeks:
    """Black-76 sensitivities (delta with respect to the forward)."""
    t = max(t, MIN_T)
    vol = max(vol, 1e-4)
    sd = vol * math.sqrt(t)
    d1 = (math.log(forward / strike) + 0.5 * sd * sd) / sd
    df = math.exp(-rate * t)
    price = black76(forward, strike, t, vol, rate, is_call)
    delta = df * (norm_cdf(d1) if is_call else norm_cdf(d1) - 1.0)
    gamma = df * norm_pdf(d1) / (forward * sd)
    vega = df * forward * norm_pdf(d1) * math.sqrt(t)
    decay = -df * forward * norm_pdf(d1) * vol / (2.0 * math.sqrt(t))
    theta_year = decay + rate * price  # same form for calls and puts under Black-76
    rho = -t * price
    return Greeks(delta, gamma, theta_year / 365.0, vega / 100.0, rho / 100.0)


def implied_vol(price: float, forward: float, strike: float, t: float, rate: float, is_call: bool) -> float:
    """Volatility that reproduces ``price`` (bisection); 0 when the price is at or below intrinsic."""
    if t <= MIN_T:
        return 0.0
    lo, hi = 1e-4, 5.0
    if price <= black76(forward, strike, t, lo, rate, is_call) + 1e-9:
        return 0.0
    if price >= black76(forward, strike, t, hi, rate, is_call):
        return hi
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if black76(forward, strike, t, mid, rate, is_call) < price:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-7:
            break
    return 0.5 * (lo + hi)


def round_tick(price: float, tick: float = 0.05) -> float:
    """Nearest multiple of ``tick``, rounded to 2 dp for display."""
    return round(round(price / tick) * tick, 2)
