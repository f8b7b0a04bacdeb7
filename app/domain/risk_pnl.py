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


class Fills(tuple[Fill, ...]):
    """Checked fills (quantity an int >= 0, price a finite Decimal >= 0) with their sums, computed
    once: a run's fills change only when the monitor reloads its book, while its P&L is evaluated
    on every tick (the sums were most of an evaluation's cost). A tuple, so it compares equal to
    the plain tuple of the same fills.

    Raises:
        ValueError: a negative or non-int quantity, or a price that is not a finite Decimal >= 0.
    """

    quantity: int  # Σ quantity
    value: Decimal  # Σ quantity × price (₹ paid or received, before charges)
    average: Decimal | None  # Σ qty × price / Σ qty (context precision, not rounded), None when nothing filled

    def __new__(cls, fills: Iterable[Fill] = ()) -> Fills:
        if isinstance(fills, Fills):
            return fills
        checked: list[Fill] = []
        for quantity, price in fills:
            if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
                raise ValueError(f"a fill quantity must be an int >= 0, got {quantity!r}")
            if not isinstance(price, Decimal) or not price.is_finite() or price < 0:
                raise ValueError(f"a fill price must be a finite Decimal >= 0, got {price!r}")
            checked.append((quantity, price))
        self = super().__new__(cls, checked)
        self.quantity = sum(quantity for quantity, _ in checked)
        self.value = sum((price * quantity for quantity, price in checked), Decimal(0))
        self.average = self.value / self.quantity if self.quantity else None
        return self


def filled_quantity(fills: Iterable[Fill]) -> int:
    return Fills(fills).quantity


def filled_value(fills: Iterable[Fill]) -> Decimal:
    """Σ quantity × price (₹ paid or received, before charges)."""
    return Fills(fills).value


def average_fill_price(fills: Iterable[Fill]) -> Decimal | None:
    """The quantity-weighted average price of split children's fills.

    Returns:
        Σ qty × price / Σ qty (Decimal context precision, not rounded to a tick), or None when
        nothing filled. Zero-quantity children (sent, not filled) do not count.
    Raises:
        ValueError: a negative or non-int quantity, or a price that is not a finite Decimal >= 0.
    """
    return Fills(fills).average


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
    entry_fills: Fills | Sequence[Fill]
    exit_fills: Fills | Sequence[Fill] = field(default=())
    ltp: Decimal | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", Action(self.action))
        object.__setattr__(self, "entry_fills", Fills(self.entry_fills))
        object.__setattr__(self, "exit_fills", Fills(self.exit_fills))
        if self.ltp is not None and (not isinstance(self.ltp, Decimal) or not self.ltp.is_finite()
                                     or self.ltp <= 0):
            raise ValueError(f"leg {self.leg_number}: an LTP must be a finite Decimal > 0, got {self.ltp!r}")
        if self.ltp is None and self.open_quantity != 0:
            raise ValueError(f"leg {self.leg_number} holds {self.open_quantity} units but has no price")

    @property
    def entry_quantity(self) -> int:
        return self._entries.quantity

    @property
    def exit_quantity(self) -> int:
        return self._exits.quantity

    @property
    def open_quantity(self) -> int:
        """Units still held, unsigned. Negative only after closing more than was entered (a
        duplicate exit), which leaves an opposite position; it is valued at the LTP like any other."""
        return self.entry_quantity - self.exit_quantity

    @property
    def entry_price(self) -> Decimal | None:
        return self._entries.average

    @property
    def exit_price(self) -> Decimal | None:
        return self._exits.average

    @property
    def _entries(self) -> Fills:
        return self.entry_fills  # type: ignore[return-value]  # (made Fills in __post_init__)

    @property
    def _exits(self) -> Fills:
        return self.exit_fills  # type: ignore[return-value]

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
    entry_value = filled_value(leg.entry_fills)  # (the sums of Fills, computed once)
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
