"""OpenAlgoClient: the adapter every other part of the app uses to talk to OpenAlgo.

It wraps the SDK (one pooled httpx client per account), turns the SDK's error dicts into
typed exceptions, parses numbers leniently into typed results, paces calls with a per-account
limiter, never sends fields OpenAlgo does not declare, and logs each call without the key.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from app.broker import parsing
from app.broker.errors import (
    BrokerAuthError,
    BrokerError,
    BrokerRequestError,
    BrokerUnavailable,
    NotOpenAlgo,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
)
from app.broker.ratelimit import AccountLimits, PacingConfig, pacing_identity
from app.broker.sdk import new_api

logger = logging.getLogger(__name__)

DEFAULT_STRATEGY = "AlgoMirror"
MAX_MARGIN_POSITIONS = 50  # OpenAlgo's /margin takes 1..50 positions


class MarginNotSupported(BrokerRequestError):
    """The broker behind this OpenAlgo server has no margin API (`/margin` answered 501 or 404).
    Nothing is wrong with the account: fall back to the margin table."""

    user_message = "This broker does not calculate basket margins; the margin table is used instead."


@dataclass(frozen=True)
class MarginPosition:
    """One leg of a basket sent to `/margin`. A price of None sends "0" (MARKET)."""

    symbol: str
    exchange: str
    action: str  # BUY or SELL
    quantity: int
    product: str  # MIS, NRML or CNC
    price_type: str = "MARKET"
    price: Decimal | None = None
    trigger_price: Decimal | None = None

    @classmethod
    def from_mapping(cls, fields: Mapping[str, Any]) -> MarginPosition:
        """From OpenAlgo's own keys. Raises ValueError for a missing key or a quantity that is no whole number."""
        try:
            quantity = Decimal(str(fields["quantity"]))
            if quantity != quantity.to_integral_value():
                raise ValueError(f"fractional margin quantity {fields['quantity']!r}")

            def price(key: str) -> Decimal | None:
                value = fields.get(key)
                return None if value in (None, "", "0", 0) else Decimal(str(value))

            return cls(symbol=str(fields["symbol"]), exchange=str(fields["exchange"]), action=str(fields["action"]),
                       quantity=int(quantity), product=str(fields["product"]),
                       price_type=str(fields.get("pricetype") or "MARKET"), price=price("price"),
                       trigger_price=price("trigger_price"))
        except KeyError as exc:
            raise ValueError(f"a margin position needs {exc.args[0]!r}") from None
        except ArithmeticError as exc:
            raise ValueError(f"a margin position has a bad number: {exc}") from None

    def as_request(self) -> dict[str, str]:
        return {"symbol": self.symbol, "exchange": self.exchange, "action": self.action.upper(),
                "quantity": str(self.quantity), "product": self.product, "pricetype": self.price_type,
                "price": "0" if self.price is None else str(self.price),
                "trigger_price": "0" if self.trigger_price is None else str(self.trigger_price)}


@dataclass(frozen=True)
class ClientSettings:
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    orders_per_second: int = 10
    reads_per_second: int = 50
    # Pacing shared across processes in Redis when this is a redis:// URL (ratelimit_redis.py).
    pacing_redis_url: str | None = None
    pacing_key_prefix: str = "algomirror:pacing"
    pacing_max_wait: float | None = 30.0
    http_client: str = "lean"  # under the SDK: "lean" (transport.py) or "httpx" (the SDK's own)

    def pacing(self) -> PacingConfig:
        # A call in flight keeps its Redis slot for up to this lease: longer than a call can take.
        return PacingConfig(self.orders_per_second, self.reads_per_second, max_wait=self.pacing_max_wait,
                            redis_url=self.pacing_redis_url, key_prefix=self.pacing_key_prefix,
                            in_flight_lease=self.connect_timeout + self.read_timeout + 10.0)


def _body_from_message(message: str) -> Any:
    """The SDK flattens non-200 answers into 'HTTP <code>: <raw body>'; recover the body."""
    _, _, raw = message.partition(": ")
    try:
        return json.loads(raw)
    except (ValueError, TypeError):
        return None


