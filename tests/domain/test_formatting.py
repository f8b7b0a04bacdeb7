"""Display rules for numbers: exact strings for every case that matters on screen."""

from decimal import Decimal

import pytest

from app.domain import formatting as fmt
from app.domain.moneyness import is_in_the_money


@pytest.mark.parametrize(("digits", "expected"), [
    ("0", "0"), ("7", "7"), ("999", "999"), ("1000", "1,000"), ("99999", "99,999"), ("100000", "1,00,000"),
    ("1234567", "12,34,567"), ("12345678", "1,23,45,678"), ("123456789", "12,34,56,789"),
    ("1000000000", "1,00,00,00,000"),
])
def test_group_indian_groups_last_three_then_pairs(digits, expected):
    assert fmt.group_indian(digits) == expected


@pytest.mark.parametrize("bad", ["", "-1", "1.5", "12,345", "١٢٣", " 12"])
def test_group_indian_refuses_anything_but_digits(bad):
    with pytest.raises(ValueError):
        fmt.group_indian(bad)


@pytest.mark.parametrize(("value", "places", "expected"), [
    (0, 0, "0"), (12, 0, "12"), (1234567, 0, "12,34,567"), (-1234567, 0, "-12,34,567"),
    (3122730, 0, "31,22,730"), (100000, 0, "1,00,000"),
    (Decimal("26010.0"), 2, "26,010.00"), (Decimal("86.45"), 2, "86.45"), (Decimal("149.955"), 2, "149.96"),
    (Decimal("2.345"), 2, "2.35"), (Decimal("2.335"), 2, "2.34"),  # half-up, not banker's rounding
    (Decimal("-123456.789"), 2, "-1,23,456.79"), (Decimal("999.995"), 2, "1,000.00"),
    (Decimal("-0.001"), 2, "0.00"), (Decimal("1E+5"), 0, "1,00,000"), (Decimal("1234567.5"), 0, "12,34,568"),
    (Decimal("0.5"), 0, "1"), (7, 2, "7.00"),
])
def test_indian_number_groups_and_rounds_half_up(value, places, expected):
    assert fmt.indian_number(value, places) == expected


@pytest.mark.parametrize("missing", [None, True, Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_missing_or_non_finite_values_are_written_as_missing(missing):
    assert fmt.indian_number(missing, 2) == fmt.MISSING
    assert fmt.fixed(missing, 4) == fmt.MISSING
    assert fmt.signed(missing) == fmt.MISSING
    assert fmt.strike(missing) == fmt.MISSING


@pytest.mark.parametrize(("value", "places", "expected"), [
    (Decimal("0.001953"), 4, "0.0020"), (Decimal("0.5211"), 4, "0.5211"), (Decimal("-33.0525"), 4, "-33.0525"),
    (Decimal("-29.67635"), 4, "-29.6764"), (Decimal("6.012"), 4, "6.0120"), (Decimal("13.5"), 2, "13.50"),
    (Decimal("13.93"), 2, "13.93"), (Decimal("12345.678"), 2, "12345.68"), (Decimal("-0.00004"), 4, "0.0000"),
    (Decimal("4"), 0, "4"),
])
def test_fixed_has_exact_decimals_and_no_grouping(value, places, expected):
    assert fmt.fixed(value, places) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (Decimal("12.5"), "+12.50"), (Decimal("-86.75"), "-86.75"), (Decimal("0"), "0.00"), (Decimal("0.004"), "0.00"),
    (Decimal("-0.004"), "0.00"), (Decimal("1234.5"), "+1,234.50"), (5, "+5.00"),
])
def test_signed_puts_plus_before_positive_changes_only(value, expected):
    assert fmt.signed(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (Decimal("26000"), "26000"), (Decimal("26000.0"), "26000"), (Decimal("26000.00"), "26000"),
    (Decimal("2.6E+4"), "26000"), (Decimal("292.5"), "292.5"), (Decimal("292.50"), "292.5"),
    (Decimal("1012.25"), "1012.25"), (Decimal("100"), "100"), (85000, "85000"), (Decimal("0.05"), "0.05"),
])
def test_strike_is_an_integer_when_whole_else_shortest(value, expected):
    assert fmt.strike(value) == expected


def test_negative_places_are_refused():
    with pytest.raises(ValueError):
        fmt.indian_number(1, -1)
    with pytest.raises(ValueError):
        fmt.fixed(Decimal(1), -2)


@pytest.mark.parametrize(("option_type", "strike", "spot", "expected"), [
    ("CE", "25900", "26010", True), ("CE", "26050", "26010", False), ("CE", "26000", "26000", False),
    ("PE", "26050", "26010", True), ("PE", "25900", "26010", False), ("PE", "26000", "26000", False),
    ("CE", "292.5", "292.55", True), ("PE", "292.5", "292.45", True),
])
def test_in_the_money_calls_below_spot_puts_above(option_type, strike, spot, expected):
    assert is_in_the_money(option_type, Decimal(strike), Decimal(spot)) is expected


def test_in_the_money_refuses_unknown_option_type():
    with pytest.raises(ValueError):
        is_in_the_money("FUT", Decimal(1), Decimal(1))
