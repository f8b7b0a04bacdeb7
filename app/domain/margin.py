"""Margin: figures derived from an account's /funds answer (one definition each, LESSONS.md),
and the margin a strategy needs per "strategy lot" from the broker's basket or the table.

Table margin (DOMAIN.md "Margin calculator", hedged pairs sized once), per underlying, for
the lots of every leg:
- Futures: every futures lot, BUY or SELL, at the futures rate.
- Sold options: a SELL CE lot and a SELL PE lot on the same underlying form a pair and are
  charged the "CE and PE sell" rate once; the sold lots left unpaired are charged the
  "CE or PE sell" rate each.
- Bought options: a BUY lot that hedges a SELL lot of the same type on the same underlying
  (any strike or expiry) adds nothing: it takes its SELL leg's quantity, so the pair is
  sized once, by the SELL side. Bought lots beyond the sold lots of their type are charged
  the option-buying (premium per lot) rate.
The aggregation per underlying and type keeps the legs' own ratios (a 1:2:1 butterfly stays
1:2:1) and scales linearly: the margin of N strategy lots is N times that of one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from app.domain.errors import SizingError
from app.domain.instruments import Action, InstrumentKind, OptionType

AVAILABLE_MARGIN_FORMULA = ("available margin = available cash (OpenAlgo /funds availablecash; "
                            "collateral shown, not added)")


class FundsLike(Protocol):
    @property
    def available_cash(self) -> Decimal: ...
    @property
    def collateral(self) -> Decimal: ...
    @property
    def utilised_debits(self) -> Decimal: ...
    @property
    def m2m_realized(self) -> Decimal: ...
    @property
    def m2m_unrealized(self) -> Decimal: ...


def available_margin(funds: FundsLike) -> Decimal:
    """Margin the account can still use: OpenAlgo's `availablecash`, and only that.

    `availablecash` is already net of what open positions use (`utiliseddebits`), and at least
    one major broker's adapter (Zerodha: Kite's `net`) already counts pledged collateral in it;
    adding `collateral` again would size such accounts on money counted twice. Under-sizing an
    account whose broker leaves collateral out is the safe error; over-sizing sends orders the
    broker rejects half-way through an entry. This is the only place the formula lives.
    """
    return funds.available_cash


def used_margin(funds: FundsLike) -> Decimal:
    return funds.utilised_debits


def todays_pnl(funds: FundsLike) -> Decimal:
    """Realized plus unrealized mark-to-market for the current trading day."""
    return funds.m2m_realized + funds.m2m_unrealized


class TradeType(StrEnum):
    """The rows of the margin table."""

    CE_OR_PE_SELL = "ce_or_pe_sell"
    CE_AND_PE_SELL = "ce_and_pe_sell"
    FUTURES = "futures"
    OPTION_BUYING = "option_buying"


class MarginSource(StrEnum):
    """Where a strategy's margin figure came from (the page says which)."""

    BROKER_BASKET = "broker_basket"
    MARGIN_TABLE = "margin_table"


@dataclass(frozen=True)
class MarginRate:
    """Margin per lot (₹) of one trade type of one underlying, on and off its expiry days."""

    expiry: Decimal
    non_expiry: Decimal

    def on(self, expiry_day: bool) -> Decimal:
        """The rate that applies today: `expiry_day` from the underlying's expiry list."""
        return self.expiry if expiry_day else self.non_expiry


@dataclass(frozen=True)
class MarginRates:
    """The table's four rates (₹ per lot) of one underlying for one kind of day."""

    ce_or_pe_sell: Decimal
    ce_and_pe_sell: Decimal
    futures: Decimal
    option_buying: Decimal

    def __post_init__(self) -> None:
        for name in ("ce_or_pe_sell", "ce_and_pe_sell", "futures", "option_buying"):
            if getattr(self, name) <= 0:
                raise SizingError(f"margin per lot for {name} must be greater than 0")

    @classmethod
    def from_table(cls, rows: Mapping[TradeType, MarginRate], *, expiry_day: bool) -> MarginRates:
        """Pick today's rates from an underlying's rows.

        Args:
            rows: the underlying's rate for every TradeType.
            expiry_day: whether today is an expiry day of that underlying.
        Raises:
            SizingError: a trade type is missing or a rate is not positive.
        """
        missing = [t.value for t in TradeType if t not in rows]
        if missing:
            raise SizingError(f"the margin table lacks {', '.join(missing)}")
        return cls(*(rows[t].on(expiry_day) for t in (TradeType.CE_OR_PE_SELL, TradeType.CE_AND_PE_SELL,
                                                      TradeType.FUTURES, TradeType.OPTION_BUYING)))

    def rate(self, trade_type: TradeType) -> Decimal:
        """The rate of one trade type."""
        return {
            TradeType.CE_OR_PE_SELL: self.ce_or_pe_sell, TradeType.CE_AND_PE_SELL: self.ce_and_pe_sell,
            TradeType.FUTURES: self.futures, TradeType.OPTION_BUYING: self.option_buying,
        }[trade_type]


