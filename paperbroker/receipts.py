"""When the broker received each order: wall-clock receive times for latency benchmarks.

A client knows when it sent an order; a budget such as "price tick → exit order at the broker"
needs when the broker had it. The dispatcher notes the wall-clock time (``time.time()``) at which
an ``/api/v1`` request reached it, before its body is read and before any injected latency, and
hands it to the synchronous endpoint run (``arrived``); the engine's order listener then keeps,
for every order the broker records (placed, or rejected in ``order`` mode), that time with the
order's identity. Orders the broker places by itself (the MIS square-off) have no request: their
``received_ms`` is None. Admin API: ``GET /sim/orders/received`` (``?apikey=``, ``?since_ms=``),
``DELETE`` to forget them. In memory only, the last ``MAX_RECEIPTS`` orders.

The times are epoch milliseconds with a fractional part (the broker's wall clock, not the
simulated one), so a client on the same machine can compare them with its own ``time.time()`` and
with the ``timestamp`` of the broker's market-data frames (wall-clock ms unless the simulated
clock was moved or frozen).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from paperbroker.accounts import Account, Order

MAX_RECEIPTS = 50_000


@dataclass(frozen=True, slots=True)
class Receipt:
    orderid: str
    apikey: str
    account: str
    symbol: str
    exchange: str
    action: str
    quantity: int
    received_ms: float | None  # the request's arrival at the dispatcher
    recorded_ms: float  # the order's first event in the engine (placement or rejection)

    def as_dict(self) -> dict[str, Any]:
        return {"orderid": self.orderid, "account": self.account, "symbol": self.symbol,
                "exchange": self.exchange, "action": self.action, "quantity": self.quantity,
                "received_ms": self.received_ms, "recorded_ms": self.recorded_ms}


class OrderReceipts:
    """The receive time of every order recorded, oldest first, bounded to ``limit`` orders."""

    def __init__(self, limit: int = MAX_RECEIPTS) -> None:
        self.limit = limit
        self.arrived: float | None = None  # set by the dispatcher around one synchronous endpoint run
        self._rows: OrderedDict[str, Receipt] = OrderedDict()

    def on_order(self, acct: Account, order: Order) -> None:
        """Engine listener: keep an order's first event (placement); later events are its fills."""
        if order.orderid in self._rows:
            return
        now_ms = time.time() * 1000.0
        arrived = None if self.arrived is None else self.arrived * 1000.0
        self._rows[order.orderid] = Receipt(order.orderid, acct.apikey, acct.name, order.symbol, order.exchange,
                                            order.action, order.quantity, arrived, now_ms)
        while len(self._rows) > self.limit:
            self._rows.popitem(last=False)

    def rows(self, apikey: str | None = None, since_ms: float | None = None) -> list[Receipt]:
        """The receipts of one account (or all), received (or recorded) at or after ``since_ms``."""
        out = []
        for row in self._rows.values():
            if apikey is not None and row.apikey != apikey:
                continue
            when = row.received_ms if row.received_ms is not None else row.recorded_ms
            if since_ms is not None and when < since_ms:
                continue
            out.append(row)
        return out

    def clear(self) -> int:
        count = len(self._rows)
        self._rows.clear()
        return count
