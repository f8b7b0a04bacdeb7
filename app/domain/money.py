"""Rupee amounts written the Indian way: ₹1,20,000 (the last three digits, then pairs).

Used in the reasons the domain gives (e.g. why an account is skipped), so that the text a
trader reads is the same wherever it is shown. Rounding is half-up, as on a contract note.
"""

from __future__ import annotations

from decimal import Decimal

from app.domain.formatting import indian_number

RUPEE = "₹"


def format_inr(amount: Decimal | int, places: int = 0) -> str:
    """Format an amount of rupees with Indian digit grouping.

    Args:
        amount: the amount (Decimal or int).
        places: decimals to show, rounded half-up (0 = whole rupees).
    Returns:
        format_inr(120000) -> "₹1,20,000"; format_inr(Decimal("12345678.5"), 2) ->
        "₹1,23,45,678.50"; format_inr(Decimal("-5000")) -> "-₹5,000"; an amount that rounds
        to zero has no sign.
    Raises:
        ValueError: `places` is negative or `amount` is not a finite number.
    """
    if places < 0:
        raise ValueError("places must be >= 0")
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
        raise ValueError(f"not an amount: {amount!r}")
    value = Decimal(amount)
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {amount!r}")
    text = indian_number(value, places)  # the one grouping and rounding rule (app/domain/formatting.py)
    return f"-{RUPEE}{text[1:]}" if text.startswith("-") else f"{RUPEE}{text}"
