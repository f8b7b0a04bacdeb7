"""Partial fills: an order that fills in several parts over wall-clock time, as large orders do live.

A spec (global default, or per account) is ``{"min_quantity": int >= 1, "parts": int >= 2,
"interval_ms": float > 0, "limit_orders": bool}`` (defaults 1, 2, 1000, false). An order placed with
``placeorder`` (also smart, basket, split and options orders) fills in parts when its quantity is at
least ``min_quantity``, or, with ``limit_orders`` true, when it is a LIMIT order of any quantity.
Forced MARKET orders (``closeposition``, the 15:15 MIS square-off) always fill at once.

The quantity is cut into ``parts`` roughly equal parts with the remainder on the last; on F&O
exchanges every part is a whole number of lots, so an order of fewer lots than ``parts`` fills in one
part per lot, and a one-lot order fills at once. Example: 3 lots of NIFTY (195, lot 65) in 3 parts is
65 + 65 + 65; 7 lots in 3 parts is 130 + 130 + 195; 10 SBIN in 3 parts is 3 + 3 + 4.

The first part fills when the order would fill (at once for MARKET, when marketable for LIMIT, on the
trigger for SL/SL-M); each next part becomes due ``interval_ms`` of wall time later (the simulated
clock may be frozen) and fills at the then-current touch (a LIMIT part waits while the limit is not
marketable). The engine schedules the parts on the server's event loop (``Engine.schedule``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

DEFAULTS: dict[str, Any] = {"min_quantity": 1, "parts": 2, "interval_ms": 1000.0, "limit_orders": False}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class PartialFills:
    """A validated partial-fill spec."""

    min_quantity: int = 1
    parts: int = 2
    interval_ms: float = 1000.0
    limit_orders: bool = False

    @classmethod
    def from_dict(cls, data: Any) -> PartialFills:
        """Validate a JSON spec; raises ValueError naming the bad key."""
        if not isinstance(data, dict):
            raise ValueError("partial_fills must be an object, false or null")
        unknown = sorted(set(data) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"unknown partial_fills keys: {', '.join(unknown)}")
        values = {**DEFAULTS, **data}
        if not _is_int(values["min_quantity"]) or values["min_quantity"] < 1:
            raise ValueError("min_quantity must be an integer >= 1")
        if not _is_int(values["parts"]) or values["parts"] < 2:
            raise ValueError("parts must be an integer >= 2")
        interval = values["interval_ms"]
        if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
            raise ValueError("interval_ms must be a number > 0")
        if not isinstance(values["limit_orders"], bool):
            raise ValueError("limit_orders must be true or false")
        return cls(values["min_quantity"], values["parts"], float(interval), values["limit_orders"])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def applies(self, quantity: int, pricetype: str) -> bool:
        """Whether an order of ``quantity`` and ``pricetype`` fills in parts."""
        return quantity >= self.min_quantity or (self.limit_orders and pricetype == "LIMIT")

    def split(self, quantity: int, unit: int) -> list[int]:
        """The part sizes of ``quantity``: each a multiple of ``unit`` (the lot), remainder last."""
        units = quantity // unit
        n = min(self.parts, units)
        if n <= 1:
            return [quantity]
        base = units // n * unit
        return [base] * (n - 1) + [quantity - base * (n - 1)]


def parse_option(value: Any) -> dict[str, Any] | bool | None:
    """An account's ``partial_fills`` option as stored: a full spec dict, False (off) or None (default)."""
    if value is None or value is False:
        return value
    return PartialFills.from_dict(value).to_dict()
