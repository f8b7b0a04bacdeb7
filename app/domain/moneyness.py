"""Whether an option is in the money, from its strike and the underlying's price."""

from __future__ import annotations

from decimal import Decimal


def is_in_the_money(option_type: str, strike: Decimal, spot: Decimal) -> bool:
    """A call is in the money below the spot, a put above it; at the spot neither is.

    Args:
        option_type: "CE" or "PE".
        strike: the option's strike.
        spot: the underlying's last price.
    Returns:
        True when exercising now would pay (strike < spot for CE, strike > spot for PE).
    Raises:
        ValueError: for any other option type.
    """
    if option_type == "CE":
        return strike < spot
    if option_type == "PE":
        return strike > spot
    raise ValueError(f"option type must be CE or PE, not {option_type!r}")
