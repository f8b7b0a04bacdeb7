"""Closing what a run account holds: which orders, in which phase, split at the freeze quantity.

Pure arithmetic (no Flask, no database, no broker). The exit manager
(app/services/execution/exits.py) and the kill switch feed it the held quantities that
app/services/execution/held.py derives from fills, and turn its answer into order intents.

Closing shorts (a BUY) is phase 0 and closing longs (a SELL) phase 1, so margin is never left
naked: the hedges stay until the short side is closed (issue 9, invariant 3).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from app.domain.sizing import split_quantity

PHASE_SHORTS = 0  # closing a short position: BUY
PHASE_LONGS = 1  # closing a long position: SELL


@dataclass(frozen=True)
class Holding:
    """What one account holds for one leg (or one position), signed: + long, − short.

    Attributes:
        leg_number: the run leg (None for a position no run holds).
        symbol, exchange, product: the contract and the entry's product.
        quantity: signed units held.
        lot_size: units per lot (1 for cash equities).
        freeze_qty: the most units one order may carry.
    """

    leg_number: int | None
    symbol: str
    exchange: str
    product: str
    quantity: int
    lot_size: int = 1
    freeze_qty: int = 0  # 0: no freeze limit (one order)


@dataclass(frozen=True)
class CloseOrder:
    """One child order that closes (part of) a holding."""

    leg_number: int | None
    child: int  # 1-based within the holding
    symbol: str
    exchange: str
    product: str
    action: str  # BUY closes a short, SELL closes a long
    quantity: int  # > 0
    phase: int


def close_children(quantity: int, lot_size: int, freeze_qty: int) -> tuple[int, ...]:
    """Child quantities for closing `quantity` units (unsigned), each <= the freeze quantity.

    Whole lots are split with app.domain.sizing.split_quantity. A quantity that is not whole
    lots (an equity, or odd fills) or a holding without a freeze limit is split in chunks of the
    freeze quantity (or sent as one order when there is none).

    Raises:
        ValueError: a negative quantity.
    """
    if quantity < 0:
        raise ValueError(f"close quantity must be >= 0, got {quantity}")
    if quantity == 0:
        return ()
    if freeze_qty <= 0 or quantity <= freeze_qty:
        return (quantity,)
    if lot_size > 0 and quantity % lot_size == 0 and freeze_qty >= lot_size:
        return split_quantity(quantity, lot_size, freeze_qty)
    full, rest = divmod(quantity, freeze_qty)
    return (freeze_qty,) * full + ((rest,) if rest else ())


def plan_close_orders(holdings: Iterable[Holding]) -> tuple[CloseOrder, ...]:
    """The child orders that take every holding to zero: shorts first (phase 0), then longs.

    Args:
        holdings: signed held quantities; zero holdings produce nothing.
    Returns:
        Close orders sorted by phase, then by the holdings' order, then child.
    """
    orders: list[CloseOrder] = []
    for holding in holdings:
        if holding.quantity == 0:
            continue
        short = holding.quantity < 0
        action, phase = ("BUY", PHASE_SHORTS) if short else ("SELL", PHASE_LONGS)
        for child, qty in enumerate(close_children(abs(holding.quantity), holding.lot_size,
                                                   holding.freeze_qty), start=1):
            orders.append(CloseOrder(holding.leg_number, child, holding.symbol, holding.exchange,
                                     holding.product, action, qty, phase))
    return tuple(sorted(orders, key=lambda o: o.phase))


def cap_at_broker(held: int, broker_net: int) -> int:
    """What may be closed when the app holds `held` and the broker's position book shows
    `broker_net` for the same symbol, exchange and product: never more than the broker holds,
    never the other way round (an opposite sign or a flat book closes nothing).
    """
    if held == 0 or broker_net == 0 or (held > 0) != (broker_net > 0):
        return 0
    return held if abs(held) <= abs(broker_net) else broker_net
