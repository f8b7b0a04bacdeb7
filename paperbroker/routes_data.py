"""Market-data and symbol endpoints: quotes, depth, history, intervals, symbol, search, expiry, instruments."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from aiohttp import web

from paperbroker import history as hist
from paperbroker import nse_calendar as cal
from paperbroker.accounts import Account
from paperbroker.api import Result, endpoint
from paperbroker.core import Broker
from paperbroker.instruments import Instrument
from paperbroker.orders import Reject


def lookup(b: Broker, symbol: str, exchange: str) -> Instrument:
    inst = b.master.get(exchange, symbol)
    if inst is None:
        raise Reject(f"Symbol '{symbol}' not found for exchange '{exchange}'. "
                     "Please verify the symbol name and ensure master contracts are downloaded.")
    return inst


@endpoint("quotes", "A")
def quotes(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    inst = lookup(b, data["symbol"], data["exchange"])
    return {"status": "success", "data": b.market.quote(inst)}


@endpoint("multiquotes", "A")
def multiquotes(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    results: list[dict[str, Any]] = []
    invalid: list[str] = []
    for item in data["symbols"]:
        inst = b.master.get(item["exchange"], item["symbol"])
        if inst is None:
            invalid.append(f"{item['exchange']}:{item['symbol']}")
            results.append({"symbol": item["symbol"], "exchange": item["exchange"],
                            "error": f"Symbol '{item['symbol']}' not found for exchange '{item['exchange']}'"})
        else:
            results.append({"symbol": inst.symbol, "exchange": inst.exchange, "data": b.market.quote(inst)})
    if len(invalid) == len(results):
        return 400, {"status": "error", "message": "All symbols are invalid", "invalid_symbols": invalid}
    return {"status": "success", "results": results}


@endpoint("depth", "A")
def depth(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    inst = lookup(b, data["symbol"], data["exchange"])
    q = b.market.quote(inst)
    bids, asks = b.market.depth_levels(inst)
    return {"status": "success", "data": {
        "open": q["open"], "high": q["high"], "low": q["low"], "ltp": q["ltp"],
        "ltq": inst.lot_size, "prev_close": q["prev_close"], "volume": q["volume"], "oi": q["oi"],
        "totalbuyqty": sum(int(x["quantity"]) for x in bids), "totalsellqty": sum(int(x["quantity"]) for x in asks),
        "asks": [{"price": x["price"], "quantity": x["quantity"]} for x in asks],
        "bids": [{"price": x["price"], "quantity": x["quantity"]} for x in bids],
    }}


def _parse_date(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise Reject(f"Invalid {field} '{text}'. Use YYYY-MM-DD") from exc


@endpoint("history", "A")
def history(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    inst = lookup(b, data["symbol"], data["exchange"])
    interval = data["interval"]
    if not hist.is_supported(interval):
        supported = [i for group in hist.SUPPORTED.values() for i in group]
        raise Reject(f"Interval '{interval}' is not supported by this broker. Supported: {', '.join(supported)}")
    start, end = _parse_date(data["start_date"], "start_date"), _parse_date(data["end_date"], "end_date")
    if end < start:
        raise Reject("end_date must not be before start_date")
    return {"status": "success", "data": hist.history(b.market, inst, interval, start, end)}


@endpoint("intervals", "A")
def intervals(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    return {"status": "success", "data": {k: list(v) for k, v in hist.SUPPORTED.items()}}


@endpoint("symbol", "A")
def symbol(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    inst = b.master.get(data["exchange"], data["symbol"])
    if inst is None:
        return 404, {"status": "error", "message": f"Symbol {data['symbol']} not found in exchange {data['exchange']}"}
    row = inst.master_row()
    return {"status": "success", "data": {"id": int(inst.token) - 100000, **row}}


@endpoint("search", "A")
def search(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    found = b.master.search(data["query"], data.get("exchange"))
    return {"status": "success", "message": f"Found {len(found)} matching symbols",
            "data": [i.master_row() for i in found]}


@endpoint("expiry", "A")
def expiry(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    kind = data["instrumenttype"]
    dates = b.master.expiries(data["symbol"], data["exchange"], kind)
    return {"status": "success",
            "message": f"Found {len(dates)} expiry dates for {data['symbol']} {kind} in {data['exchange']}",
            "data": [cal.fmt_expiry(d) for d in dates]}


@endpoint("instruments", "A", method="GET", auth_status=401)
def instruments(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    exchange = data.get("exchange")
    rows = [i.master_row() for i in b.master.listed(exchange)]
    for r in rows:
        r.pop("freeze_qty", None)
    if data.get("format") == "csv":
        buf = io.StringIO()
        cols = ["symbol", "brsymbol", "name", "exchange", "brexchange", "token", "expiry", "strike", "lotsize",
                "instrumenttype", "tick_size"]
        writer = csv.DictWriter(buf, fieldnames=cols)
        writer.writeheader()
        writer.writerows(rows)
        resp = web.Response(text=buf.getvalue(), content_type="text/csv")
        resp.headers["Content-Disposition"] = f"attachment; filename=instruments_{exchange or 'all'}.csv"
        return resp
    return {"status": "success", "message": f"Found {len(rows)} instruments", "data": rows}
