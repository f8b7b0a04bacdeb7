"""Strike selection on the real strike list of one expiry (DOMAIN.md "Strike selection").

Strikes are taken as the broker lists them (the option chain of the chosen expiry), never
computed from a step: lists are uneven (wider steps far from the money and in far months).

- ATM: the listed strike nearest the underlying's price; on a tie the lower strike wins.
- ITM n / OTM n, n = 1..20: n positions along the list from ATM. A call is in the money
  below the spot, so CE ITM walks down and CE OTM up; PE ITM walks up and PE OTM down.
  Walking off either end of the list is an error, never a clamp.
- A specific strike: must be on the list.
- Premium-near: the strike whose option (of the leg's type) trades nearest a target
  premium; on a tie the cheaper option wins (and, at equal premiums, the lower strike).
  Zero, negative and missing quotes are ignored: they are not prices.

ATM, ITM and OTM legs need only the strikes around ATM, so their chain can be asked for a
window (OpenAlgo's `strike_count` each side of its ATM, `chain_window`): a full chain is several
times the answer, and a real server quotes every strike it lists. A window is trusted only when
the ATM it gives lies inside it (`inside_window`) and the leg's walk stays on it; otherwise the
whole list decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from app.domain.errors import StrikeUnavailable
from app.domain.instruments import OptionType

MIN_OFFSET = 1
MAX_OFFSET = 20
# Strikes a chain window lists beyond the widest offset of its legs: a server centres its window
# on its own ATM, which may be a strike away from ours (another tie rule, a spot a tick later).
WINDOW_MARGIN = 2


class StrikeMethod(StrEnum):
    """How a leg chooses its strike."""

    ATM = "atm"
    ITM = "itm"
    OTM = "otm"
    STRIKE = "strike"
    PREMIUM_NEAR = "premium_near"


@dataclass(frozen=True)
class StrikeRule:
    """A leg's strike method and its parameter, validated on construction.

    Attributes:
        method: the method.
        offset: positions from ATM for ITM/OTM (1..20), else None.
        strike: the strike price for STRIKE, else None.
        target_premium: the premium for PREMIUM_NEAR (> 0), else None.

    Raises:
        ValueError: a parameter is missing, out of range, or given to a method that takes none.
    """

    method: StrikeMethod
    offset: int | None = None
    strike: Decimal | None = None
    target_premium: Decimal | None = None

    def __post_init__(self) -> None:
        method = StrikeMethod(self.method)
        object.__setattr__(self, "method", method)
        needs_offset = method in (StrikeMethod.ITM, StrikeMethod.OTM)
        if needs_offset:
            _check_offset(self.offset)
        elif self.offset is not None:
            raise ValueError(f"{method.value} takes no offset")
        if method is StrikeMethod.STRIKE:
            if not _positive_finite(self.strike):
                raise ValueError("a specific strike must be a positive price")
        elif self.strike is not None:
            raise ValueError(f"{method.value} takes no strike price")
        if method is StrikeMethod.PREMIUM_NEAR:
            _check_target(self.target_premium)
        elif self.target_premium is not None:
            raise ValueError(f"{method.value} takes no target premium")

    @property
    def label(self) -> str:
        """Short human label: "ATM", "ITM3", "OTM2", "strike 26000", "premium ≈ 120"."""
        if self.method is StrikeMethod.ATM:
            return "ATM"
        if self.method in (StrikeMethod.ITM, StrikeMethod.OTM):
            return f"{self.method.value.upper()}{self.offset}"
        if self.method is StrikeMethod.STRIKE:
            return f"strike {self.strike}"
        return f"premium ≈ {self.target_premium}"


def _check_offset(offset: int | None) -> int:
    if not isinstance(offset, int) or isinstance(offset, bool) or not MIN_OFFSET <= offset <= MAX_OFFSET:
        raise ValueError(f"offset must be a whole number from {MIN_OFFSET} to {MAX_OFFSET}, got {offset!r}")
    return offset


def _check_target(target: Decimal | None) -> Decimal:
    if not _positive_finite(target):
        raise ValueError(f"the target premium must be greater than 0, got {target!r}")
    return Decimal(target)  # type: ignore[arg-type]  # checked above


def _positive_finite(value: object) -> bool:
    """A positive finite number (NaN and infinities are not prices; `NaN <= 0` would raise)."""
    if value is None or isinstance(value, bool) or not isinstance(value, Decimal | int):
        return False
    number = Decimal(value)
    return number.is_finite() and number > 0


def _strike_list(strikes: Iterable[Decimal]) -> list[Decimal]:
    listed = sorted(set(strikes))
    if not listed:
        raise StrikeUnavailable("the strike list is empty")
    return listed


def atm_strike(strikes: Iterable[Decimal], spot: Decimal) -> Decimal:
    """The at-the-money strike.

    Args:
        strikes: the listed strikes of the expiry (any order, duplicates allowed).
        spot: the underlying's last price.
    Returns:
        The strike with the smallest |strike - spot|; the lower one on a tie.
    Raises:
        StrikeUnavailable: the list is empty.
    """
    return min(_strike_list(strikes), key=lambda k: (abs(k - spot), k))


def offset_strike(strikes: Iterable[Decimal], spot: Decimal, option_type: OptionType | str,
                  method: StrikeMethod | str, offset: int) -> Decimal:
    """The strike n positions in or out of the money from ATM along the real list.

    Args:
        strikes: the listed strikes of the expiry.
        spot: the underlying's last price (it fixes ATM).
        option_type: CE or PE.
        method: StrikeMethod.ITM or StrikeMethod.OTM.
        offset: positions from ATM, 1..20.
    Returns:
        The strike: CE ITM lies below ATM, CE OTM above; PE ITM above, PE OTM below.
    Raises:
        ValueError: offset outside 1..20, or a method other than ITM/OTM.
        StrikeUnavailable: the list is empty, or the walk leaves the list.
    """
    kind = OptionType(option_type)
    way = StrikeMethod(method)
    if way not in (StrikeMethod.ITM, StrikeMethod.OTM):
        raise ValueError(f"offset_strike needs ITM or OTM, not {way.value}")
    n = _check_offset(offset)
    listed = _strike_list(strikes)
    atm = atm_strike(listed, spot)
    upward = (kind is OptionType.CE) == (way is StrikeMethod.OTM)
    index = listed.index(atm) + (n if upward else -n)
    if not 0 <= index < len(listed):
        available = len(listed) - 1 - listed.index(atm) if upward else listed.index(atm)
        side = "above" if upward else "below"
        raise StrikeUnavailable(
            f"{way.value.upper()}{n} {kind.value} is off the strike list: only {available} "
            f"strike(s) {side} ATM {atm}")
    return listed[index]


def specific_strike(strikes: Iterable[Decimal], strike: Decimal) -> Decimal:
    """A strike chosen by price, which must be listed.

    Returns:
        The listed strike equal to `strike` (26000 and 26000.0 are the same strike).
    Raises:
        StrikeUnavailable: the strike is not on the list (or the list is empty).
    """
    listed = _strike_list(strikes)
    for k in listed:
        if k == strike:
            return k
    raise StrikeUnavailable(f"strike {strike} is not listed for this expiry ({listed[0]} … {listed[-1]})")


def premium_near_strike(quotes: Mapping[Decimal, Decimal | None], target: Decimal) -> Decimal:
    """The strike whose option trades nearest a target premium.

    Args:
        quotes: {strike: LTP} of one option type (CE or PE) of one expiry, from one batched
            quote call; None, zero and negative LTPs are ignored.
        target: the target premium, > 0.
    Returns:
        The strike minimising |LTP - target|; on a tie the cheaper option's strike, and at
        equal premiums the lower strike.
    Raises:
        ValueError: target <= 0.
        StrikeUnavailable: no strike has a usable quote.
    """
    goal = _check_target(target)
    priced = [(ltp, k) for k, ltp in quotes.items() if ltp is not None and ltp > 0]
    if not priced:
        raise StrikeUnavailable("no strike has a quote above zero to compare with the target premium")
    _, strike = min(priced, key=lambda item: (abs(item[0] - goal), item[0], item[1]))
    return strike


def select_strike(rule: StrikeRule, *, strikes: Iterable[Decimal], spot: Decimal,
                  option_type: OptionType | str,
                  quotes: Mapping[Decimal, Decimal | None] | None = None) -> Decimal:
    """Apply a leg's strike rule.

    Args:
        rule: the leg's method and parameter.
        strikes: the listed strikes of the chosen expiry.
        spot: the underlying's last price.
        option_type: the leg's CE or PE.
        quotes: {strike: LTP} of that option type, required for PREMIUM_NEAR only.
    Returns:
        The selected strike.
    Raises:
        StrikeUnavailable: as the method's own function; also PREMIUM_NEAR without quotes.
    """
    if rule.method is StrikeMethod.ATM:
        return atm_strike(strikes, spot)
    if rule.method in (StrikeMethod.ITM, StrikeMethod.OTM):
        assert rule.offset is not None  # guaranteed by StrikeRule
        return offset_strike(strikes, spot, option_type, rule.method, rule.offset)
    if rule.method is StrikeMethod.STRIKE:
        assert rule.strike is not None
        return specific_strike(strikes, rule.strike)
    assert rule.target_premium is not None
    if quotes is None:
        raise StrikeUnavailable("premium-near needs the quotes of the candidate strikes")
    listed = set(_strike_list(strikes))
    return premium_near_strike({k: v for k, v in quotes.items() if k in listed}, rule.target_premium)


def chain_window(rules: Iterable[StrikeRule]) -> int | None:
    """How many strikes each side of ATM one chain must list for these legs' rules, or None when
    only the whole list will do (a specific strike, premium-near).

    ATM needs WINDOW_MARGIN strikes each side, ITM n / OTM n needs n + WINDOW_MARGIN.
    """
    widest = 0
    for rule in rules:
        if rule.method in (StrikeMethod.STRIKE, StrikeMethod.PREMIUM_NEAR):
            return None
        if rule.method in (StrikeMethod.ITM, StrikeMethod.OTM):
            widest = max(widest, _check_offset(rule.offset))
    return widest + WINDOW_MARGIN


def inside_window(strikes: Iterable[Decimal], spot: Decimal) -> bool:
    """Is the ATM of a window's strikes strictly inside it? At either end the strike nearest the
    spot may lie beyond the window (or the real list ends there): only the whole list can say."""
    listed = sorted(set(strikes))
    if not listed:
        return False
    index = listed.index(atm_strike(listed, spot))
    return 0 < index < len(listed) - 1
