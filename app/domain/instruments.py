"""Index underlyings: where they are quoted and where their derivatives trade (DOMAIN.md)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Underlying:
    symbol: str
    quote_exchange: str  # where the index itself is quoted
    derivatives_exchange: str  # where its futures and options trade


UNDERLYINGS: dict[str, Underlying] = {
    u.symbol: u
    for u in (
        Underlying("NIFTY", "NSE_INDEX", "NFO"),
        Underlying("BANKNIFTY", "NSE_INDEX", "NFO"),
        Underlying("SENSEX", "BSE_INDEX", "BFO"),
        Underlying("FINNIFTY", "NSE_INDEX", "NFO"),
        Underlying("MIDCPNIFTY", "NSE_INDEX", "NFO"),
    )
}


def underlying(symbol: str) -> Underlying:
    """Look up an index underlying. Raises KeyError for an unknown symbol."""
    return UNDERLYINGS[symbol.strip().upper()]
