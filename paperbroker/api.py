"""The /api/v1 dispatcher: route table, rate limits, faults, validation, auth, error bodies.

Per request: the body (or query) is read, the rate limit is counted (per address, or per ``apikey``
with ``rate_limit_by="apikey"``, see ratelimit.py), faults are drawn (faults.py), then the endpoint
is validated, authenticated and run; a drawn rejection fault is handed to the engine for that run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from paperbroker import faults as F
from paperbroker.accounts import Account
from paperbroker.core import Broker
from paperbroker.orders import Reject
from paperbroker.schemas import SCHEMAS, Schema, error_body, validate

log = logging.getLogger(__name__)
BROKER_KEY: web.AppKey[Broker] = web.AppKey("broker", Broker)
Result = dict[str, Any] | tuple[int, dict[str, Any]] | web.StreamResponse
Handler = Callable[[Broker, Account, dict[str, Any]], Result]
INVALID_KEY = {"status": "error", "message": "Invalid openalgo apikey"}
BAD_JSON = {"message": "The browser (or proxy) sent a request that this server could not understand."}
UNEXPECTED = {"status": "error", "message": "An unexpected error occurred"}


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    handler: Handler
    schema: Schema
    style: str  # validation error style A/B/C/D
    limit: str  # rate-limit group
    method: str
    auth_status: int
    analyze_key: bool  # add "mode":"analyze" for analyzer-mode accounts


REGISTRY: dict[str, Endpoint] = {}


def endpoint(name: str, style: str, limit: str = "api", method: str = "POST", auth_status: int = 403,
             analyze_key: bool = False) -> Callable[[Handler], Handler]:
    """Register ``fn`` as /api/v1/<name>."""

    def deco(fn: Handler) -> Handler:
        REGISTRY[name] = Endpoint(name, fn, SCHEMAS[name], style, limit, method, auth_status, analyze_key)
        return fn

    return deco


def dumps(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"))


def respond(body: Any, status: int = 200) -> web.Response:
    return web.Response(text=dumps(body), status=status, content_type="application/json")


def not_found(path: str) -> web.Response:
    return respond({"status": "error", "message": "Not found", "path": path}, 404)


def cut(request: web.Request) -> web.Response:
    """Abort the TCP connection so the client sees it dropped without a response.

    aiohttp then fails to write the returned placeholder and treats it as a client disconnect.
    """
    transport = request.transport
    if transport is not None:
        transport.abort()
    return web.Response(status=500)


async def dispatch(request: web.Request) -> web.StreamResponse:
    received = time.time()  # wall clock, before the body and any injected latency (receipts.py)
    name = request.match_info["tail"].strip("/")
    ep = REGISTRY.get(name)
    if ep is None or request.method != ep.method:
        return not_found(request.path)
    broker = request.app[BROKER_KEY]
    # The body is read before the rate limit is counted (the key may be in it), but a rate-limited
    # request is answered 429 even when its body is bad, as when the limit is counted by address.
    data: Any = None
    early: web.Response | None = None
    if ep.method == "GET":
        data = dict(request.query)
    elif request.content_type != "application/json":
        early = respond(UNEXPECTED, 500)
    else:
        try:
            data = json.loads(await request.read())
        except ValueError:
            early = respond(BAD_JSON, 400)
    apikey = data.get("apikey") if isinstance(data, dict) else None
    label = broker.limiter.hit(broker.limiter.client_key(request.remote or "", apikey), ep.name, ep.limit)
    if label is not None:
        return respond({"message": label}, 429)
    if early is not None:
        return early
    decision = broker.faults.decide(ep.name, apikey if isinstance(apikey, str) else None)
    if decision.delay:
        await asyncio.sleep(decision.delay)
    if decision.before is not None:
        if decision.before == F.DROP:
            return cut(request)
        if decision.before == F.EXPIRED:
            return respond(INVALID_KEY, ep.auth_status)
        if decision.before == F.STORM:
            return respond({"message": broker.limiter.limits[ep.limit].label}, 429)
        return respond({"status": "error", "message": "Broker error: simulated internal server error"}, 500)
    response = handle(broker, ep, data, decision.reject, received)
    if decision.after_delay:
        await asyncio.sleep(decision.after_delay)
    if decision.after == F.LOST:
        return cut(request)
    return response


def handle(broker: Broker, ep: Endpoint, data: Any, reject: F.RejectFault | None = None,
           received: float | None = None) -> web.StreamResponse:
    """Validate, authenticate and run one endpoint (synchronously: the engine is single-threaded).

    ``reject`` (a drawn rejection fault) applies to every order the handler places; ``received``
    (the request's wall-clock arrival) is the receive time of every order it records.
    """
    clean, errors = validate(ep.schema, data, broker.reject_unknown)
    if errors:
        return respond(error_body(ep.style, errors), 400)
    acct = broker.accounts.get(clean["apikey"])
    if acct is None:
        return respond(INVALID_KEY, ep.auth_status)
    broker.engine.fault_reject = reject
    broker.receipts.arrived = received
    try:
        result = ep.handler(broker, acct, clean)
    except Reject as exc:
        body: dict[str, Any] = {"status": "error", "message": exc.message}
        if ep.analyze_key and acct.options.analyzer:
            body["mode"] = "analyze"
        return respond(body, exc.status)
    except Exception:
        log.exception("unexpected error in %s", ep.name)
        return respond(UNEXPECTED, 500)
    finally:
        broker.engine.fault_reject = None
        broker.receipts.arrived = None
    if isinstance(result, web.StreamResponse):
        return result
    status, body = result if isinstance(result, tuple) else (200, result)
    if ep.analyze_key and acct.options.analyzer and body.get("status") == "success":
        body["mode"] = "analyze"
    return respond(body, status)


async def health(request: web.Request) -> web.Response:
    return respond({"status": "pass", "serviceId": "openalgo", "version": "1.0",
                    "description": "OpenAlgo Trading Platform"})


async def fallback(request: web.Request) -> web.Response:
    return not_found(request.path)
