"""Order endpoints: place, smart, basket, split, modify, cancel, close, status, open position."""

from __future__ import annotations

import math
from typing import Any

from paperbroker import views
from paperbroker.accounts import COMPLETE, Account
from paperbroker.api import Result, endpoint
from paperbroker.core import Broker
from paperbroker.orders import Reject, split_quantities

MAX_SPLIT_CHILDREN = 100


@endpoint("placeorder", "B", limit="order", analyze_key=True)
def placeorder(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    order = b.engine.place(acct, data)
    return {"status": "success", "orderid": order.orderid}


@endpoint("placesmartorder", "B", limit="smart", analyze_key=True)
def placesmartorder(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    order = b.engine.smart(acct, data)
    if order is None:
        return {"status": "success", "message": "Positions Already Matched. No Action needed."}
    return {"status": "success", "orderid": order.orderid}


@endpoint("basketorder", "B", analyze_key=True)
def basketorder(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    items = data["orders"]
    ordered = [o for o in items if o["action"] == "BUY"] + [o for o in items if o["action"] == "SELL"]
    results: list[dict[str, Any]] = []
    for i, item in enumerate(ordered):
        req = {**item, "strategy": data["strategy"]}
        try:
            order = b.engine.place(acct, req)
            row: dict[str, Any] = {"symbol": item["symbol"], "exchange": item["exchange"],
                                   "product": item.get("product", "MIS"), "status": "success",
                                   "orderid": order.orderid}
        except Reject as exc:
            row = {"symbol": item["symbol"], "exchange": item["exchange"], "status": "error",
                   "message": exc.message}
        if acct.options.analyzer:
            row.update({"batch_order": True, "is_last_order": i == len(ordered) - 1})
        results.append(row)
    return {"status": "success", "results": results}


def run_split(b: Broker, acct: Account, req: dict[str, Any], total: int, size: int) -> dict[str, Any]:
    """Place ``total`` as children of ``size`` (remainder last); per-child results, always 200."""
    if math.ceil(total / size) > MAX_SPLIT_CHILDREN:
        raise Reject(f"Split would create {math.ceil(total / size)} orders; the maximum is {MAX_SPLIT_CHILDREN}")
    results: list[dict[str, Any]] = []
    for n, qty in enumerate(split_quantities(total, size), start=1):
        try:
            order = b.engine.place(acct, {**req, "quantity": qty})
            results.append({"order_num": n, "quantity": qty, "status": "success", "orderid": order.orderid})
        except Reject as exc:
            results.append({"order_num": n, "quantity": qty, "status": "error", "message": exc.message})
    return {"status": "success", "total_quantity": total, "split_size": size, "results": results}


@endpoint("splitorder", "B", analyze_key=True)
def splitorder(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    qty = data["quantity"]
    if qty != int(qty):
        raise Reject(f"Fractional quantity ({qty}) is not allowed for non-crypto exchanges.")
    return run_split(b, acct, data, int(qty), data["splitsize"])


@endpoint("modifyorder", "B", limit="order", analyze_key=True)
def modifyorder(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    order = b.engine.get_order(acct, data["orderid"])
    if (order.symbol, order.exchange, order.action, order.product) != (
        data["symbol"], data["exchange"], data["action"], data["product"]
    ):
        raise Reject("symbol, exchange, action and product must match the original order")
    b.engine.modify(acct, data["orderid"], data)
    return {"status": "success", "orderid": order.orderid}


@endpoint("cancelorder", "B", limit="order", analyze_key=True)
def cancelorder(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    order = b.engine.cancel(acct, data["orderid"])
    return {"status": "success", "orderid": order.orderid}


@endpoint("cancelallorder", "B", analyze_key=True)
def cancelallorder(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    done, failed = b.engine.cancel_all(acct)
    return {"status": "success", "message": f"Canceled {len(done)} orders. Failed to cancel {len(failed)} orders.",
            "canceled_orders": done, "failed_cancellations": failed}


@endpoint("closeposition", "B", analyze_key=True)
def closeposition(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    b.engine.close_positions(acct, data["strategy"])
    return {"status": "success", "message": "All Open Positions Squared Off"}


@endpoint("orderstatus", "B", analyze_key=True)
def orderstatus(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    order = b.engine.get_order(acct, data["orderid"])
    row = views.order_row(acct, order)
    # OpenAlgo reports the average of complete orders; a part-filled order reports its fills so far.
    filled = order.status == COMPLETE or (order.in_parts and order.filled_quantity > 0
                                          and (acct.options.analyzer or acct.options.fill_progress))
    row["average_price"] = views.money(order.average_price) if filled else 0.0
    if acct.options.analyzer:
        row.update({"filled_quantity": order.filled_quantity, "strategy": order.strategy})
    return {"status": "success", "data": views.stringify(acct, row, ("average_price",))}


@endpoint("openposition", "B", analyze_key=True)
def openposition(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    pos = acct.positions.get((data["symbol"], data["exchange"], data["product"]))
    if pos is None:
        return {"status": "success", "quantity": 0}
    qty: int | str = str(pos.quantity) if acct.options.numbers_as_strings else pos.quantity
    return {"status": "success", "quantity": qty}
