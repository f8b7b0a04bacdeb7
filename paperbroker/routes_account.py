"""Account endpoints: ping, funds, books, holdings, margin and the analyzer switch."""

from __future__ import annotations

from typing import Any

from paperbroker import views
from paperbroker.accounts import Account, position_margin
from paperbroker.api import Result, endpoint
from paperbroker.core import Broker
from paperbroker.orders import Reject


@endpoint("ping", "A")
def ping(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    return {"status": "success", "data": {"message": "pong", "broker": "paper"}}


@endpoint("funds", "A", analyze_key=True)
def funds(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    return {"status": "success", "data": views.funds(b, acct)}


@endpoint("orderbook", "A", analyze_key=True)
def orderbook(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    return views.orderbook(acct)


@endpoint("tradebook", "A", analyze_key=True)
def tradebook(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    return {"status": "success", "data": [views.trade_row(acct, t) for t in reversed(acct.trades)]}


@endpoint("positionbook", "A", analyze_key=True)
def positionbook(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    rows = [views.position_row(b, acct, p) for p in acct.positions.values()]
    body: dict[str, Any] = {"status": "success", "data": rows}
    if acct.options.analyzer:
        unreal = sum(b.engine.unrealized(p) for p in acct.positions.values())
        realized = acct.realized
        body.update({"total_pnl": views.money(realized + unreal), "total_pnl_today": views.money(realized + unreal),
                     "total_today_realized_pnl": views.money(realized),
                     "total_unrealized_pnl": views.money(unreal)})
    return body


@endpoint("holdings", "A", analyze_key=True)
def holdings(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    rows: list[dict[str, Any]] = []
    value = invested = 0.0
    for p in acct.positions.values():
        if p.product != "CNC" or p.quantity <= 0:
            continue
        inst = b.master.get(p.exchange, p.symbol)
        ltp = b.market.ltp(inst) if inst else p.average_price
        cost = p.average_price * p.quantity
        pnl = (ltp - p.average_price) * p.quantity
        value += ltp * p.quantity
        invested += cost
        row: dict[str, Any] = {"symbol": p.symbol, "exchange": p.exchange, "product": "CNC",
                               "quantity": p.quantity, "average_price": views.money(p.average_price),
                               "pnl": views.money(pnl), "pnlpercent": views.money(pnl / cost * 100 if cost else 0)}
        if acct.options.analyzer:
            row.update({"ltp": views.money(ltp), "current_value": views.money(ltp * p.quantity),
                        "settlement_date": ""})
        rows.append(views.stringify(acct, row, ("quantity", "average_price", "pnl", "pnlpercent")))
    pnl_total = value - invested
    stats = {"totalholdingvalue": views.money(value), "totalinvvalue": views.money(invested),
             "totalprofitandloss": views.money(pnl_total),
             "totalpnlpercentage": views.money(pnl_total / invested * 100 if invested else 0)}
    return {"status": "success", "data": {"holdings": rows, "statistics": stats}}


@endpoint("margin", "B")
def margin(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    total = span = 0.0
    for leg in data["positions"]:
        inst = b.engine.instrument(leg["exchange"], leg["symbol"])
        try:
            qty = int(float(leg["quantity"]))
            price = float(leg.get("price") or 0)
        except ValueError as exc:
            raise Reject(f"Invalid quantity or price for {leg['symbol']}") from exc
        if price <= 0:
            bid, ask = b.market.touch(inst)
            price = (ask if leg["action"] == "BUY" else bid) or b.market.ltp(inst)
        signed = qty if leg["action"] == "BUY" else -qty
        need = position_margin(inst, signed, price, leg["product"], b.market.spot[inst.name])
        total += need
        if inst.expiry is not None and not (inst.is_option and signed > 0):
            span += need * 0.75
    return {"status": "success", "data": {"total_margin_required": views.money(total),
                                          "span_margin": views.money(span),
                                          "exposure_margin": views.money(total - span)}}


def _analyzer_state(acct: Account) -> dict[str, Any]:
    on = acct.options.analyzer
    return {"analyze_mode": on, "mode": "analyze" if on else "live", "total_logs": 0}


@endpoint("analyzer", "B")
def analyzer(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    return {"status": "success", "data": _analyzer_state(acct)}


@endpoint("analyzer/toggle", "B")
def analyzer_toggle(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    acct.options.analyzer = bool(data["mode"])
    b.engine.dirty.add(acct.apikey)
    state = _analyzer_state(acct)
    state["message"] = f"Analyzer mode switched to {state['mode']}"
    return {"status": "success", "data": state}
