"""Whether a price may drive a risk decision, and one log line per span of bad prices.

LESSONS.md "Data": a zero tick or a price hours old once tripped risk exits or hid losses. So a
rule acts only on a price that is a finite number > 0 and no older than a maximum age; when any
open leg of a run lacks such a price, every rule of that run HOLDS and the monitor records a
``prices_unreliable`` risk event. `UnreliableSpan` makes that one event when the span starts and
one when it ends (with its duration), not one per tick.

Pure: `now` is always passed in; nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum

# The exchange time of the last trade is the price's time (app/services/market_data.py). 15 s:
# near-the-money options trade several times a second, so a 15 s gap on an open leg means the feed
# or the contract is not moving and its price is not a mark to act on; yet a quiet hedge strike
# that trades every few seconds does not keep the whole run on hold. Configurable per call.
DEFAULT_MAX_PRICE_AGE = timedelta(seconds=15)


class PriceProblem(StrEnum):
    MISSING = "missing"  # no price, or no time for it
    NOT_NUMERIC = "not_numeric"  # unparsable, NaN, infinite, a bool
    NOT_POSITIVE = "not_positive"  # zero (the classic bad tick) or negative
    STALE = "stale"  # older than the maximum age


@dataclass(frozen=True)
class PriceCheck:
    """One price judged at `now`.

    Attributes:
        price: the parsed price when usable, else None.
        problem: why it is not usable (None when usable).
        age: now − price time, when both are known (negative when the source's clock is ahead).
        max_age: the limit it was judged against.
    """

    price: Decimal | None
    problem: PriceProblem | None
    age: timedelta | None
    max_age: timedelta

    @property
    def usable(self) -> bool:
        return self.problem is None

    @property
    def reason(self) -> str:
        """The words a risk event shows: "usable", "zero or negative price", "stale (12.5 s old, limit 15 s)"."""
        if self.problem is None:
            return "usable"
        if self.problem is PriceProblem.STALE and self.age is not None:
            return f"stale ({_seconds(self.age)} s old, limit {_seconds(self.max_age)} s)"
        return {PriceProblem.MISSING: "no price", PriceProblem.NOT_NUMERIC: "not a number",
                PriceProblem.NOT_POSITIVE: "zero or negative price",
                PriceProblem.STALE: "stale"}[self.problem]


def _seconds(span: timedelta) -> str:
    return f"{Decimal(str(span.total_seconds())).normalize():f}"


def parse_price(value: object) -> Decimal | None:
    """A finite Decimal from a broker's number (Decimal, int, float or numeric string), else None.

    A bool is not a number here (True would read as 1).
    """
    if isinstance(value, bool) or value is None:
        return None
    try:
        if isinstance(value, Decimal):
            parsed = value
        elif isinstance(value, int):
            parsed = Decimal(value)
        elif isinstance(value, float):
            parsed = Decimal(str(value))  # the float's shortest repr, not its binary expansion
        elif isinstance(value, str):
            parsed = Decimal(value.strip())
        else:
            return None
    except (InvalidOperation, ValueError):
        return None
    return parsed if parsed.is_finite() else None


def check_price(value: object, priced_at: datetime | None, now: datetime,
                max_age: timedelta = DEFAULT_MAX_PRICE_AGE) -> PriceCheck:
    """Judge one price for a risk decision.

    Args:
        value: the price as it came (None when there is none).
        priced_at: when the price was true (aware); None counts as missing.
        now: the evaluation time (aware).
        max_age: the oldest usable price; exactly `max_age` old is still usable.
    Returns:
        A PriceCheck; problems are reported in the order missing, not numeric, not positive, stale.
    Raises:
        ValueError: `now` or `priced_at` is naive, or `max_age` is negative.
    """
    if now.tzinfo is None or (priced_at is not None and priced_at.tzinfo is None):
        raise ValueError("price times must be timezone-aware")
    if max_age < timedelta(0):
        raise ValueError(f"max_age must be >= 0, got {max_age}")
    age = None if priced_at is None else now - priced_at
    if value is None or priced_at is None:
        return PriceCheck(None, PriceProblem.MISSING, age, max_age)
    price = parse_price(value)
    if price is None:
        return PriceCheck(None, PriceProblem.NOT_NUMERIC, age, max_age)
    if price <= 0:
        return PriceCheck(None, PriceProblem.NOT_POSITIVE, age, max_age)
    if age is not None and age > max_age:
        return PriceCheck(None, PriceProblem.STALE, age, max_age)
    return PriceCheck(price, None, age, max_age)


@dataclass(frozen=True)
class PriceReliability:
    """A run's prices at one evaluation: reliable only when every open leg's price is usable.

    Attributes:
        problems: (price key, check) for each unusable price, in the order given.
    """

    problems: tuple[tuple[str, PriceCheck], ...]

    @property
    def reliable(self) -> bool:
        return not self.problems

    @property
    def reason(self) -> str:
        """E.g. "NIFTY25JAN26000CE: zero or negative price; NIFTY25JAN25000PE: no price" ("" when reliable)."""
        return "; ".join(f"{key}: {check.reason}" for key, check in self.problems)


def assess_prices(checks: Mapping[str, PriceCheck]) -> PriceReliability:
    """Combine the checks of a run's open legs (keyed by e.g. "NFO:symbol") into one verdict.

    Pass the prices of open legs only: a closed leg needs no price. An empty mapping (nothing
    open) is reliable.
    """
    return PriceReliability(tuple((key, check) for key, check in checks.items() if not check.usable))


# --- One log line per span of unreliable prices ----------------------------------------------------

@dataclass(frozen=True)
class SpanStarted:
    """Prices became unreliable at `at` (log once: a prices_unreliable event, rules holding)."""

    at: datetime
    reason: str


@dataclass(frozen=True)
class SpanEnded:
    """Prices are reliable again (log once, with how long the rules held)."""

    started_at: datetime
    ended_at: datetime
    reason: str  # why the span started
    held_evaluations: int  # evaluations that held during the span

    @property
    def duration(self) -> timedelta:
        return self.ended_at - self.started_at


@dataclass(frozen=True)
class UnreliableSpan:
    """Tracks one run's spans of unreliable prices; feed it every evaluation, in time order.

    Immutable: `observe` returns the next tracker and what to log (None on all ticks but the
    first and the last of a span). A new run starts with `UnreliableSpan()`.
    """

    started_at: datetime | None = None
    reason: str = ""
    held_evaluations: int = 0

    @property
    def active(self) -> bool:
        return self.started_at is not None

    def observe(self, reliability: PriceReliability, now: datetime
                ) -> tuple[UnreliableSpan, SpanStarted | SpanEnded | None]:
        """Record one evaluation at `now`.

        Returns:
            (next tracker, SpanStarted when this evaluation starts a span, SpanEnded when it ends
            one, else None).
        """
        if not reliability.reliable:
            if self.started_at is None:
                return UnreliableSpan(now, reliability.reason, 1), SpanStarted(now, reliability.reason)
            return replace(self, held_evaluations=self.held_evaluations + 1), None
        if self.started_at is None:
            return self, None
        return UnreliableSpan(), SpanEnded(self.started_at, now, self.reason, self.held_evaluations)
