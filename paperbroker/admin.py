"""The /sim/ admin API: loopback clients with the admin token only.

Rate limits: ``POST /sim/ratelimits`` (alias ``/sim/rate-limits``) with any of ``{"enabled": bool,
"by": "ip"|"apikey", "order"|"smart"|"api"|"greeks": int}``; ``GET`` returns the current settings.
Partial fills: ``POST /sim/accounts/{key}/options`` with ``{"partial_fills": spec|false|null}`` (own
spec, never, or the broker default) and ``GET/POST/DELETE /sim/partial-fills`` for the broker default
(POST body: the spec itself). The same options route takes ``{"fill_progress": false}``: order rows
exactly as a live OpenAlgo server gives them, with no filled quantity (the tradebook has the fills).
Faults: ``/sim/faults`` (see faults.py for the rejection fields).
Order receive times: ``GET /sim/orders/received`` (``?apikey=``, ``?since_ms=``), ``DELETE`` clears
(receipts.py).
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from paperbroker.api import BROKER_KEY, respond
from paperbroker.core import Broker
from paperbroker.market import UnknownSymbol
from paperbroker.partial import PartialFills, parse_option

AdminHandler = Callable[[Broker, web.Request, dict[str, Any]], Awaitable[dict[str, Any]]]


class AdminError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def guarded(fn: AdminHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Wrap an admin handler with the loopback + token checks and JSON error handling."""

    async def wrapper(request: web.Request) -> web.Response:
        broker = request.app[BROKER_KEY]
        if not _loopback(request.remote):
            return respond({"status": "error", "message": "admin API accepts loopback clients only"}, 403)
        auth = request.headers.get("X-Admin-Token") or request.headers.get("Authorization", "").removeprefix(
            "Bearer ")
        if not secrets.compare_digest(auth.encode(), broker.admin_token.encode()):
            return respond({"status": "error", "message": "admin token required (X-Admin-Token header)"}, 403)
        body: dict[str, Any] = {}
        if request.can_read_body:
            try:
                body = json.loads(await request.read() or b"{}")
            except ValueError:
                return respond({"status": "error", "message": "body must be JSON"}, 400)
            if not isinstance(body, dict):
                return respond({"status": "error", "message": "body must be a JSON object"}, 400)
        try:
            result = await fn(broker, request, body)
        except AdminError as exc:
            return respond({"status": "error", "message": exc.message}, exc.status)
        except (ValueError, TypeError, KeyError) as exc:
            return respond({"status": "error", "message": f"bad request: {exc}"}, 400)
        return respond({"status": "success", **result})

    return wrapper


def _account_row(b: Broker, key: str) -> dict[str, Any]:
    a = b.accounts[key]
    return {"apikey": a.apikey, "name": a.name, "funds": a.funds,
            "numbers_as_strings": a.options.numbers_as_strings, "analyzer": a.options.analyzer,
            "partial_fills": a.options.partial_fills, "fill_progress": a.options.fill_progress}


def _acct_key(b: Broker, request: web.Request) -> str:
    key = request.match_info["apikey"]
    if key not in b.accounts:
        raise AdminError("account not found", 404)
    return key


