"""Margin per strategy lot: the broker's basket figure, else the table with hedged pairs once."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal as D

import pytest

from app.domain.errors import SizingError
from app.domain.instruments import Action, InstrumentKind, OptionType
from app.domain.margin import MarginRate, MarginRates, MarginSource, TradeType, strategy_lot_margin, table_margin
from app.domain.margin_defaults import MARGIN_DEFAULT_ROWS, MARGIN_DEFAULTS

BUY, SELL = Action.BUY, Action.SELL
CE, PE = OptionType.CE, OptionType.PE


@dataclass(frozen=True)
class Leg:
    underlying: str
    kind: InstrumentKind
    action: Action
    option_type: OptionType | None
    lots: int = 1


def opt(action, option_type, lots=1, underlying="NIFTY"):
    return Leg(underlying, InstrumentKind.OPTION, action, option_type, lots)


def fut(action, lots=1, underlying="NIFTY"):
    return Leg(underlying, InstrumentKind.FUTURE, action, None, lots)


def rates(expiry_day=False):
    return {name: MarginRates.from_table(rows, expiry_day=expiry_day) for name, rows in MARGIN_DEFAULTS.items()}


SHORT_STRADDLE = [opt(SELL, CE), opt(SELL, PE)]
IRON_CONDOR = [opt(SELL, PE), opt(BUY, PE), opt(SELL, CE), opt(BUY, CE)]


@pytest.mark.parametrize(("legs", "expiry_day", "expected"), [
    (SHORT_STRADDLE, False, D(320000)),                       # pair rate once
    (SHORT_STRADDLE, True, D(250000)),
    (IRON_CONDOR, False, D(320000)),                          # wings hedge their sold legs: nothing added
    ([opt(BUY, CE), opt(SELL, CE)], False, D(250000)),        # bull call spread
    ([opt(BUY, PE), opt(SELL, PE)], True, D(205000)),         # bear put spread on expiry day
    ([opt(BUY, CE), opt(BUY, PE)], False, D(40000)),          # long straddle: premium rate per lot
    ([opt(SELL, CE)], False, D(250000)),
    ([opt(SELL, PE)], True, D(205000)),
    ([fut(BUY)], False, D(215000)),
    ([fut(SELL)], True, D(215000)),
    ([fut(BUY, underlying="SENSEX")], False, D(185000)),
    ([opt(SELL, CE, 2), opt(SELL, PE)], False, D(320000 + 250000)),          # one pair + one single
    ([opt(BUY, CE, 2), opt(SELL, CE)], False, D(250000 + 20000)),            # one bought lot unhedged
    ([opt(BUY, CE), opt(SELL, CE, 2), opt(BUY, CE)], False, D(500000)),      # butterfly: both wings hedge
    ([opt(SELL, CE, underlying="SENSEX"), opt(SELL, PE, underlying="SENSEX")], True, D(225000)),
    ([opt(SELL, CE), opt(SELL, PE, underlying="SENSEX")], False, D(250000 + 220000)),  # no pair across indices
    ([opt(SELL, CE), opt(BUY, PE)], False, D(250000 + 20000)),               # a put does not hedge a call
    ([fut(BUY), opt(SELL, CE)], False, D(215000 + 250000)),
])
def test_strategy_lot_margin_table_hedged_pairs_once(legs, expiry_day, expected):
    margin = strategy_lot_margin(legs, rates(expiry_day))
    assert margin.source is MarginSource.MARGIN_TABLE
    assert margin.amount == expected
    assert sum(line.amount for line in margin.lines) == expected


def test_table_margin_lines_name_trade_types():
    lines = table_margin([opt(SELL, CE, 2), opt(SELL, PE), opt(BUY, PE, 3)], rates())
    assert [(line.trade_type, line.lots, line.rate) for line in lines] == [
        (TradeType.CE_AND_PE_SELL, 1, D(320000)),
        (TradeType.CE_OR_PE_SELL, 1, D(250000)),
        (TradeType.OPTION_BUYING, 2, D(20000)),
    ]


def test_table_margin_scales_linearly_with_strategy_lots():
    one = sum(line.amount for line in table_margin(IRON_CONDOR, rates()))
    five = sum(line.amount for line in table_margin([Leg(**{**vars(leg), "lots": 5}) for leg in IRON_CONDOR],
                                                    rates()))
    assert five == 5 * one


@pytest.mark.parametrize(("basket", "source", "amount"), [
    (D("98765.40"), MarginSource.BROKER_BASKET, D("98765.40")),
    (D(0), MarginSource.MARGIN_TABLE, D(320000)),
    (D(-5), MarginSource.MARGIN_TABLE, D(320000)),
    (None, MarginSource.MARGIN_TABLE, D(320000)),
])
def test_strategy_lot_margin_basket_wins_when_positive(basket, source, amount):
    margin = strategy_lot_margin(IRON_CONDOR, rates(), basket)
    assert (margin.source, margin.amount) == (source, amount)


def test_strategy_lot_margin_basket_needs_no_table():
    assert strategy_lot_margin(IRON_CONDOR, {}, D(75000)).amount == D(75000)


def test_strategy_lot_margin_unknown_underlying_raises_sizing_error():
    with pytest.raises(SizingError, match="no margin rates for BANKEX"):
        strategy_lot_margin([opt(SELL, CE, underlying="BANKEX")], rates())


def test_margin_rates_missing_trade_type_raises_sizing_error():
    rows = {TradeType.FUTURES: MarginRate(D(1), D(1))}
    with pytest.raises(SizingError, match="lacks ce_or_pe_sell, ce_and_pe_sell, option_buying"):
        MarginRates.from_table(rows, expiry_day=False)


def test_margin_rates_zero_rate_raises_sizing_error():
    with pytest.raises(SizingError, match="futures must be greater than 0"):
        MarginRates(D(1), D(1), D(0), D(1))


def test_margin_defaults_match_domain_table():
    rows = {(name, trade_type): (on, off) for name, trade_type, on, off in MARGIN_DEFAULT_ROWS}
    assert rows[("NIFTY", "ce_or_pe_sell")] == (205000, 250000)
    assert rows[("BANKNIFTY", "ce_and_pe_sell")] == (250000, 320000)
    assert rows[("SENSEX", "ce_and_pe_sell")] == (225000, 290000)
    assert rows[("SENSEX", "futures")] == (185000, 185000)
    assert rows[("SENSEX", "option_buying")] == (20000, 20000)
    assert {name for name, *_ in MARGIN_DEFAULT_ROWS} == {"NIFTY", "BANKNIFTY", "SENSEX", "FINNIFTY", "MIDCPNIFTY"}
    assert len(MARGIN_DEFAULT_ROWS) == 5 * 4


def test_available_margin_is_available_cash_alone_collateral_is_not_added_twice():
    from dataclasses import dataclass

    from app.domain.margin import available_margin

    @dataclass
    class Funds:
        available_cash: D = D("320.66")
        collateral: D = D("5000.00")  # e.g. Zerodha: already inside availablecash (Kite's "net")
        utilised_debits: D = D("679.34")
        m2m_realized: D = D("3.27")
        m2m_unrealized: D = D("-7.88")

    assert available_margin(Funds()) == D("320.66")