def _message_text(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in value.items())
    return str(value)


def raise_for_error(result: Any, *, endpoint: str, is_order: bool) -> dict[str, Any]:
    """Return a successful SDK result, or raise the typed error the caller must react to.

    Order calls treat every "may have been sent" failure (timeout, cut connection, 5xx) as
    OutcomeUnknown; reads treat them as BrokerUnavailable.
    """
    if not isinstance(result, dict):
        raise NotOpenAlgo(f"Unexpected response from {endpoint}", endpoint=endpoint)
    if result.get("status") != "error":
        if result.get("status") != "success":
            raise NotOpenAlgo(f"Unexpected response from {endpoint}: no success status", endpoint=endpoint)
        return result
    error_type = result.get("error_type")
    code = result.get("code")
    message = _message_text(result.get("message", ""))
    if error_type == "connection_error":
        raise BrokerUnavailable("Cannot connect to the OpenAlgo server (connection refused or host unreachable).",
                                endpoint=endpoint)
    if error_type == "timeout_error":
        if is_order:
            raise OutcomeUnknown("The order request timed out; it may have been placed.", endpoint=endpoint)
        raise BrokerUnavailable("The OpenAlgo server did not answer in time.", endpoint=endpoint)
    if error_type == "json_error":
        if is_order:
            raise OutcomeUnknown("The answer to the order request was not readable; the order may have been placed.",
                                 status_code=code, endpoint=endpoint)
        raise NotOpenAlgo("The host answered with something other than OpenAlgo JSON.", status_code=code,
                          endpoint=endpoint)
    if error_type in ("http_error", "unknown_error") and code is None:
        # Transport failure after connecting (connection reset, protocol error).
        if is_order:
            raise OutcomeUnknown("The connection broke before the answer arrived; the order may have been placed.",
                                 endpoint=endpoint)
        raise BrokerUnavailable("The connection to the OpenAlgo server broke.", endpoint=endpoint)
    if error_type == "http_error":
        body = _body_from_message(message)
        if body is None:
            if isinstance(code, int) and code >= 500:
                if is_order:  # e.g. a proxy's 502/504 page: the order may have gone through behind it
                    raise OutcomeUnknown(f"The server failed after receiving the order (HTTP {code}).",
                                         status_code=code, endpoint=endpoint)
                raise BrokerUnavailable(f"The OpenAlgo server failed (HTTP {code}).", status_code=code,
                                        endpoint=endpoint)
            raise NotOpenAlgo(f"The host answered HTTP {code} with a non-OpenAlgo page.", status_code=code,
                              endpoint=endpoint)
        message = _message_text(body.get("message", "")) if isinstance(body, dict) else str(body)
        if isinstance(body, dict) and isinstance(body.get("errors"), dict):
            # Styles C and D (OPENALGO_API.md §1.2): "Validation error" plus the fields in `errors`.
            message = f"{message}: {_message_text(body['errors'])}"
    return _raise_for_status(code, message, endpoint=endpoint, is_order=is_order)


def _raise_for_status(code: Any, message: str, *, endpoint: str, is_order: bool) -> dict[str, Any]:
    if code in (401, 403):
        raise BrokerAuthError(
            "The API key was refused (wrong key, or the broker session in OpenAlgo expired: log in again).",
            status_code=code, endpoint=endpoint)
    if code == 429:
        raise RateLimited(f"Rate limited by the OpenAlgo server ({message or 'too many requests'}).",
                          status_code=code, endpoint=endpoint)
    if isinstance(code, int) and code >= 500:
        if is_order:
            raise OutcomeUnknown(f"The server failed after receiving the order (HTTP {code}): {message}",
                                 status_code=code, endpoint=endpoint)
        raise BrokerUnavailable(f"The OpenAlgo server failed (HTTP {code}): {message}", status_code=code,
                                endpoint=endpoint)
    if is_order:
        raise OrderRejected(message or "The order was rejected.", status_code=code, endpoint=endpoint)
    raise BrokerRequestError(message or "The request was refused.", status_code=code, endpoint=endpoint)


