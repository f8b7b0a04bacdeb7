"""Freeze splitting and per-account sizing (DOMAIN.md "Margin calculator", issue 8 point 6).

Freeze splitting: an order may carry at most the freeze quantity, in whole lots, so the
most lots per order is floor(freeze ÷ lot size); a larger quantity goes out as child orders
of that many lots each, the remainder last (NIFTY lot 65, freeze 1,755: 27 lots per order;
60 lots -> 27 + 27 + 6).

Sizing one account for a strategy whose legs carry lots per "strategy lot" (their ratio):
- Fixed lots: every leg trades floor(its lots × the account's lot multiplier). Nothing is
  resized: a leg that would need more than max lots per order × allowed splits, or that
  rounds down to 0 lots, skips the account with a reason. A margin shortfall is reported as
  a warning (the trader asked for this size), not a skip. Margin used = margin per strategy
  lot × multiplier: exact when every leg's lots × multiplier is whole (the ratio is kept),
  an estimate when a fractional multiplier rounds some legs down.
- Conservative / Balanced / Aggressive (40 / 65 / 80 %): usable = available margin × the
  percentage, or the capital cap when that is lower; strategy lots N = floor(usable ÷
  margin per strategy lot), then capped so that no leg exceeds max lots per order × allowed
  splits; each leg trades N × its lots. The multiplier applies to fixed lots only. N = 0
  skips the account with a reason in rupees.
The binding constraint names what fixed the size: the fixed lots, the profile's share of
available margin, the capital cap, or the freeze/splits cap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum
from types import MappingProxyType

from app.domain.errors import SizingError
from app.domain.instruments import Action, InstrumentKind, OptionType
from app.domain.margin import StrategyLotMargin
from app.domain.money import format_inr


class RiskProfile(StrEnum):
    """How a strategy sizes its accounts."""

    FIXED_LOTS = "fixed_lots"
    CONSERVATIVE = "conservative"
    BALANCED = "balanced"
    AGGRESSIVE = "aggressive"


#: Share of available margin (in %) each margin-based profile may use.
PROFILE_PERCENT = MappingProxyType({
    RiskProfile.CONSERVATIVE: Decimal(40),
    RiskProfile.BALANCED: Decimal(65),
    RiskProfile.AGGRESSIVE: Decimal(80),
})


class Binding(StrEnum):
    """The constraint that decided an account's size."""

    FIXED = "fixed"
    PROFILE = "profile"
    CAPITAL_CAP = "capital_cap"
    FREEZE_SPLITS = "freeze_splits"


def max_lots_per_order(lot_size: int, freeze_qty: int) -> int:
    """The most whole lots one order may carry: floor(freeze quantity ÷ lot size).

    Raises:
        SizingError: lot size or freeze quantity is not a positive integer, or the freeze
            quantity is below one lot (no order could be placed).
    """
    _positive_int(lot_size, "lot size")
    _positive_int(freeze_qty, "freeze quantity")
    most = freeze_qty // lot_size
    if most == 0:
        raise SizingError(f"freeze quantity {freeze_qty} is below one lot of {lot_size}")
    return most


def split_lots(lots: int, max_lots: int) -> tuple[int, ...]:
    """Split a number of lots into child orders of at most `max_lots` lots, largest first.

    Returns:
        e.g. split_lots(60, 27) -> (27, 27, 6); split_lots(0, 27) -> ().
    Raises:
        SizingError: lots < 0 or max_lots < 1.
    """
    if isinstance(lots, bool) or not isinstance(lots, int) or lots < 0:
        raise SizingError(f"lots must be a whole number >= 0, got {lots!r}")
    _positive_int(max_lots, "max lots per order")
    full, rest = divmod(lots, max_lots)
    return (max_lots,) * full + ((rest,) if rest else ())