async def status(b: Broker, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    return {"accounts": len(b.accounts), "clock": b.clock.now().isoformat(), "frozen": b.clock.frozen,
            "deterministic": b.cfg.deterministic, "market_hours": b.cfg.market_hours,
            "rate_limits": {"enabled": b.limiter.enabled, "by": b.limiter.by,
                            **{k: v.label for k, v in b.limiter.limits.items()}},
            "partial_fills": _default_partial(b),
            "faults": b.faults.snapshot(), "spot": b.market.spot}


async def list_accounts(b: Broker, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    return {"accounts": [_account_row(b, k) for k in b.accounts]}


async def create_account(b: Broker, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {k: bool(body[k]) for k in ("numbers_as_strings", "analyzer", "fill_progress")
                               if k in body}
    if "partial_fills" in body:
        options["partial_fills"] = _partial_option(body["partial_fills"])
    acct = b.create_account(body.get("name"), body.get("apikey"), body.get("funds"), options)
    return _account_row(b, acct.apikey)


async def delete_account(b: Broker, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    b.delete_account(_acct_key(b, request))
    return {}


async def set_funds(b: Broker, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    key = _acct_key(b, request)
    funds = float(body["funds"])
    if funds < 0:
        raise AdminError("funds must be >= 0")
    b.accounts[key].funds = funds
    b.engine.dirty.add(key)
    return _account_row(b, key)


async def set_options(b: Broker, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    key = _acct_key(b, request)
    opts = b.accounts[key].options
    if "numbers_as_strings" in body:
        opts.numbers_as_strings = bool(body["numbers_as_strings"])
    if "analyzer" in body:
        opts.analyzer = bool(body["analyzer"])
    if "partial_fills" in body:
        opts.partial_fills = _partial_option(body["partial_fills"])
    if "fill_progress" in body:
        opts.fill_progress = bool(body["fill_progress"])
    b.engine.dirty.add(key)
    return _account_row(b, key)


def _partial_option(value: Any) -> dict[str, Any] | bool | None:
    try:
        return parse_option(value)
    except ValueError as exc:
        raise AdminError(f"partial_fills: {exc}") from exc


def _default_partial(b: Broker) -> dict[str, Any] | None:
    spec = b.engine.default_partial
    return None if spec is None else spec.to_dict()


async def partial_fills(b: Broker, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    """The broker-wide default partial-fill spec: POST sets it (body = spec), DELETE clears it."""
    if request.method == "POST":
        try:
            b.engine.default_partial = PartialFills.from_dict(body)
        except ValueError as exc:
            raise AdminError(f"partial_fills: {exc}") from exc
    elif request.method == "DELETE":
        b.engine.default_partial = None
    return {"partial_fills": _default_partial(b)}


async def set_prices(b: Broker, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    prices = body.get("prices") or {body["symbol"]: body["price"]}
    try:
        for name, price in prices.items():
            b.market.set_price(str(name).upper(), float(price))
    except UnknownSymbol as exc:
        raise AdminError(f"unknown spot symbol {exc}; use an index or equity name") from exc
    return {"spot": {n: b.market.spot[n] for n in prices}}


async def move_price(b: Broker, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    name = str(body["symbol"]).upper()
    try:
        price = b.market.move(name, pct=float(body.get("pct", 0)), points=float(body.get("points", 0)))
    except UnknownSymbol as exc:
        raise AdminError(f"unknown spot symbol {exc}") from exc
    return {"spot": {name: price}}


async def tick(b: Broker, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    n = int(body.get("n", 1))
    if not 1 <= n <= 100_000:
        raise AdminError("n must be between 1 and 100000")
    b.market.step(n)
    return {"spot": b.market.spot}


async def clock(b: Broker, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    if request.method == "POST":
        if "time" in body:
            when = datetime.fromisoformat(body["time"])
            if when.tzinfo is None:
                raise AdminError("time needs a UTC offset, e.g. 2026-01-05T15:16:00+05:30")
            b.clock.set(when, body.get("frozen"))
        elif "advance_seconds" in body:
            b.clock.advance(float(body["advance_seconds"]))
        elif "frozen" in body:
            b.clock.set(b.clock.now(), bool(body["frozen"]))
        b.market.notify(list(b.market.spot))
    return {"time": b.clock.now().isoformat(), "ist": b.clock.now_ist().isoformat(), "frozen": b.clock.frozen}


async def faults(b: Broker, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    key = body.pop("apikey", None) or request.query.get("apikey")
    if request.method == "POST":
        if "global" in body or "accounts" in body:
            b.faults.configure(body)
        else:
            b.faults.set(body, key)
    elif request.method == "DELETE":
        b.faults.clear(key)
    return {"faults": b.faults.snapshot()}


async def rate_limits(b: Broker, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    if request.method == "POST":
        enabled = body.pop("enabled", None)
        by = body.pop("by", None)
        if by is not None and by not in ("ip", "apikey"):
            raise AdminError("by must be 'ip' or 'apikey'")
        b.limiter.configure(None if enabled is None else bool(enabled), by,
                            **{k: int(v) for k, v in body.items()})
    return {"enabled": b.limiter.enabled, "by": b.limiter.by,
            "limits": {k: v.label for k, v in b.limiter.limits.items()}}


async def ws_disconnect(b: Broker, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    hook = b.ws_disconnect
    closed = await hook(body.get("apikey")) if hook is not None else 0
    return {"closed": closed}


async def reset(b: Broker, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    b.reset(keep_accounts=bool(body.get("keep_accounts", True)))
    return {"accounts": len(b.accounts)}


async def orders_received(b: Broker, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    """The wall-clock receive time of each recorded order (receipts.py); DELETE forgets them."""
    if request.method == "DELETE":
        return {"cleared": b.receipts.clear()}
    key = request.query.get("apikey")
    if key is not None and key not in b.accounts:
        raise AdminError("account not found", 404)
    since = request.query.get("since_ms")
    rows = b.receipts.rows(key, float(since) if since is not None else None)
    return {"orders": [r.as_dict() for r in rows]}


async def square_off(b: Broker, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    return {"orders": b.engine.check_square_off()}


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/sim/status", guarded(status))
    r.add_get("/sim/accounts", guarded(list_accounts))
    r.add_post("/sim/accounts", guarded(create_account))
    r.add_delete("/sim/accounts/{apikey}", guarded(delete_account))
    r.add_post("/sim/accounts/{apikey}/funds", guarded(set_funds))
    r.add_post("/sim/accounts/{apikey}/options", guarded(set_options))
    r.add_post("/sim/prices", guarded(set_prices))
    r.add_post("/sim/prices/move", guarded(move_price))
    r.add_post("/sim/tick", guarded(tick))
    r.add_route("GET", "/sim/clock", guarded(clock))
    r.add_route("POST", "/sim/clock", guarded(clock))
    for method in ("GET", "POST", "DELETE"):
        r.add_route(method, "/sim/faults", guarded(faults))
    for path in ("/sim/ratelimits", "/sim/rate-limits"):
        r.add_route("GET", path, guarded(rate_limits))
        r.add_route("POST", path, guarded(rate_limits))
    for method in ("GET", "POST", "DELETE"):
        r.add_route(method, "/sim/partial-fills", guarded(partial_fills))
    r.add_post("/sim/ws/disconnect", guarded(ws_disconnect))
    r.add_post("/sim/reset", guarded(reset))
    r.add_post("/sim/squareoff", guarded(square_off))
    r.add_get("/sim/orders/received", guarded(orders_received))
    r.add_delete("/sim/orders/received", guarded(orders_received))