class OpenAlgoClient:
    """One OpenAlgo account. Thread-safe; share one instance per account (see registry)."""

    def __init__(self, host_url: str, api_key: str, *, account_label: str = "-",
                 settings: ClientSettings | None = None, ws_url: str | None = None):
        self.settings = settings or ClientSettings()
        self.host_url = host_url.rstrip("/")
        self.account_label = account_label
        timeout = httpx.Timeout(self.settings.read_timeout, connect=self.settings.connect_timeout)
        self._api = new_api(api_key=api_key, host=self.host_url, timeout=timeout, ws_url=ws_url,
                            lean=self.settings.http_client == "lean")
        self.ws_url = ws_url
        self.identity = pacing_identity(self.host_url, api_key)  # names the account (host and key), not the key
        self._limits = AccountLimits.build(self.settings.pacing(), account=self.identity)

    def close(self) -> None:
        self._api.close()

    def order_feed(self, on_order: Callable[[parsing.Order], None]) -> Any:
        """A WebSocket client (app.broker.feed.FeedClient, not started) that subscribes to this
        account's order updates and hands each to `on_order` on its own thread; None when the account
        has no WebSocket URL."""
        if not self.ws_url:
            return None
        from app.broker.feed import FeedClient

        return FeedClient(self.ws_url, self._api.api_key, lambda _tick: None, name=f"orders-{self.account_label}",
                          on_order=on_order)

    # --- plumbing -----------------------------------------------------------------------------

    def _call(self, endpoint: str, fn: Callable[[], Any], *, is_order: bool = False) -> dict[str, Any]:
        limiter = self._limits.orders if is_order else self._limits.reads
        started = time.perf_counter()
        outcome = "ok"
        try:
            with limiter.slot():
                result = fn()
            return raise_for_error(result, endpoint=endpoint, is_order=is_order)
        except BrokerError as exc:
            outcome = type(exc).__name__
            raise
        finally:
            # Per-call detail is DEBUG: callers log the events (status changes, orders) at INFO.
            logger.debug("broker call account=%s endpoint=%s latency_ms=%.1f outcome=%s",
                         self.account_label, endpoint, (time.perf_counter() - started) * 1000, outcome)

    # --- account ------------------------------------------------------------------------------

    def ping(self) -> str:
        """Check the key and the broker session; returns the broker's name."""
        body = self._call("ping", self._api.ping)
        data = body.get("data")
        if not isinstance(data, dict) or data.get("message") != "pong":
            raise NotOpenAlgo("The host answered /ping without 'pong': not an OpenAlgo server.", endpoint="ping")
        return parsing.to_str(data.get("broker")) or "unknown"

    def funds(self) -> parsing.Funds:
        return parsing.parse_funds(self._call("funds", self._api.funds))

    def positions(self) -> list[parsing.Position]:
        return parsing.parse_positions(self._call("positionbook", self._api.positionbook))

    def orderbook(self) -> list[parsing.Order]:
        return parsing.parse_orderbook(self._call("orderbook", self._api.orderbook))

    def tradebook(self) -> list[parsing.Trade]:
        return parsing.parse_tradebook(self._call("tradebook", self._api.tradebook))

    def holdings(self) -> parsing.Holdings:
        return parsing.parse_holdings(self._call("holdings", self._api.holdings))

    # --- market data --------------------------------------------------------------------------

    def quote(self, symbol: str, exchange: str) -> parsing.Quote:
        body = self._call("quotes", lambda: self._api.quotes(symbol=symbol, exchange=exchange))
        return parsing.parse_quote(body.get("data") or {})

    def multiquotes(self, instruments: list[tuple[str, str]]) -> dict[tuple[str, str], parsing.Quote]:
        """Quotes for many (symbol, exchange) pairs in one request; unknown symbols are left out."""
        symbols = [{"symbol": s, "exchange": e} for s, e in instruments]
        body = self._call("multiquotes", lambda: self._api.multiquotes(symbols=symbols))
        quotes: dict[tuple[str, str], parsing.Quote] = {}
        for item in body.get("results") or []:
            if isinstance(item, dict) and isinstance(item.get("data"), dict):
                quotes[(parsing.to_str(item.get("symbol")), parsing.to_str(item.get("exchange")))] = (
                    parsing.parse_quote(item["data"]))
        return quotes

    def history(self, symbol: str, exchange: str, interval: str, start_date: str, end_date: str
                ) -> list[parsing.HistoryCandle]:
        """Candles of /history (dates YYYY-MM-DD). The SDK's own history() returns a pandas frame; the
        request goes through its plain JSON call instead."""
        payload = {"apikey": self._api.api_key, "symbol": symbol, "exchange": exchange, "interval": interval,
                   "start_date": start_date, "end_date": end_date}
        body = self._call("history", lambda: self._api._make_request("history", payload))
        return parsing.parse_history(body)

    def expiries(self, symbol: str, exchange: str, instrument_type: str = "options") -> list[str]:
        body = self._call("expiry", lambda: self._api.expiry(symbol=symbol, exchange=exchange,
                                                              instrumenttype=instrument_type))
        return [parsing.to_str(d) for d in body.get("data") or []]

    def option_chain(self, underlying: str, exchange: str, expiry_date: str, strike_count: int | None = None,
                     with_greeks: bool = True) -> parsing.OptionChain:
        """The chain around ATM. `expiry_date` may be '30-DEC-25' (as /expiry lists it) or '30DEC25'."""
        kwargs: dict[str, Any] = {"underlying": underlying, "exchange": exchange,
                                  "expiry_date": parsing.expiry_to_request_format(expiry_date),
                                  "with_greeks": with_greeks}
        if strike_count is not None:
            kwargs["strike_count"] = strike_count
        return parsing.parse_option_chain(self._call("optionchain", lambda: self._api.optionchain(**kwargs)))

    def symbol_info(self, symbol: str, exchange: str) -> parsing.SymbolInfo:
        """The contract as the broker's master lists it (lot size, freeze quantity, tick size).

        Raises BrokerRequestError (status 404) for a symbol the master does not know."""
        body = self._call("symbol", lambda: self._api.symbol(symbol=symbol, exchange=exchange))
        return parsing.parse_symbol_info(body.get("data"))

    def option_symbol(self, underlying: str, exchange: str, expiry_date: str, offset: str,
                      option_type: str) -> parsing.OptionSymbol:
        """The broker's own resolution of ATM / ITMn / OTMn for an expiry ('30-DEC-25' or '30DEC25')."""
        body = self._call("optionsymbol", lambda: self._api.optionsymbol(
            underlying=underlying, exchange=exchange, expiry_date=parsing.expiry_to_request_format(expiry_date),
            offset=offset.upper(), option_type=option_type.upper()))
        return parsing.parse_option_symbol(body)

    # --- margin -------------------------------------------------------------------------------

    def basket_margin(self, positions: Sequence[MarginPosition | Mapping[str, Any]]) -> parsing.BasketMargin:
        """The margin the broker asks for a whole basket (hedge benefit included).

        `positions` are MarginPosition values, or mappings with OpenAlgo's own keys (symbol,
        exchange, action, quantity, product, pricetype, price, trigger_price); other keys are
        never sent.

        Raises:
            ValueError: no positions, or more than OpenAlgo's 50.
            MarginNotSupported: the broker has no margin API (501/404): use the table instead.
            BrokerUnavailable, BrokerAuthError, RateLimited, BrokerRequestError: as for any read.
        """
        if not 1 <= len(positions) <= MAX_MARGIN_POSITIONS:
            raise ValueError(f"a margin basket holds 1 to {MAX_MARGIN_POSITIONS} positions, got {len(positions)}")
        request = [(p if isinstance(p, MarginPosition) else MarginPosition.from_mapping(p)).as_request()
                   for p in positions]
        try:
            body = self._call("margin", lambda: self._api.margin(positions=request))
        except (BrokerUnavailable, BrokerRequestError) as exc:
            if exc.status_code in (404, 501):
                raise MarginNotSupported(str(exc), status_code=exc.status_code, endpoint="margin") from exc
            raise
        return parsing.parse_basket_margin(body)

    # --- orders -------------------------------------------------------------------------------

    def place_order(self, *, symbol: str, exchange: str, action: str, quantity: int, product: str,
                    price_type: str = "MARKET", price: str | None = None, trigger_price: str | None = None,
                    strategy: str = DEFAULT_STRATEGY) -> parsing.OrderAck:
        """Place one order. Raises OrderRejected, OutcomeUnknown (reconcile!), BrokerAuthError, RateLimited,
        or BrokerUnavailable (the request never reached the server)."""
        extra: dict[str, str] = {}
        if price is not None:
            extra["price"] = price
        if trigger_price is not None:
            extra["trigger_price"] = trigger_price
        body = self._call("placeorder", lambda: self._api.placeorder(
            strategy=strategy, symbol=symbol, action=action, exchange=exchange, price_type=price_type,
            product=product, quantity=str(quantity), **extra), is_order=True)
        return parsing.parse_order_ack(body)

    def cancel_order(self, order_id: str, strategy: str = DEFAULT_STRATEGY) -> str:
        body = self._call("cancelorder", lambda: self._api.cancelorder(order_id=order_id, strategy=strategy),
                          is_order=True)
        return parsing.to_str(body.get("orderid") or order_id)

    def order_status(self, order_id: str, strategy: str = DEFAULT_STRATEGY) -> parsing.Order:
        body = self._call("orderstatus", lambda: self._api.orderstatus(order_id=order_id, strategy=strategy))
        return parsing.parse_order(body.get("data") or {})