def split_quantity(quantity: int, lot_size: int, freeze_qty: int) -> tuple[int, ...]:
    """Split an order quantity into child quantities, each whole lots and <= the freeze quantity.

    Args:
        quantity: total units (a multiple of the lot size).
        lot_size: units per lot.
        freeze_qty: the most units one order may carry.
    Returns:
        e.g. (3900, 65, 1755) -> (1755, 1755, 390).
    Raises:
        SizingError: quantity is negative or not whole lots; bad lot size or freeze quantity.
    """
    most = max_lots_per_order(lot_size, freeze_qty)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0 or quantity % lot_size:
        raise SizingError(f"quantity {quantity!r} is not a whole number of lots of {lot_size}")
    return tuple(lots * lot_size for lots in split_lots(quantity // lot_size, most))


def _positive_int(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SizingError(f"{what} must be a whole number >= 1, got {value!r}")
    return value


@dataclass(frozen=True)
class SizingLeg:
    """One resolved leg as sizing sees it.

    Attributes:
        underlying: e.g. "NIFTY".
        kind: option or future.
        action: BUY or SELL.
        option_type: CE/PE for options, None for futures.
        lots: lots per strategy lot (the leg's ratio), >= 1.
        lot_size: the contract's lot size (from contract settings or the broker).
        freeze_qty: the contract's freeze quantity.
    """

    underlying: str
    kind: InstrumentKind
    action: Action
    option_type: OptionType | None
    lots: int
    lot_size: int
    freeze_qty: int

    def __post_init__(self) -> None:
        _positive_int(self.lots, "leg lots")
        max_lots_per_order(self.lot_size, self.freeze_qty)
        if (self.kind is InstrumentKind.OPTION) != (self.option_type is not None):
            raise SizingError("an option leg needs CE or PE, a future leg none")

    @property
    def max_lots_per_order(self) -> int:
        """floor(freeze quantity ÷ lot size) of this leg's contract."""
        return self.freeze_qty // self.lot_size


@dataclass(frozen=True)
class LegSize:
    """What one leg trades on one account."""

    lots: int
    quantity: int
    child_quantities: tuple[int, ...]

    @property
    def child_orders(self) -> int:
        """Number of freeze-split orders the leg needs."""
        return len(self.child_quantities)


@dataclass(frozen=True)
class AccountSizing:
    """The sizing decision for one account.

    Attributes:
        profile: the strategy's risk profile.
        legs: per leg (in the strategy's order); every leg 0 lots when skipped.
        strategy_lots: N for margin-based profiles; None for fixed lots.
        margin: margin per strategy lot and where it came from.
        margin_used: margin the sized position needs (0 when skipped).
        available_margin: the account's available margin (margin.available_margin).
        usable_margin: what the profile (or the capital cap) allows; None for fixed lots.
        binding: the constraint that decided the size.
        skip_reason: why the account trades nothing, else None.
        warnings: facts the trader should see that did not stop the sizing.
    """

    profile: RiskProfile
    legs: tuple[LegSize, ...]
    strategy_lots: int | None
    margin: StrategyLotMargin
    margin_used: Decimal
    available_margin: Decimal
    usable_margin: Decimal | None
    binding: Binding
    skip_reason: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def skipped(self) -> bool:
        """True when the account trades nothing (see skip_reason)."""
        return self.skip_reason is not None


def _inr(*amounts: Decimal) -> list[str]:
    """Rupees for a reason: whole rupees, unless an amount has paise."""
    places = 0 if all(a == a.to_integral_value() for a in amounts) else 2
    return [format_inr(a, places) for a in amounts]


def _leg_size(leg: SizingLeg, lots: int) -> LegSize:
    quantity = lots * leg.lot_size
    return LegSize(lots, quantity, split_quantity(quantity, leg.lot_size, leg.freeze_qty))


def fixed_lots(legs: Sequence[SizingLeg], multiplier: Decimal, allowed_splits: int) -> tuple[list[int], str | None]:
    """Each leg's lots under fixed-lots sizing: floor(the leg's lots × the account's multiplier).

    Needs no funds and no margin (the executor sizes fixed-lot strategies without a broker call).

    Returns:
        (lots per leg, None), or (zeros, why the account is skipped): a leg rounds down to 0 lots,
        or exceeds max lots per order × allowed splits.
    """
    lots = [int((leg.lots * multiplier).to_integral_value(rounding=ROUND_FLOOR)) for leg in legs]
    for number, (leg, n) in enumerate(zip(legs, lots, strict=True), start=1):
        if n == 0:
            return [0] * len(legs), f"leg {number}: {leg.lots} lot(s) × multiplier {multiplier} rounds down to 0 lots"
        cap = leg.max_lots_per_order * allowed_splits
        if n > cap:
            return [0] * len(legs), (f"leg {number}: {n} lots exceed {leg.max_lots_per_order} lots per order × "
                                     f"{allowed_splits} order(s) = {cap}")
    return lots, None


def leg_size(leg: SizingLeg, lots: int) -> LegSize:
    """A leg at `lots` lots: its quantity and its freeze-split child quantities."""
    return _leg_size(leg, lots)


def _zero_legs(legs: Sequence[SizingLeg]) -> tuple[LegSize, ...]:
    return tuple(LegSize(0, 0, ()) for _ in legs)


def _check_common(legs: Sequence[SizingLeg], allowed_splits: int, capital_cap: Decimal | None) -> None:
    if not legs:
        raise SizingError("a strategy needs at least one leg")
    _positive_int(allowed_splits, "allowed splits")
    if capital_cap is not None and capital_cap < 0:
        raise SizingError("the capital cap cannot be negative")


def _size_fixed(legs: Sequence[SizingLeg], margin: StrategyLotMargin, available: Decimal,
                multiplier: Decimal, allowed_splits: int) -> AccountSizing:
    if not isinstance(multiplier, Decimal | int) or isinstance(multiplier, bool) or multiplier <= 0:
        raise SizingError(f"the lot multiplier must be greater than 0, got {multiplier!r}")
    lots, reason = fixed_lots(legs, Decimal(multiplier), allowed_splits)
    if reason is not None:
        return AccountSizing(RiskProfile.FIXED_LOTS, _zero_legs(legs), None, margin, Decimal(0),
                             available, None, Binding.FIXED, reason)
    # Margin of what is actually traded: a fractional multiplier rounds legs down (1.5 × 1 lot -> 1 lot),
    # so scale by the largest per-leg ratio traded, not by the multiplier (exact when every leg scales
    # alike, an upper bound otherwise).
    used = margin.amount * max(Decimal(n) / leg.lots for leg, n in zip(legs, lots, strict=True))
    warnings: tuple[str, ...] = ()
    if available < used:
        have, need = _inr(available, used)
        warnings = (f"available {have} < {need} needed for the fixed size",)
    return AccountSizing(RiskProfile.FIXED_LOTS, tuple(_leg_size(leg, n) for leg, n in zip(legs, lots, strict=True)),
                         None, margin, used, available, None, Binding.FIXED, None, warnings)


def _size_by_margin(legs: Sequence[SizingLeg], profile: RiskProfile, margin: StrategyLotMargin,
                    available: Decimal, capital_cap: Decimal | None, allowed_splits: int,
                    percent: Decimal) -> AccountSizing:
    per_lot = margin.amount
    if per_lot <= 0:
        raise SizingError("margin per strategy lot must be greater than 0")
    by_profile = max(available, Decimal(0)) * percent / 100
    usable, binding = by_profile, Binding.PROFILE
    if capital_cap is not None and capital_cap < by_profile:
        usable, binding = Decimal(capital_cap), Binding.CAPITAL_CAP
    lots = int((usable / per_lot).to_integral_value(rounding=ROUND_FLOOR))
    freeze_cap = min(leg.max_lots_per_order * allowed_splits // leg.lots for leg in legs)
    reason = None
    if freeze_cap == 0:
        number, leg = next((i, leg) for i, leg in enumerate(legs, start=1)
                           if leg.max_lots_per_order * allowed_splits < leg.lots)
        reason = (f"leg {number}: one strategy lot needs {leg.lots} lots, above {leg.max_lots_per_order} "
                  f"lots per order × {allowed_splits} order(s)")
        lots, binding = 0, Binding.FREEZE_SPLITS
    elif lots > freeze_cap:
        lots, binding = freeze_cap, Binding.FREEZE_SPLITS
    elif lots == 0:
        if available < per_lot:
            have, need = _inr(available, per_lot)
            reason = f"available {have} < {need} for one lot"
        elif binding is Binding.CAPITAL_CAP:
            have, need = _inr(usable, per_lot)
            reason = f"capital cap {have} < {need} for one lot"
        else:
            have, whole, need = _inr(usable, available, per_lot)
            reason = f"usable {have} ({percent} % of available {whole}) < {need} for one lot"
    if reason is not None:
        return AccountSizing(profile, _zero_legs(legs), 0, margin, Decimal(0), available, usable, binding, reason)
    return AccountSizing(profile, tuple(_leg_size(leg, lots * leg.lots) for leg in legs), lots, margin,
                         per_lot * lots, available, usable, binding)


def size_account(legs: Sequence[SizingLeg], profile: RiskProfile | str, *, margin: StrategyLotMargin,
                 available_margin: Decimal, allowed_splits: int, multiplier: Decimal = Decimal(1),
                 capital_cap: Decimal | None = None, usable_percent: Decimal | None = None) -> AccountSizing:
    """Size one account for a strategy.

    Args:
        legs: the strategy's resolved legs, each with its lots per strategy lot.
        profile: fixed lots or a margin-based profile (RiskProfile or its value).
        margin: margin per strategy lot (margin.strategy_lot_margin), computed once per
            preview or execution.
        available_margin: the account's available margin (margin.available_margin).
        allowed_splits: how many freeze-split child orders one leg may use (>= 1).
        multiplier: the account's lot multiplier (fixed lots only), > 0.
        capital_cap: the most margin (₹) this account may commit, >= 0, or None.
        usable_percent: a share of available margin (0 < % <= 100) that replaces the
            profile's, e.g. a trade-quality grade on the margin calculator (A 95 %); margin-
            based profiles only.
    Returns:
        The account's sizing; `skip_reason` set when it trades nothing.
    Raises:
        SizingError: no legs, allowed splits < 1, multiplier <= 0, capital cap < 0, a
            usable percent outside (0, 100] or given with fixed lots, or a margin per
            strategy lot <= 0.
        ValueError: an unknown profile.
    """
    chosen = RiskProfile(profile)
    _check_common(legs, allowed_splits, capital_cap)
    available = Decimal(available_margin)
    if chosen is RiskProfile.FIXED_LOTS:
        if usable_percent is not None:
            raise SizingError("fixed lots use no share of available margin")
        return _size_fixed(legs, margin, available, multiplier, allowed_splits)
    percent = PROFILE_PERCENT[chosen] if usable_percent is None else Decimal(usable_percent)
    if not 0 < percent <= 100:
        raise SizingError(f"the usable share must be above 0 % and at most 100 %, got {usable_percent} %")
    return _size_by_margin(legs, chosen, margin, available, capital_cap, allowed_splits, percent)

