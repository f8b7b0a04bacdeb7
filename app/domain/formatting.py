"""How numbers are written on screen: Indian digit grouping, fixed decimals, strikes.

One rule for every page: the server formats, and the browser shows the strings it is sent.
Rounding is half-up (2.345 -> 2.35), as a trader reading a quote expects, not Python's
default banker's rounding. A missing or non-finite value is written as MISSING.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from app.domain.symbols import format_strike

MISSING = "—"

Number = int | Decimal


def group_indian(digits: str) -> str:
    """Group a string of digits the Indian way: the last three, then pairs.

    Args:
        digits: only the characters 0-9 (no sign, no decimal point).
    Returns:
        "1234567" -> "12,34,567"; "999" -> "999"; "100000" -> "1,00,000".
    Raises:
        ValueError: when `digits` is empty or holds anything but 0-9.
    """
    if not digits or not digits.isascii() or not digits.isdigit():
        raise ValueError(f"not a string of digits: {digits!r}")
    if len(digits) <= 3:
        return digits
    head, tail = digits[:-3], digits[-3:]
    pairs = []
    while len(head) > 2:
        pairs.append(head[-2:])
        head = head[:-2]
    pairs.append(head)
    return ",".join(reversed(pairs)) + "," + tail


def _as_decimal(value: Number | None) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal) and value.is_finite():
        return value
    return None


def _fixed(value: Decimal, places: int) -> tuple[str, str, str]:
    """(sign, integer digits, fraction digits) of `value` rounded half-up to `places`."""
    exponent = Decimal(1).scaleb(-places)
    try:
        rounded = value.quantize(exponent, rounding=ROUND_HALF_UP)
    except InvalidOperation:  # more digits than the context holds: astronomically large
        raise ValueError(f"cannot write {value} with {places} decimals") from None
    text = format(abs(rounded), "f")
    whole, _, fraction = text.partition(".")
    sign = "-" if rounded < 0 else ""  # -0.001 rounds to 0.00: no sign on a zero
    return sign, whole, fraction


def indian_number(value: Number | None, places: int = 0) -> str:
    """A number with Indian digit grouping and exactly `places` decimals.

    Args:
        value: an int or a Decimal; None, bool and non-finite Decimals count as missing.
        places: decimals to show (0 for counts such as OI and volume).
    Returns:
        indian_number(1234567) -> "12,34,567"; indian_number(Decimal("-123456.789"), 2)
        -> "-1,23,456.79"; indian_number(None) -> MISSING.
    Raises:
        ValueError: when `places` is negative.
    """
    if places < 0:
        raise ValueError("places must be >= 0")
    number = _as_decimal(value)
    if number is None:
        return MISSING
    sign, whole, fraction = _fixed(number, places)
    grouped = group_indian(whole)
    return f"{sign}{grouped}.{fraction}" if places else f"{sign}{grouped}"


def fixed(value: Number | None, places: int) -> str:
    """A number with exactly `places` decimals and no grouping (IV, greeks).

    fixed(Decimal("0.001953"), 4) -> "0.0020"; fixed(Decimal("13.5"), 2) -> "13.50";
    fixed(None, 2) -> MISSING. Raises ValueError when `places` is negative.
    """
    if places < 0:
        raise ValueError("places must be >= 0")
    number = _as_decimal(value)
    if number is None:
        return MISSING
    sign, whole, fraction = _fixed(number, places)
    return f"{sign}{whole}.{fraction}" if places else f"{sign}{whole}"


def signed(value: Number | None, places: int = 2) -> str:
    """Like indian_number, with a "+" before a positive value (price changes).

    signed(Decimal("12.5")) -> "+12.50"; signed(Decimal("-3")) -> "-3.00"; signed(0) -> "0.00".
    """
    text = indian_number(value, places)
    if text == MISSING or text.startswith("-") or set(text) <= {"0", ".", ","}:
        return text  # a change that rounds to zero gets no sign
    return f"+{text}"


def strike(value: Number | None) -> str:
    """A strike as OpenAlgo writes it in symbols: an integer when whole, else its shortest form.

    strike(Decimal("26000.00")) -> "26000"; strike(Decimal("292.50")) -> "292.5";
    strike(None) -> MISSING. No grouping: a strike is a label, not an amount.
    """
    number = _as_decimal(value)
    if number is None or number <= 0:
        return MISSING
    return format_strike(number)  # the symbol rule: one way to write a strike
