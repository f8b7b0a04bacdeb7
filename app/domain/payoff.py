"""Payoff of a multi-leg position: at expiry (exact, piecewise linear) and today (Black-76).

The price axis is the underlying's price at expiry. For today's (T+0) curve and the greeks,
that price is used as each option's forward: with OpenAlgo's default interest rate of 0
spot and forward coincide; callers with a rate pass it and accept the approximation.

At expiry the payoff is piecewise linear in the price S >= 0, with kinks only at the
option strikes. So the analysis is exact, without sampling:
- values at S = 0 and at every strike fix the whole curve up to the last strike;
- beyond the last strike the slope is (bought calls - sold calls + long futures - short
  futures) in units; a positive slope means unlimited profit, a negative one unlimited
  loss. Below, prices stop at 0, so the downside is always finite (a short put loses at
  most strike - premium per unit);
- breakevens are the zeros, by linear interpolation between adjacent kinks (and along the
  last slope), in Decimal, so they are exact.
Money and prices are Decimal; Black-76 runs in floats and results are rounded on the way out
(₹ to paise, greeks to the places documented on PositionGreeks).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from app.domain import black76
from app.domain.instruments import Action, OptionType

_PAISE = Decimal("0.01")


@dataclass(frozen=True)
class PayoffLeg:
    """One leg of a position.

    Attributes:
        action: BUY or SELL.
        option_type: CE or PE; None for a future.
        strike: the option's strike; None for a future.
        entry_price: premium per unit (options) or trade price (futures), >= 0.
        quantity: units (lots × lot size), >= 1.
        iv: implied volatility in percent (15.6 for 15.6 %), for the T+0 curve and greeks.
        expires_at: the contract's expiry instant (aware; expiries.expiry_close), for T+0.
    Raises:
        ValueError: a missing or non-positive strike on an option, a strike on a future, a
            negative entry price, a quantity below 1, a negative IV or a naive expiry.
    """

    action: Action
    option_type: OptionType | None
    strike: Decimal | None
    entry_price: Decimal
    quantity: int
    iv: Decimal | None = None
    expires_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", Action(self.action))
        if self.option_type is not None:
            object.__setattr__(self, "option_type", OptionType(self.option_type))
            if self.strike is None or self.strike <= 0:
                raise ValueError("an option leg needs a positive strike")
        elif self.strike is not None:
            raise ValueError("a future leg has no strike")
        if self.entry_price < 0:
            raise ValueError("the entry price cannot be negative")
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int) or self.quantity < 1:
            raise ValueError(f"quantity must be a whole number >= 1, got {self.quantity!r}")
        if self.iv is not None and self.iv < 0:
            raise ValueError("implied volatility cannot be negative")
        if self.expires_at is not None and self.expires_at.utcoffset() is None:
            raise ValueError("expires_at must be an aware datetime")

    @property
    def signed_quantity(self) -> int:
        """+quantity for BUY, -quantity for SELL."""
        return self.action.sign * self.quantity


@dataclass(frozen=True)
class PayoffSummary:
    """What the expiry payoff can do.

    Attributes:
        breakevens: prices where the payoff is 0, ascending.
        max_profit: the highest payoff (₹), None when unlimited.
        max_loss: the lowest payoff (₹, negative for a loss), None when unlimited.
        slope_above: ₹ per point of the payoff beyond the highest strike.
    """

    breakevens: tuple[Decimal, ...]
    max_profit: Decimal | None
    max_loss: Decimal | None
    slope_above: int

    @property
    def profit_unlimited(self) -> bool:
        """True when the payoff rises without bound above the highest strike."""
        return self.max_profit is None

    @property
    def loss_unlimited(self) -> bool:
        """True when the payoff falls without bound above the highest strike."""
        return self.max_loss is None


@dataclass(frozen=True)
class PositionGreeks:
    """Greeks of a position in ₹ terms: units × per-unit greek, summed over legs.

    delta (units of underlying, 4 places), gamma (per point, 6 places), theta (₹ per
    calendar day, 2 places), vega (₹ per 1 % of IV, 2 places).
    """

    delta: Decimal
    gamma: Decimal
    theta: Decimal
    vega: Decimal


def leg_payoff_at_expiry(leg: PayoffLeg, price: Decimal) -> Decimal:
    """The leg's P&L (₹) if the underlying settles at `price`.

    BUY: (value at expiry - entry) × quantity; SELL: the negative of that. An option's value
    at expiry is its intrinsic value; a future's is the settlement price.
    """
    if leg.option_type is None:
        value = price
    else:
        assert leg.strike is not None
        gap = price - leg.strike if leg.option_type is OptionType.CE else leg.strike - price
        value = max(gap, Decimal(0))
    return (value - leg.entry_price) * leg.signed_quantity


def payoff_at_expiry(legs: Sequence[PayoffLeg], prices: Iterable[Decimal]) -> tuple[Decimal, ...]:
    """The position's P&L (₹) at expiry for each price.

    Raises:
        ValueError: no legs.
    """
    _need_legs(legs)
    return tuple(sum((leg_payoff_at_expiry(leg, p) for leg in legs), Decimal(0)) for p in prices)


def price_grid(low: Decimal, high: Decimal, points: int) -> tuple[Decimal, ...]:
    """`points` evenly spaced prices from `low` to `high`, both included, for a chart.

    Raises:
        ValueError: low < 0, high <= low, or fewer than 2 points.
    """
    if low < 0 or high <= low or points < 2:
        raise ValueError("need 0 <= low < high and at least 2 points")
    step = (high - low) / (points - 1)
    return tuple([low + step * i for i in range(points - 1)] + [high])


def chart_range(legs: Sequence[PayoffLeg], spot: Decimal,
                padding_pct: Decimal = Decimal(10)) -> tuple[Decimal, Decimal]:
    """A price range that shows every strike and the spot with some room either side.

    Returns:
        (low, high): the lowest and highest of the strikes and the spot, widened by
        `padding_pct` % of the spot each way (low never below 0).
    """
    marks = [spot, *(leg.strike for leg in legs if leg.strike is not None)]
    pad = spot * padding_pct / 100
    return max(min(marks) - pad, Decimal(0)), max(marks) + pad


def analyze_payoff(legs: Sequence[PayoffLeg]) -> PayoffSummary:
    """Breakevens, max profit and max loss of the position at expiry, exactly.

    Returns:
        See PayoffSummary; unlimited sides are told from the slope beyond the last strike.
    Raises:
        ValueError: no legs.
    """
    _need_legs(legs)
    kinks = sorted({Decimal(0), *(leg.strike for leg in legs if leg.strike is not None)})
    values = payoff_at_expiry(legs, kinks)
    slope = sum(leg.signed_quantity for leg in legs if leg.option_type in (None, OptionType.CE))
    found: list[Decimal] = []
    for i in range(len(kinks) - 1):
        x0, v0, x1, v1 = kinks[i], values[i], kinks[i + 1], values[i + 1]
        if v0 == 0:
            found.append(x0)
        elif (v0 < 0 < v1) or (v1 < 0 < v0):
            found.append(x0 + (x1 - x0) * -v0 / (v1 - v0))
    last_x, last_v = kinks[-1], values[-1]
    if last_v == 0:
        found.append(last_x)
    elif slope and (last_v < 0) != (slope < 0):
        found.append(last_x - last_v / slope)
    breakevens = tuple(sorted(set(found)))
    max_profit = None if slope > 0 else max(values)
    max_loss = None if slope < 0 else min(values)
    return PayoffSummary(breakevens, max_profit, max_loss, slope)


def _need_legs(legs: Sequence[PayoffLeg]) -> None:
    if not legs:
        raise ValueError("a position needs at least one leg")


def _decimal(value: float, places: Decimal) -> Decimal:
    return Decimal(repr(value)).quantize(places, rounding=ROUND_HALF_UP)


def _option_inputs(leg: PayoffLeg, now: datetime) -> tuple[float, float]:
    if leg.iv is None or leg.expires_at is None:
        raise ValueError(f"the {leg.action.value} {leg.strike} {leg.option_type} leg needs its IV and expiry for T+0")
    return black76.years_between(now, leg.expires_at), float(leg.iv) / 100.0


def _value_at_zero(option_type: OptionType, strike: float, years: float, rate: float) -> float:
    """An option's value with the underlying at 0, where Black-76 is undefined: a put is
    worth its discounted strike, a call nothing."""
    return math.exp(-rate * years) * strike if option_type is OptionType.PE else 0.0


def _leg_today(leg: PayoffLeg, price: float, now: datetime, rate: float) -> tuple[float, black76.OptionGreeks]:
    """(value per unit, per-unit greeks) of a leg today, as floats."""
    if leg.option_type is None:
        return price, black76.OptionGreeks(price, 1.0, 0.0, 0.0, 0.0)
    assert leg.strike is not None
    years, vol = _option_inputs(leg, now)
    strike = float(leg.strike)
    if price <= 0:
        value = _value_at_zero(leg.option_type, strike, years, rate)
        return value, black76.OptionGreeks(value, 0.0, 0.0, 0.0, 0.0)
    sens = black76.greeks(price, strike, years, vol, leg.option_type, rate)
    return sens.price, sens


def payoff_today(legs: Sequence[PayoffLeg], prices: Iterable[Decimal], now: datetime,
                 rate: float = 0.0) -> tuple[Decimal, ...]:
    """The position's P&L (₹) now (T+0) for each underlying price, options by Black-76.

    Args:
        legs: the legs; options need `iv` and `expires_at`.
        prices: underlying prices (used as forwards).
        now: the valuation instant (aware).
        rate: the interest rate as a fraction.
    Returns:
        Σ sign × quantity × (value today - entry), rounded to paise, per price.
    Raises:
        ValueError: no legs, or an option leg without IV or expiry, or a naive `now`.
    """
    _need_legs(legs)
    # Per-leg inputs once, not once per price: a chart asks for a few hundred prices.
    prepared = [(leg, *(_option_inputs(leg, now) if leg.option_type is not None else (0.0, 0.0)),
                 float(leg.entry_price), leg.signed_quantity) for leg in legs]
    out = []
    for p in prices:
        forward = float(p)
        total = 0.0
        for leg, years, vol, entry, units in prepared:
            if leg.option_type is None:
                value = forward
            elif forward <= 0:
                value = _value_at_zero(leg.option_type, float(leg.strike or 0), years, rate)
            else:
                value = black76.price(forward, float(leg.strike or 0), years, vol, leg.option_type, rate)
            total += (value - entry) * units
        out.append(_decimal(total, _PAISE))
    return tuple(out)


def position_greeks(legs: Sequence[PayoffLeg], price: Decimal, now: datetime, rate: float = 0.0) -> PositionGreeks:
    """Net delta, gamma, theta and vega of the position at an underlying price.

    Args and errors as `payoff_today`. A future contributes ±quantity of delta and nothing
    else; a SELL leg contributes the negative of a BUY leg's greeks.
    """
    _need_legs(legs)
    delta = gamma = theta = vega = 0.0
    for leg in legs:
        _, sens = _leg_today(leg, float(price), now, rate)
        units = leg.signed_quantity
        delta += sens.delta * units
        gamma += sens.gamma * units
        theta += sens.theta * units
        vega += sens.vega * units
    return PositionGreeks(_decimal(delta, Decimal("0.0001")), _decimal(gamma, Decimal("0.000001")),
                          _decimal(theta, _PAISE), _decimal(vega, _PAISE))
