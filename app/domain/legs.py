"""A strategy leg as the resolver sees it: what to trade, before any broker is asked.

`LegSpec` is the one value type between the stored StrategyLeg rows and leg resolution
(app/services/strategy/resolution.py): the ORM converts a row into it, the resolver turns it
into a contract. It validates itself, so an invalid leg never reaches a broker call.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from app.domain.expiries import EXPIRY_CUTOFF_IST, ExpiryChoice, choose_expiry, ist_today
from app.domain.instruments import UNDERLYINGS, Action, InstrumentKind, OptionType
from app.domain.market_hours import IST
from app.domain.strategy_settings import OrderType
from app.domain.strikes import StrikeMethod, StrikeRule
from app.domain.symbols import format_strike

MAX_LIMIT_BUFFER_PCT = Decimal(50)  # a LIMIT entry at LTP ± more than half the price is a typo


@dataclass(frozen=True)
class LegSpec:
    """One leg of a strategy, before resolution.

    Attributes:
        underlying: an index of instruments.UNDERLYINGS ("NIFTY"; upper-cased on construction).
        kind: option or future.
        expiry_choice: current/next week or month.
        strike_rule: how an option picks its strike; None for a future.
        option_type: CE or PE; None for a future.
        action: BUY or SELL.
        lots: whole lots, at least 1 (quantities come from the contract's lot size later).
        order_type: MARKET, or LIMIT at LTP ± `limit_buffer_pct` (worse side for the trader:
            + for BUY, − for SELL).
        limit_buffer_pct: the LIMIT buffer in percent, 0..50; None for MARKET.

    Raises:
        ValueError: an unknown underlying or enum value, lots not a whole number ≥ 1, a
            future with a strike rule or option type, an option without them, or a buffer
            missing, out of range or given to a MARKET leg.
    """

    underlying: str
    kind: InstrumentKind
    expiry_choice: ExpiryChoice
    strike_rule: StrikeRule | None
    option_type: OptionType | None
    action: Action
    lots: int
    order_type: OrderType = OrderType.MARKET
    limit_buffer_pct: Decimal | None = None

    def __post_init__(self) -> None:
        name = self.underlying.strip().upper() if isinstance(self.underlying, str) else ""
        if name not in UNDERLYINGS:
            raise ValueError(f"unknown underlying {self.underlying!r}")
        object.__setattr__(self, "underlying", name)
        object.__setattr__(self, "kind", InstrumentKind(self.kind))
        object.__setattr__(self, "expiry_choice", ExpiryChoice(self.expiry_choice))
        object.__setattr__(self, "action", Action(self.action))
        object.__setattr__(self, "order_type", OrderType(self.order_type))
        if self.option_type is not None:
            object.__setattr__(self, "option_type", OptionType(self.option_type))
        if not isinstance(self.lots, int) or isinstance(self.lots, bool) or self.lots < 1:
            raise ValueError(f"lots must be a whole number of at least 1, got {self.lots!r}")
        if self.kind is InstrumentKind.OPTION:
            if self.strike_rule is None or self.option_type is None:
                raise ValueError("an option leg needs a strike rule and an option type (CE or PE)")
        elif self.strike_rule is not None or self.option_type is not None:
            raise ValueError("a futures leg takes no strike rule and no option type")
        self._check_buffer()

    def _check_buffer(self) -> None:
        buffer = self.limit_buffer_pct
        if self.order_type is OrderType.MARKET:
            if buffer is not None:
                raise ValueError("a MARKET leg takes no limit buffer")
            return
        if buffer is None or isinstance(buffer, bool) or not isinstance(buffer, Decimal | int):
            raise ValueError("a LIMIT leg needs a buffer in percent")
        if not Decimal(0) <= Decimal(buffer) <= MAX_LIMIT_BUFFER_PCT:
            raise ValueError(f"the limit buffer must be from 0 to {MAX_LIMIT_BUFFER_PCT} %, got {buffer}")
        object.__setattr__(self, "limit_buffer_pct", Decimal(buffer))

    @property
    def label(self) -> str:
        """Short description for messages, e.g. "SELL NIFTY OTM2 CE (current week)"."""
        when = self.expiry_choice.value.replace("_", " ")
        if self.kind is InstrumentKind.FUTURE:
            return f"{self.action.value} {self.underlying} FUT ({when})"
        assert self.strike_rule is not None and self.option_type is not None  # guaranteed above
        strike = _rule_label(self.strike_rule)
        return f"{self.action.value} {self.underlying} {strike} {self.option_type.value} ({when})"


def _rule_label(rule: StrikeRule) -> str:
    """The rule's label with prices written short (a stored 26025.00 reads "26025")."""
    if rule.method is StrikeMethod.STRIKE and rule.strike is not None:
        return f"strike {format_strike(rule.strike)}"
    if rule.method is StrikeMethod.PREMIUM_NEAR and rule.target_premium is not None:
        return f"premium ≈ {format_strike(rule.target_premium)}"
    return rule.label


def limit_price(ltp: Decimal, action: Action | str, buffer_pct: Decimal, tick: Decimal) -> Decimal:
    """The LIMIT price of a leg: LTP plus the buffer for a BUY, minus it for a SELL, on the tick.

    Args:
        ltp: the contract's last price (> 0).
        action: BUY or SELL.
        buffer_pct: the buffer in percent (≥ 0).
        tick: the contract's tick size; 0 or less means no rounding.
    Returns:
        The price, rounded to the tick away from the market's side (up for a BUY, down for a
        SELL) so the buffer is never smaller than asked; never below one tick.
    Raises:
        ValueError: ltp ≤ 0 or a negative buffer.
    """
    if ltp <= 0:
        raise ValueError(f"a limit price needs a positive LTP, got {ltp}")
    if buffer_pct < 0:
        raise ValueError(f"the limit buffer cannot be negative, got {buffer_pct}")
    side = Action(action)
    raw = ltp * (1 + buffer_pct / 100) if side is Action.BUY else ltp * (1 - buffer_pct / 100)
    if tick <= 0:
        return raw
    ticks = raw / tick
    whole = ticks.to_integral_value(rounding="ROUND_CEILING" if side is Action.BUY else "ROUND_FLOOR")
    return max(whole, Decimal(1)) * tick


def expiry_reference_day(now: datetime) -> date:
    """The day expiry choices count from: today in IST, or tomorrow once today's 15:30 IST close
    has passed (a contract expiring today can no longer be traded then).

    Raises:
        ValueError: `now` is naive.
    """
    today = ist_today(now)
    return today + timedelta(days=1) if now.astimezone(IST).time() >= EXPIRY_CUTOFF_IST else today


def leg_expiry(spec: LegSpec, option_expiries: Iterable[str | date] | None,
               futures_expiries: Iterable[str | date], today: date) -> date:
    """The expiry a leg trades, from the broker's lists of its underlying.

    Args:
        spec: the leg.
        option_expiries: the underlying's option expiries (`/expiry` "options"); needed for
            an option leg, ignored for a future.
        futures_expiries: its futures expiries (`/expiry` "futures"): the monthly dates for
            an option, the contract months for a future (a futures list is monthly-only, so
            current/next week map to current/next month).
        today: see `expiry_reference_day`.
    Returns:
        The chosen expiry date (expiries.choose_expiry).
    Raises:
        ExpiryUnavailable: the lists have no expiry for the leg's choice.
        InvalidExpiry: a list entry cannot be parsed.
    """
    futures = list(futures_expiries)
    if spec.kind is InstrumentKind.FUTURE:
        return choose_expiry(spec.expiry_choice, futures, today, monthly=futures)
    if option_expiries is None:
        raise ValueError("an option leg needs the option expiry list")
    return choose_expiry(spec.expiry_choice, option_expiries, today, monthly=futures or None)
