"""Rupee amounts with Indian digit grouping."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from app.domain.money import format_inr


@pytest.mark.parametrize(("amount", "places", "expected"), [
    (0, 0, "₹0"),
    (999, 0, "₹999"),
    (1000, 0, "₹1,000"),
    (120000, 0, "₹1,20,000"),
    (250000, 0, "₹2,50,000"),
    (1234567, 0, "₹12,34,567"),
    (10**12, 0, "₹10,00,00,00,00,000"),
    (D("12345678.5"), 2, "₹1,23,45,678.50"),
    (D("12345678.5"), 0, "₹1,23,45,679"),      # half-up
    (D("99999.5"), 0, "₹1,00,000"),
    (D("2.345"), 2, "₹2.35"),
    (D("-5000"), 0, "-₹5,000"),
    (D("-0.4"), 0, "₹0"),                      # rounds to zero: no sign
    (D("-1234.567"), 2, "-₹1,234.57"),
])
def test_format_inr_groups_indian_style(amount, places, expected):
    assert format_inr(amount, places) == expected


@pytest.mark.parametrize(("amount", "places"), [(D("NaN"), 0), (D("Infinity"), 0), (1.5, 0), (True, 0), (10, -1)])
def test_format_inr_bad_input_raises_value_error(amount, places):
    with pytest.raises(ValueError):
        format_inr(amount, places)
