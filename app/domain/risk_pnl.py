"""Live P&L of a run: per leg, per account and combined (DOMAIN.md "Risk management semantics").

A leg's P&L is (LTP − entry) × open qty for BUY and (entry − LTP) × open qty for SELL, plus the
realized P&L of what was already closed at its exit fill prices. Entry and exit prices are the
fills averaged over every split child (LESSONS.md "Orders": a split order tracked by its first
child only gave wrong prices), so the caller passes all fills as (quantity, price) pairs.

Only the current run's fills are passed (LESSONS.md "Data": P&L summed over all past executions
kept triggers firing). Pure and exact: Decimal throughout, no rounding. The total is computed from
fill values (Σ qty × price), never from a rounded average, so it is exact even when the average
price has no finite decimal expansion.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from app.domain.instruments import Action

Fill = tuple[int, Decimal]  # (filled quantity, price) of one child order


def _check_fills(fills: Iterable[Fill]) -> tuple[Fill, ...]:
    checked: list[Fill] = []
    for quantity, price in fills:
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            raise ValueError(f"a fill quantity must be an int >= 0, got {quantity!r}")
        if not isinstance(price, Decimal) or not price.is_finite() or price < 0:
            raise ValueError(f"a fill price must be a finite Decimal >= 0, got {price!r}")
        checked.append((quantity, price))
    return tuple(checked)


def filled_quantity(fills: Iterable[Fill]) -> int:
    return sum(quantity for quantity, _ in fills)


def filled_value(fills: Iterable[Fill]) -> Decimal:
    """Σ quantity × price (₹ paid or received, before charges)."""
    return sum((price * quantity for quantity, price in fills), Decimal(0))


def average_fill_price(fills: Iterable[Fill]) -> Decimal | None:
    """The quantity-weighted average price of split children's fills.

    Returns:
        Σ qty × price / Σ qty (Decimal context precision, not rounded to a tick), or None when
        nothing filled. Zero-quantity children (sent, not filled) do not count.
    Raises:
        ValueError: a negative or non-int quantity, or a price that is not a finite Decimal >= 0.
    """
    checked = _check_fills(fills)
    quantity = filled_quantity(checked)
    if quantity == 0:
        return None
    return filled_value(checked) / quantity


@dataclass(frozen=True)
class LegPosition:
    """One account's leg in the current run, as the risk rules see it.

    Attributes:
        leg_number: the run leg (1-based).
        action: the entry side; the exit fills are the opposite side.
        entry_fills, exit_fills: (quantity, price) of every child order that filled.
        ltp: the usable last price (app.domain.price_guard); may be None only when nothing is open.

    Raises:
        ValueError: bad fills (see `average_fill_price`), or an open leg without an LTP, or an LTP
        that is not a finite Decimal > 0.
    """

    leg_number: int
    action: Action
    entry_fills: Sequence[Fill]
    exit_fills: Sequence[Fill] = field(default=())
    ltp: Decimal | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", Action(self.action))
        object.__setattr__(self, "entry_fills", _check_fills(self.entry_fills))
        object.__setattr__(self, "exit_fills", _check_fills(self.exit_fills))
        if self.ltp is not None and (not isinstance(self.ltp, Decimal) or not self.ltp.is_finite()
                                     or self.ltp <= 0):
            raise ValueError(f"leg {self.leg_number}: an LTP must be a finite Decimal > 0, got {self.ltp!r}")
        if self.ltp is None and self.open_quantity != 0:
            raise ValueError(f"leg {self.leg_number} holds {self.open_quantity} units but has no price")

    @property
    def entry_quantity(self) -> int:
        return filled_quantity(self.entry_fills)

    @property
    def exit_quantity(self) -> int:
        return filled_quantity(self.exit_fills)

    @property
    def open_quantity(self) -> int:
        """Units still held, unsigned. Negative only after closing more than was entered (a
        duplicate exit), which leaves an opposite position; it is valued at the LTP like any other."""
        return self.entry_quantity - self.exit_quantity

    @property
    def entry_price(self) -> Decimal | None:
        return average_fill_price(self.entry_fills)

    @property
    def exit_price(self) -> Decimal | None:
        return average_fill_price(self.exit_fills)

    @property
    def direction(self) -> int:
        """+1 for a BUY leg (gains when the price rises), −1 for a SELL leg."""
        return self.action.sign


@dataclass(frozen=True)
class LegPnl:
    """A leg's P&L split into the closed part (at exit fills) and the open part (at the LTP)."""

    leg_number: int
    realized: Decimal
    unrealized: Decimal

    @property
    def total(self) -> Decimal:
        return self.realized + self.unrealized


def leg_pnl(leg: LegPosition) -> LegPnl:
    """The leg's P&L in ₹.

    total = direction × (exit value + LTP × open qty − entry value), which equals the realized
    part (exit avg − entry avg) × closed qty × direction plus the open part
    (LTP − entry avg) × open qty × direction, computed without dividing.
    Realized counts the closed units up to what was entered; unrealized is the rest of the total.
    """
    entry_value = filled_value(leg.entry_fills)
    exit_value = filled_value(leg.exit_fills)
    open_value = Decimal(0) if leg.open_quantity == 0 or leg.ltp is None else leg.ltp * leg.open_quantity
    total = leg.direction * (exit_value + open_value - entry_value)
    closed = min(leg.exit_quantity, leg.entry_quantity)
    entry_avg, exit_avg = leg.entry_price, leg.exit_price
    if closed == 0 or entry_avg is None or exit_avg is None:
        realized = Decimal(0)
    elif closed == leg.entry_quantity and closed == leg.exit_quantity:
        realized = total  # fully closed: exact, no average needed
    else:
        realized = leg.direction * (exit_avg - entry_avg) * closed
    return LegPnl(leg.leg_number, realized, total - realized)


def account_pnl(legs: Iterable[LegPosition]) -> Decimal:
    """Σ of the account's legs' total P&L in the current run."""
    return sum((leg_pnl(leg).total for leg in legs), Decimal(0))


def combined_pnl(account_pnls: Iterable[Decimal]) -> Decimal:
    """Σ over the run's accounts (the combined scope's P&L)."""
    return sum(account_pnls, Decimal(0))


def entry_premium_value(legs: Iterable[LegPosition]) -> Decimal:
    """The run's entry premium value, |Σ signed entry price × qty|, in ₹ (the base of a
    percentage trailing stop).

    Sign: +1 for SELL (premium received), −1 for BUY (premium paid), as in the net premium of
    DOMAIN.md "Supertrend"; the absolute value makes the choice irrelevant. Uses the entry fills
    (all of them, even of legs since closed): the run's premium at entry does not change when a
    leg is closed. A credit spread's value is its net credit; a long straddle's its total debit.
    """
    return abs(sum((-leg.direction * filled_value(leg.entry_fills) for leg in legs), Decimal(0)))
