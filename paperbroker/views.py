"""Response shapes: OpenAlgo's live shapes, with optional stringly-typed and sandbox variants.

Live order rows (orderbook, orderstatus) add ``filled_quantity``, ``pending_quantity`` and
``average_price`` (volume-weighted) for an order that fills in parts, and ``rejection_reason`` for a
rejected order; other orders keep exactly OpenAlgo's live keys.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from paperbroker.accounts import COMPLETE, OPEN, REJECTED, TRIGGER_PENDING, Account, Order, Position, Trade
from paperbroker.core import Broker
from paperbroker.nse_calendar import IST


def money(x: float) -> float:
    return round(float(x), 2)


def stringify(acct: Account, row: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """With the account's numbers-as-strings option, write ``keys`` as strings like some brokers do."""
    if acct.options.numbers_as_strings:
        for k in keys:
            v = row.get(k)
            if isinstance(v, float):
                row[k] = f"{v:.2f}"
            elif isinstance(v, int) and not isinstance(v, bool):
                row[k] = str(v)
    return row


def timestamp(acct: Account, epoch: float) -> str:
    dt = datetime.fromtimestamp(epoch, IST)
    return dt.strftime("%Y-%m-%d %H:%M:%S") if acct.options.analyzer else dt.strftime("%d-%b-%Y %H:%M:%S")


def order_row(acct: Account, o: Order) -> dict[str, Any]:
    row: dict[str, Any] = {
        "orderid": o.orderid, "symbol": o.symbol, "exchange": o.exchange, "action": o.action,
        "quantity": o.quantity, "price": 0.0 if o.pricetype == "MARKET" else money(o.price),
        "trigger_price": money(o.trigger_price), "pricetype": o.pricetype, "product": o.product,
        "order_status": o.status, "timestamp": timestamp(acct, o.timestamp),
    }
    if acct.options.analyzer:
        row.update({"average_price": money(o.average_price), "filled_quantity": o.filled_quantity,
                    "pending_quantity": o.pending_quantity,
                    "rejection_reason": o.rejection_reason, "strategy": o.strategy})
    else:
        # Live rows keep OpenAlgo's keys, plus the fill progress of an order that fills in parts
        # and the reason of a rejected one, which a client cannot learn otherwise.
        if o.in_parts and acct.options.fill_progress:
            row.update({"filled_quantity": o.filled_quantity, "pending_quantity": o.pending_quantity,
                        "average_price": money(o.average_price)})
        if o.status == REJECTED:
            row["rejection_reason"] = o.rejection_reason
    return stringify(acct, row, ("quantity", "price", "trigger_price"))


def orderbook(acct: Account) -> dict[str, Any]:
    orders = list(acct.orders.values())
    stats = {
        "total_buy_orders": sum(o.action == "BUY" for o in orders),
        "total_sell_orders": sum(o.action == "SELL" for o in orders),
        "total_completed_orders": sum(o.status == COMPLETE for o in orders),
        "total_open_orders": sum(o.status == OPEN for o in orders),
        "total_rejected_orders": sum(o.status == REJECTED for o in orders),
    }
    if acct.options.analyzer:
        stats["total_trigger_pending_orders"] = sum(o.status == TRIGGER_PENDING for o in orders)
    return {"status": "success", "data": {"orders": [order_row(acct, o) for o in reversed(orders)],
                                          "statistics": stats}}


def trade_row(acct: Account, t: Trade) -> dict[str, Any]:
    row: dict[str, Any] = {
        "symbol": t.symbol, "exchange": t.exchange, "product": t.product, "action": t.action,
        "quantity": t.quantity, "average_price": money(t.price), "trade_value": money(t.price * t.quantity),
        "orderid": t.orderid, "timestamp": timestamp(acct, t.timestamp),
    }
    if acct.options.analyzer:
        row.update({"tradeid": t.tradeid, "price": money(t.price), "strategy": t.strategy})
    return stringify(acct, row, ("quantity", "average_price", "trade_value"))


def position_row(b: Broker, acct: Account, p: Position) -> dict[str, Any]:
    inst = b.master.get(p.exchange, p.symbol)
    ltp = b.market.ltp(inst) if inst else 0.0
    unreal = (ltp - p.average_price) * p.quantity if p.quantity else 0.0
    row: dict[str, Any] = {
        "symbol": p.symbol, "exchange": p.exchange, "product": p.product, "quantity": p.quantity,
        "average_price": money(p.average_price), "ltp": money(ltp), "pnl": money(p.realized + unreal),
    }
    if acct.options.analyzer:
        cost = abs(p.average_price * p.quantity)
        row.update({"pnlpercent": money(unreal / cost * 100) if cost else 0.0, "unrealized_pnl": money(unreal),
                    "today_realized_pnl": money(p.realized), "total_pnl_today": money(p.realized + unreal),
                    "lot_size": inst.lot_size if inst else 1})
    return stringify(acct, row, ("quantity", "average_price", "ltp", "pnl"))


def funds(b: Broker, acct: Account) -> dict[str, Any]:
    used = b.engine.margin_used(acct)
    realized = acct.realized
    unreal = sum(b.engine.unrealized(p) for p in acct.positions.values())
    data: dict[str, Any] = {
        "availablecash": money(acct.funds + realized - used), "collateral": 0.0,
        "m2mrealized": money(realized), "m2munrealized": money(unreal), "utiliseddebits": money(used),
    }
    if acct.options.analyzer:
        data.update({"grossexposure": money(used), "totalpnl": money(realized + unreal),
                     "total_realized_pnl": money(realized), "today_realized_pnl": money(realized),
                     "last_reset": datetime.fromtimestamp(b.clock.epoch(), IST).strftime("%Y-%m-%d %H:%M:%S"),
                     "reset_count": acct.reset_count})
    return stringify(acct, data, tuple(data)[:5])