class ClientRegistry:
    """One client (and so one HTTP pool and one limiter) per account, per process."""

    # A replaced client may still be in use by another thread: close it only after this grace.
    RETIRE_AFTER_SECONDS = 120.0

    def __init__(self, settings: ClientSettings | None = None):
        self.settings = settings or ClientSettings()
        self._clients: dict[tuple[Any, str, str], OpenAlgoClient] = {}
        self._retired: list[tuple[float, OpenAlgoClient]] = []
        self._lock = threading.Lock()

    def _retire(self, client: OpenAlgoClient) -> None:
        self._retired.append((time.monotonic(), client))

    def _close_retired(self) -> None:
        cutoff = time.monotonic() - self.RETIRE_AFTER_SECONDS
        keep = []
        for retired_at, client in self._retired:
            if retired_at < cutoff:
                client.close()
            else:
                keep.append((retired_at, client))
        self._retired = keep

    def get(self, key: Any, host_url: str, api_key: str, *, label: str = "-",
            ws_url: str | None = None) -> OpenAlgoClient:
        import hashlib

        fingerprint = hashlib.sha256(api_key.encode()).hexdigest()[:16]
        cache_key = (key, host_url, fingerprint)
        with self._lock:
            self._close_retired()
            client = self._clients.get(cache_key)
            if client is None:
                stale = [k for k in self._clients if k[0] == key]
                for k in stale:
                    self._retire(self._clients.pop(k))
                client = OpenAlgoClient(host_url, api_key, account_label=label, settings=self.settings,
                                        ws_url=ws_url)
                self._clients[cache_key] = client
            return client

    def forget(self, key: Any) -> None:
        """Close and drop the client of an account (deleted, or its key changed)."""
        with self._lock:
            for cache_key in [k for k in self._clients if k[0] == key]:
                self._retire(self._clients.pop(cache_key))

    def close_all(self) -> None:
        with self._lock:
            for client in [*self._clients.values(), *(c for _t, c in self._retired)]:
                client.close()
            self._clients.clear()
            self._retired.clear()
