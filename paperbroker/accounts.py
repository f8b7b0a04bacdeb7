"""Accounts, orders, trades and positions, with the margin model and funds arithmetic."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from paperbroker.instruments import Instrument

FUTURE_MARGIN_RATE = 0.125  # SPAN+exposure as a share of the underlying's notional
SHORT_OPTION_MARGIN_RATE = 0.15
EQUITY_MIS_MARGIN_RATE = 0.20  # 5x intraday leverage

OPEN, TRIGGER_PENDING, COMPLETE, CANCELLED, REJECTED = (
    "open", "trigger pending", "complete", "cancelled", "rejected",
)
LIVE_STATUSES = (OPEN, TRIGGER_PENDING)


@dataclass(slots=True)
class Order:
    orderid: str
    symbol: str
    exchange: str
    action: str
    quantity: int
    price: float
    trigger_price: float
    pricetype: str
    product: str
    strategy: str
    status: str
    timestamp: float
    filled_quantity: int = 0
    average_price: float = 0.0
    rejection_reason: str = ""
    disclosed_quantity: int = 0
    blocked: float = 0.0
    # Partial fills (partial.py): sizes of the parts still to fill, the wall-clock epoch the next
    # part is due, and the seconds between parts (0.0: the order fills in one go).
    parts_left: list[int] = field(default_factory=list)
    part_due: float = 0.0
    part_interval: float = 0.0

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def signed_quantity(self) -> int:
        return self.quantity if self.action == "BUY" else -self.quantity

    @property
    def pending_quantity(self) -> int:
        return self.quantity - self.filled_quantity if self.is_live else 0

    @property
    def in_parts(self) -> bool:
        """Whether this order was planned to fill in several parts."""
        return self.part_interval > 0


@dataclass(slots=True)
class Trade:
    tradeid: str
    orderid: str
    symbol: str
    exchange: str
    product: str
    action: str
    quantity: int
    price: float
    timestamp: float
    strategy: str


@dataclass(slots=True)
class Position:
    symbol: str
    exchange: str
    product: str
    quantity: int = 0
    average_price: float = 0.0
    realized: float = 0.0

    def apply_fill(self, signed_qty: int, price: float) -> float:
        """Fold a fill into the position; returns the P&L it realizes."""
        q = self.quantity
        realized = 0.0
        if q == 0 or (q > 0) == (signed_qty > 0):
            total = abs(q) + abs(signed_qty)
            self.average_price = (self.average_price * abs(q) + price * abs(signed_qty)) / total
            self.quantity = q + signed_qty
        else:
            closing = min(abs(q), abs(signed_qty))
            direction = 1 if q > 0 else -1
            realized = (price - self.average_price) * closing * direction
            self.quantity = q + signed_qty
            if self.quantity == 0:
                self.average_price = 0.0
            elif (self.quantity > 0) != (q > 0):
                self.average_price = price  # the fill crossed through flat
        self.realized += realized
        return realized


@dataclass(slots=True)
class AccountOptions:
    numbers_as_strings: bool = False
    analyzer: bool = False
    # A partial-fill spec (partial.PartialFills as a dict), False = never, None = the broker default.
    partial_fills: dict[str, Any] | bool | None = None
    # Live rows of an order that fills in parts carry its fill progress (filled and pending
    # quantity, average price), which a live OpenAlgo server's rows do not; False gives exactly
    # the server's rows (a client then learns partial fills from the tradebook).
    fill_progress: bool = True


@dataclass(slots=True)
class Account:
    apikey: str
    name: str
    funds: float
    options: AccountOptions = field(default_factory=AccountOptions)
    orders: dict[str, Order] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)
    positions: dict[tuple[str, str, str], Position] = field(default_factory=dict)
    reset_count: int = 0

    def position(self, symbol: str, exchange: str, product: str) -> Position:
        key = (symbol, exchange, product)
        pos = self.positions.get(key)
        if pos is None:
            pos = self.positions[key] = Position(symbol, exchange, product)
        return pos

    @property
    def realized(self) -> float:
        return sum(p.realized for p in self.positions.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "apikey": self.apikey, "name": self.name, "funds": self.funds,
            "options": asdict(self.options), "reset_count": self.reset_count,
            "orders": [asdict(o) for o in self.orders.values()],
            "trades": [asdict(t) for t in self.trades],
            "positions": [asdict(p) for p in self.positions.values()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Account:
        acct = cls(data["apikey"], data["name"], float(data["funds"]), AccountOptions(**data["options"]),
                   reset_count=int(data.get("reset_count", 0)))
        for o in data["orders"]:
            acct.orders[o["orderid"]] = Order(**o)
        acct.trades = [Trade(**t) for t in data["trades"]]
        for p in data["positions"]:
            pos = Position(**p)
            acct.positions[(pos.symbol, pos.exchange, pos.product)] = pos
        return acct


def position_margin(inst: Instrument, quantity: int, average_price: float, product: str, spot: float) -> float:
    """Margin held by a net position: premium for long options, SPAN-like for shorts and futures."""
    if quantity == 0:
        return 0.0
    size = abs(quantity)
    if inst.is_option:
        return average_price * size if quantity > 0 else SHORT_OPTION_MARGIN_RATE * spot * size
    if inst.expiry is not None:
        return FUTURE_MARGIN_RATE * spot * size
    value = average_price * size
    return value if product == "CNC" else EQUITY_MIS_MARGIN_RATE * value


def after_fill(pos: Position | None, signed_qty: int, price: float) -> tuple[int, float]:
    """The (quantity, average price) a position would have after a hypothetical fill."""
    probe = Position("", "", "", pos.quantity, pos.average_price) if pos else Position("", "", "")
    probe.apply_fill(signed_qty, price)
    return probe.quantity, probe.average_price
