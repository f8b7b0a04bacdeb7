"""Index underlyings (where they are quoted, where their derivatives trade) and leg vocabulary."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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


class OptionType(StrEnum):
    """Call or put, written as OpenAlgo writes them in symbols."""

    CE = "CE"
    PE = "PE"


class Action(StrEnum):
    """Order side of a leg."""

    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        """+1 for BUY, -1 for SELL: the sign of the leg's exposure."""
        return 1 if self is Action.BUY else -1


class InstrumentKind(StrEnum):
    """What a leg trades."""

    OPTION = "option"
    FUTURE = "future"
