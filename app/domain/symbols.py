"""OpenAlgo symbols for index futures and options (OPENALGO_API.md §2).

- Future: BASE + DDMMMYY + "FUT"                 e.g. NIFTY29DEC26FUT
- Option: BASE + DDMMMYY + strike + "CE" | "PE"  e.g. NIFTY05JAN2726000CE, VEDL25APR24292.5CE

The expiry part comes from the contract's real expiry date (never a hard-coded year), the
month is the upper-case English abbreviation, and a strike is written as an integer when
whole, else with its significant decimals only (292.5, never 292.50), matching Python's
str(float) on the broker's side for strikes with at most a few decimals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from app.domain.errors import InvalidExpiry, InvalidSymbol
from app.domain.expiries import MONTHS, format_expiry, parse_expiry
from app.domain.instruments import InstrumentKind, OptionType

_BASE_RE = re.compile(r"^[A-Z][A-Z0-9&]*$")
# The base may contain digits (NIFTYNXT50), so the expiry is found by its month name; the
# base is matched lazily, so the first place a real DDMMMYY fits wins.
_SYMBOL_RE = re.compile(
    r"^(?P<base>[A-Z][A-Z0-9&]*?)(?P<expiry>\d{2}(?:" + "|".join(MONTHS) + r")\d{2})"
    r"(?:(?P<fut>FUT)|(?P<strike>\d+(?:\.\d+)?)(?P<type>CE|PE))$")


@dataclass(frozen=True)
class ParsedSymbol:
    """The parts of an OpenAlgo derivative symbol."""

    base: str
    expiry: date
    kind: InstrumentKind
    strike: Decimal | None = None
    option_type: OptionType | None = None


def _base(base: str) -> str:
    text = base.strip().upper()
    if not _BASE_RE.match(text):
        raise InvalidSymbol(f"{base!r} is not an underlying name (letters, digits, &)")
    return text


def format_strike(strike: Decimal) -> str:
    """A strike as it appears in a symbol.

    Args:
        strike: a positive strike price.
    Returns:
        "26000" for 26000 or 26000.00; "292.5" for 292.50; "83.25" for 83.25.
    Raises:
        InvalidSymbol: the strike is not a positive finite number.
    """
    # A float from JSON goes through its shortest repr (292.5, not 292.5000000000000000277...).
    value = Decimal(repr(strike)) if isinstance(strike, float) else Decimal(strike)
    if not value.is_finite() or value <= 0:
        raise InvalidSymbol(f"strike must be a positive number, got {strike!r}")
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def future_symbol(base: str, expiry: date) -> str:
    """The futures symbol of an underlying for an expiry, e.g. ("NIFTY", 2026-12-29) -> "NIFTY29DEC26FUT".

    Raises:
        InvalidSymbol: the base is not a valid underlying name.
    """
    return f"{_base(base)}{format_expiry(expiry)}FUT"


def option_symbol(base: str, expiry: date, strike: Decimal, option_type: OptionType | str) -> str:
    """The option symbol, e.g. ("NIFTY", 2027-01-05, 26000, CE) -> "NIFTY05JAN2726000CE".

    Args:
        base: the underlying, e.g. "NIFTY" (case-insensitive).
        expiry: the contract's real expiry date.
        strike: the strike price.
        option_type: CE or PE.
    Raises:
        InvalidSymbol: bad base or strike.
        ValueError: an option type other than CE/PE.
    """
    return f"{_base(base)}{format_expiry(expiry)}{format_strike(strike)}{OptionType(option_type).value}"


def parse_symbol(symbol: str) -> ParsedSymbol:
    """Split a future or option symbol into its parts (the reverse of the builders above).

    Returns:
        The base, expiry date, kind, and for options the strike and type.
    Raises:
        InvalidSymbol: the text is not an OpenAlgo future or option symbol.
    """
    text = symbol.strip().upper() if isinstance(symbol, str) else ""
    match = _SYMBOL_RE.match(text)
    if match is None:
        raise InvalidSymbol(f"{symbol!r} is not an OpenAlgo future or option symbol")
    try:
        expiry = parse_expiry(match["expiry"])
    except InvalidExpiry:
        raise InvalidSymbol(f"{symbol!r} holds no real expiry date") from None
    if match["fut"]:
        return ParsedSymbol(match["base"], expiry, InstrumentKind.FUTURE)
    strike = Decimal(match["strike"])
    if strike <= 0:
        raise InvalidSymbol(f"{symbol!r} has a zero strike")
    return ParsedSymbol(match["base"], expiry, InstrumentKind.OPTION, strike, OptionType(match["type"]))
