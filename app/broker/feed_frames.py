"""Market-data frames of OpenAlgo's WebSocket protocol (OPENALGO_API.md §3), parsed at the boundary.

Prices become ``Decimal`` and exchange times aware UTC here; nothing is judged (a zero price still
parses): ``app.services.market_data.LastPriceCache`` decides what to accept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import IntEnum
from typing import Any
from urllib.parse import urlsplit

from app.broker.parsing import Order, parse_order

# Both spellings of a quote field appear in the wild (OPENALGO_API.md §4); fill in whichever is missing.
ALIASES = (("average_price", "avg_trade_price"), ("last_quantity", "last_trade_quantity"))


class Mode(IntEnum):
    """Subscription modes; a higher mode includes the LTP."""

    LTP = 1
    QUOTE = 2


@dataclass(frozen=True, order=True)
class Instrument:
    """An OpenAlgo symbol on an exchange, e.g. ``Instrument("NSE_INDEX", "NIFTY")``."""

    exchange: str
    symbol: str

    @classmethod
    def of(cls, value: Instrument | Mapping[str, Any]) -> Instrument:
        """Accept an Instrument or an SDK-style ``{"symbol":..,"exchange":..}`` mapping."""
        if isinstance(value, Instrument):
            return value
        return cls(str(value["exchange"]).strip().upper(), str(value["symbol"]).strip().upper())


@dataclass(frozen=True)
class Tick:
    """One parsed ``market_data`` frame. ``ltp`` is None when missing or not a number."""

    instrument: Instrument
    mode: int
    ltp: Decimal | None
    tick_time: datetime | None  # exchange time (``ltt``, else ``timestamp``), aware UTC
    received_at: datetime
    data: Mapping[str, Any]  # the payload with both alias spellings present


def parse_price(value: Any) -> Decimal | None:
    """A finite Decimal from a JSON number or numeric string, else None (sign is not checked here)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        price = Decimal(str(value).strip()) if isinstance(value, (int, float, str, Decimal)) else None
    except InvalidOperation:
        return None
    return price if price is not None and price.is_finite() else None


def parse_epoch(value: Any) -> datetime | None:
    """Epoch milliseconds (or seconds, as some adapters send) as aware UTC; None when absent or bad."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if not (math.isfinite(number) and number > 0):
        return None
    seconds = number / 1000.0 if number > 1e11 else number
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def parse_market_data(frame: Mapping[str, Any], received_at: datetime) -> Tick | None:
    """A Tick from a ``market_data`` frame; None when it is not one or names no instrument."""
    if frame.get("type") != "market_data":
        return None
    raw = frame.get("data")
    data: dict[str, Any] = dict(raw) if isinstance(raw, Mapping) else dict(frame)
    symbol = frame.get("symbol") or data.get("symbol")
    exchange = frame.get("exchange") or data.get("exchange")
    if not symbol or not exchange:
        return None
    for a, b in ALIASES:
        if a in data and b not in data:
            data[b] = data[a]
        elif b in data and a not in data:
            data[a] = data[b]
    mode = frame.get("mode", data.get("mode", Mode.LTP))
    tick_time = parse_epoch(data.get("ltt")) or parse_epoch(data.get("timestamp"))
    return Tick(Instrument.of({"exchange": exchange, "symbol": symbol}), int(mode) if str(mode).isdigit() else 1,
                parse_price(data.get("ltp", frame.get("ltp"))), tick_time, received_at, data)


def parse_order_update(frame: Mapping[str, Any]) -> Order | None:
    """An ``order_update`` frame (after ``subscribe_orders``) as the order-status Order, or None."""
    if frame.get("type") != "order_update" or not frame.get("orderid"):
        return None
    return parse_order(dict(frame))


def redact_url(url: str) -> str:
    """The URL without user info, query or fragment (safe to log and show)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return f"{parts.scheme}://{netloc}{parts.path}"