class MarginLeg(Protocol):
    """What the table needs of a leg (SizingLeg satisfies it)."""

    @property
    def underlying(self) -> str: ...
    @property
    def kind(self) -> InstrumentKind: ...
    @property
    def action(self) -> Action: ...
    @property
    def option_type(self) -> OptionType | None: ...
    @property
    def lots(self) -> int: ...


@dataclass(frozen=True)
class MarginLine:
    """One charged line of a table margin: `lots` of a trade type at `rate` each."""

    underlying: str
    trade_type: TradeType
    lots: int
    rate: Decimal

    @property
    def amount(self) -> Decimal:
        """rate × lots."""
        return self.rate * self.lots


@dataclass(frozen=True)
class StrategyLotMargin:
    """The margin of one strategy lot (one lot of every leg at its ratio) and its source.

    `lines` explains a table figure; it is empty for a broker basket figure.
    """

    amount: Decimal
    source: MarginSource
    lines: tuple[MarginLine, ...] = ()


def table_margin(legs: Sequence[MarginLeg], rates: Mapping[str, MarginRates]) -> tuple[MarginLine, ...]:
    """The margin table's charge for legs at their `lots`, hedged pairs sized once.

    Args:
        legs: the legs, each with its lot count.
        rates: today's rates per underlying (see MarginRates.from_table).
    Returns:
        The charged lines (lines of 0 lots are left out), in underlying order of first
        appearance; their amounts add up to the margin.
    Raises:
        SizingError: an underlying has no rates, or an option leg has no option type.
    """
    totals: dict[str, dict[tuple[InstrumentKind, Action, OptionType | None], int]] = {}
    for leg in legs:
        if leg.kind is InstrumentKind.OPTION and leg.option_type is None:
            raise SizingError(f"an option leg on {leg.underlying} has no option type")
        key = (leg.kind, leg.action, leg.option_type if leg.kind is InstrumentKind.OPTION else None)
        per = totals.setdefault(leg.underlying, {})
        per[key] = per.get(key, 0) + leg.lots
    lines: list[MarginLine] = []
    for name, per in totals.items():
        if name not in rates:
            raise SizingError(f"no margin rates for {name}")
        today = rates[name]
        futures = sum(n for (kind, _, _), n in per.items() if kind is InstrumentKind.FUTURE)
        sold = {t: per.get((InstrumentKind.OPTION, Action.SELL, t), 0) for t in OptionType}
        bought = {t: per.get((InstrumentKind.OPTION, Action.BUY, t), 0) for t in OptionType}
        pairs = min(sold[OptionType.CE], sold[OptionType.PE])
        singles = sold[OptionType.CE] + sold[OptionType.PE] - 2 * pairs
        unhedged = sum(max(0, bought[t] - sold[t]) for t in OptionType)
        for trade_type, lots in ((TradeType.FUTURES, futures), (TradeType.CE_AND_PE_SELL, pairs),
                                 (TradeType.CE_OR_PE_SELL, singles), (TradeType.OPTION_BUYING, unhedged)):
            if lots:
                lines.append(MarginLine(name, trade_type, lots, today.rate(trade_type)))
    return tuple(lines)


def strategy_lot_margin(legs: Sequence[MarginLeg], rates: Mapping[str, MarginRates],
                        basket_margin: Decimal | None = None) -> StrategyLotMargin:
    """Margin of one strategy lot: the broker's basket figure when given, else the table.

    Args:
        legs: the strategy's legs, `lots` being each leg's lots per strategy lot (its ratio).
        rates: today's table rates per underlying (the fallback; may be empty when a basket
            figure is given).
        basket_margin: the broker's `/margin` answer for one strategy lot's basket (it
            includes the hedge benefit); None, zero or negative means "not available".
    Returns:
        The amount and its source; the table's lines when the table was used.
    Raises:
        SizingError: the table is needed and lacks an underlying, or gives 0.
    """
    if basket_margin is not None and basket_margin > 0:
        return StrategyLotMargin(Decimal(basket_margin), MarginSource.BROKER_BASKET)
    lines = table_margin(legs, rates)
    amount = sum((line.amount for line in lines), Decimal(0))
    if amount <= 0:
        raise SizingError("the strategy has no leg that needs margin")
    return StrategyLotMargin(amount, MarginSource.MARGIN_TABLE, lines)
