"""OpenAlgo symbols built from real expiry dates, across year ends, and parsed back."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from app.domain.errors import InvalidSymbol
from app.domain.instruments import InstrumentKind, OptionType
from app.domain.symbols import ParsedSymbol, format_strike, future_symbol, option_symbol, parse_symbol


@pytest.mark.parametrize(("base", "expiry", "strike", "option_type", "expected"), [
    ("NIFTY", date(2026, 12, 29), D(26000), "CE", "NIFTY29DEC2626000CE"),
    ("NIFTY", date(2027, 1, 5), D(26000), "PE", "NIFTY05JAN2726000PE"),     # a week later, the next year
    ("SENSEX", date(2026, 12, 31), D(85000), OptionType.CE, "SENSEX31DEC2685000CE"),
    ("SENSEX", date(2027, 1, 7), D(85100), OptionType.PE, "SENSEX07JAN2785100PE"),
    ("BANKNIFTY", date(2027, 1, 25), D("59000.00"), "CE", "BANKNIFTY25JAN2759000CE"),
    ("VEDL", date(2024, 4, 25), D("292.50"), "CE", "VEDL25APR24292.5CE"),
    ("USDINR", date(2025, 1, 27), D("83.5"), "PE", "USDINR27JAN2583.5PE"),
    ("USDINR", date(2025, 1, 27), D("83.25"), "CE", "USDINR27JAN2583.25CE"),
    ("nifty", date(2030, 10, 1), 24000, "CE", "NIFTY01OCT3024000CE"),
])
def test_option_symbol_from_real_expiry_returns_openalgo_symbol(base, expiry, strike, option_type, expected):
    assert option_symbol(base, expiry, strike, option_type) == expected


@pytest.mark.parametrize(("base", "expiry", "expected"), [
    ("NIFTY", date(2026, 12, 29), "NIFTY29DEC26FUT"),
    ("NIFTY", date(2027, 1, 25), "NIFTY25JAN27FUT"),
    ("BANKNIFTY", date(2024, 4, 24), "BANKNIFTY24APR24FUT"),
    ("SENSEX", date(2026, 12, 31), "SENSEX31DEC26FUT"),
])
def test_future_symbol_from_real_expiry_returns_openalgo_symbol(base, expiry, expected):
    assert future_symbol(base, expiry) == expected


def test_option_symbol_across_year_end_changes_only_from_the_date():
    december = option_symbol("NIFTY", date(2026, 12, 29), D(26000), "CE")
    january = option_symbol("NIFTY", date(2027, 1, 5), D(26000), "CE")
    assert december[5:12] == "29DEC26"
    assert january[5:12] == "05JAN27"


@pytest.mark.parametrize(("strike", "expected"), [
    (D(26000), "26000"), (D("26000.0"), "26000"), (D("292.50"), "292.5"), (D("0.05"), "0.05"), (D("1E+4"), "10000"),
    (292.5, "292.5"), (83.1, "83.1"), (26000.0, "26000"),
])
def test_format_strike_whole_as_integer_else_significant_decimals(strike, expected):
    assert format_strike(strike) == expected


@pytest.mark.parametrize("strike", [D(0), D(-100), D("NaN"), D("Infinity")])
def test_format_strike_not_positive_raises_invalid_symbol(strike):
    with pytest.raises(InvalidSymbol):
        format_strike(strike)


@pytest.mark.parametrize(("base", "option_type"), [("1NIFTY", "CE"), ("NIF TY", "CE"), ("", "PE")])
def test_option_symbol_bad_base_raises_invalid_symbol(base, option_type):
    with pytest.raises(InvalidSymbol):
        option_symbol(base, date(2026, 12, 29), D(26000), option_type)


def test_option_symbol_bad_option_type_raises_value_error():
    with pytest.raises(ValueError, match="XE"):
        option_symbol("NIFTY", date(2026, 12, 29), D(26000), "XE")


@pytest.mark.parametrize(("symbol", "expected"), [
    ("NIFTY29DEC2626000CE", ParsedSymbol("NIFTY", date(2026, 12, 29), InstrumentKind.OPTION, D(26000), OptionType.CE)),
    ("NIFTY05JAN2726000PE", ParsedSymbol("NIFTY", date(2027, 1, 5), InstrumentKind.OPTION, D(26000), OptionType.PE)),
    ("NIFTY29DEC26FUT", ParsedSymbol("NIFTY", date(2026, 12, 29), InstrumentKind.FUTURE)),
    ("VEDL25APR24292.5CE", ParsedSymbol("VEDL", date(2024, 4, 25), InstrumentKind.OPTION, D("292.5"), OptionType.CE)),
    ("NIFTYNXT5030DEC2570000CE",
     ParsedSymbol("NIFTYNXT50", date(2025, 12, 30), InstrumentKind.OPTION, D(70000), OptionType.CE)),
    ("M&M30DEC253000PE", ParsedSymbol("M&M", date(2025, 12, 30), InstrumentKind.OPTION, D(3000), OptionType.PE)),
    ("sensex31dec26fut", ParsedSymbol("SENSEX", date(2026, 12, 31), InstrumentKind.FUTURE)),
])
def test_parse_symbol_valid_returns_parts(symbol, expected):
    assert parse_symbol(symbol) == expected


@pytest.mark.parametrize("symbol", ["NIFTY", "NIFTY30DEC25", "NIFTY32DEC2526000CE", "NIFTY30DEC2526000XE",
                                    "30DEC2526000CE", "NIFTY30DEC250CE", ""])
def test_parse_symbol_invalid_raises_invalid_symbol(symbol):
    with pytest.raises(InvalidSymbol):
        parse_symbol(symbol)


@pytest.mark.parametrize(("base", "expiry", "strike", "option_type"), [
    ("NIFTY", date(2026, 12, 29), D(26000), "CE"),
    ("BANKNIFTY", date(2027, 1, 25), D(59500), "PE"),
    ("USDINR", date(2025, 1, 27), D("83.25"), "PE"),
])
def test_parse_symbol_round_trips_option_symbol(base, expiry, strike, option_type):
    parsed = parse_symbol(option_symbol(base, expiry, strike, option_type))
    assert (parsed.base, parsed.expiry, parsed.strike, parsed.option_type) == (base, expiry, strike, option_type)
