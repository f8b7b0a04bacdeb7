"""OpenAlgo's WebSocket protocol (OPENALGO_API.md §3): auth, LTP/Quote/Depth feeds, order updates."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from paperbroker.accounts import Account, Order
from paperbroker.api import dumps
from paperbroker.core import Broker
from paperbroker.faults import BAD_TICKS
from paperbroker.instruments import Instrument

log = logging.getLogger(__name__)
MODE_NAMES = {1: "LTP", 2: "Quote", 3: "Depth"}
MODE_BY_NAME = {"LTP": 1, "QUOTE": 2, "DEPTH": 3}
QUEUE_SIZE = 1024
AUTH_TIMEOUT_CODE = 4401


def parse_mode(value: Any, default: int = 2) -> int | None:
    """1/2/3 or LTP/Quote/Depth in any case; None when invalid."""
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool) and value in MODE_NAMES:
        return value
    if isinstance(value, str):
        if value.isdigit() and int(value) in MODE_NAMES:
            return int(value)
        return MODE_BY_NAME.get(value.upper())
    return None


def with_bad_ltp(frame: dict[str, Any], kind: str) -> dict[str, Any]:
    """A copy of a market_data frame whose ltp is bad as a broker's glitch makes it (a bad_ticks fault)."""
    return {**frame, "data": {**frame["data"], "ltp": BAD_TICKS[kind]}}


@dataclass(eq=False)
class Conn:
    ws: web.WebSocketResponse
    connected_at: float = field(default_factory=time.monotonic)
    acct: Account | None = None
    subs: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    orders: bool = False
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))

    def send(self, frame: dict[str, Any]) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # a slow client loses frames, as upstream does
            self.queue.put_nowait(dumps(frame))


class Hub:
    """All WebSocket connections of one broker, fed by market and order events."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.conns: set[Conn] = set()
        broker.market_hooks.append(self.on_prices)
        broker.market.listeners.append(self.on_prices)
        broker.engine.listeners.append(self.on_order)
        broker.ws_disconnect = self.disconnect

    # --- frames -------------------------------------------------------------------------------
    def market_frame(self, inst: Instrument, mode: int) -> dict[str, Any]:
        b = self.broker
        ltp = b.market.ltp(inst)
        now_ms = int(b.clock.epoch() * 1000)
        data: dict[str, Any] = {"ltp": ltp, "ltt": int(b.market.last_tick_epoch[inst.name] * 1000),
                                "symbol": inst.symbol, "exchange": inst.exchange, "mode": mode,
                                "timestamp": now_ms}
        if mode >= 2:
            q = b.market.quote(inst)
            bids, asks = b.market.depth_levels(inst)
            avg = round((float(q["open"]) + float(q["high"]) + float(q["low"]) + ltp) / 4, 2)
            prev = float(q["prev_close"])
            change = round(ltp - prev, 2)
            data.update({
                "volume": q["volume"], "open": q["open"], "high": q["high"], "low": q["low"], "close": prev,
                "last_quantity": inst.lot_size, "last_trade_quantity": inst.lot_size,
                "average_price": avg, "avg_trade_price": avg,
                "total_buy_quantity": sum(int(x["quantity"]) for x in bids),
                "total_sell_quantity": sum(int(x["quantity"]) for x in asks),
                "oi": q["oi"], "change": change, "change_percent": round(change / prev * 100, 2) if prev else 0.0,
                "bid": q["bid"], "ask": q["ask"],
            })
            if mode == 3:
                data.update({"depth": {"buy": bids, "sell": asks},
                             "upper_circuit": round(prev * 1.2, 2), "lower_circuit": round(prev * 0.8, 2)})
        return {"type": "market_data", "symbol": inst.symbol, "exchange": inst.exchange, "mode": mode,
                "broker": "paper", "data": data}

    def order_frame(self, acct: Account, o: Order) -> dict[str, Any]:
        return {"type": "order_update", "user_id": acct.name, "mode": "analyze" if acct.options.analyzer else "live",
                "broker": "paper", "orderid": o.orderid, "symbol": o.symbol, "exchange": o.exchange,
                "action": o.action, "quantity": o.quantity, "price": round(o.price, 2),
                "trigger_price": round(o.trigger_price, 2), "pricetype": o.pricetype, "product": o.product,
                "order_status": o.status, "filled_quantity": o.filled_quantity,
                "pending_quantity": o.quantity - o.filled_quantity if o.is_live else 0,
                "average_price": round(o.average_price, 2), "rejection_reason": o.rejection_reason}

    # --- event fan-out ------------------------------------------------------------------------
    def on_prices(self, names: list[str]) -> None:
        if not self.conns:
            return
        moved = set(names)
        cache: dict[tuple[str, str, int], dict[str, Any]] = {}
        for conn in self.conns:
            bad = self.broker.faults.bad_tick(conn.acct.apikey if conn.acct else None)
            for (exchange, symbol), modes in conn.subs.items():
                inst = self.broker.master.get(exchange, symbol)
                if inst is None or inst.name not in moved:
                    continue
                for mode in modes:
                    key = (exchange, symbol, mode)
                    frame = cache.get(key)
                    if frame is None:
                        frame = cache[key] = self.market_frame(inst, mode)
                    conn.send(frame if bad is None else with_bad_ltp(frame, bad))

    def on_order(self, acct: Account, order: Order) -> None:
        frame = None
        for conn in self.conns:
            if conn.orders and conn.acct is acct:
                frame = frame or self.order_frame(acct, order)
                conn.send(frame)

    async def disconnect(self, apikey: str | None = None) -> int:
        """Close every connection (of one account when ``apikey`` is given) as a broker hiccup would."""
        victims = [c for c in self.conns if apikey is None or (c.acct is not None and c.acct.apikey == apikey)]
        for conn in victims:
            await conn.ws.close(code=1011, message=b"simulated disconnect")
        return len(victims)

    async def enforce_disconnect_faults(self) -> None:
        now = time.monotonic()
        for conn in list(self.conns):
            period = self.broker.faults.ws_disconnect_period(conn.acct.apikey if conn.acct else None)
            if period and now - conn.connected_at >= period:
                await conn.ws.close(code=1011, message=b"simulated disconnect")

    # --- protocol -----------------------------------------------------------------------------
    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20.0)
        await ws.prepare(request)
        conn = Conn(ws)
        self.conns.add(conn)
        writer = asyncio.create_task(self._writer(conn))
        watchdog = asyncio.create_task(self._auth_watchdog(conn))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self.handle_text(conn, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.conns.discard(conn)
            writer.cancel()
            watchdog.cancel()
        return ws

    async def _writer(self, conn: Conn) -> None:
        while True:
            text = await conn.queue.get()
            try:
                await conn.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    async def _auth_watchdog(self, conn: Conn) -> None:
        await asyncio.sleep(self.broker.cfg.ws_auth_timeout)
        if conn.acct is None:
            await conn.ws.close(code=AUTH_TIMEOUT_CODE, message=b"auth timeout")

    def handle_text(self, conn: Conn, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            conn.send({"status": "error", "code": "INVALID_JSON", "message": "Invalid JSON message"})
            return
        if not isinstance(msg, dict):
            conn.send({"status": "error", "code": "INVALID_JSON", "message": "Message must be a JSON object"})
            return
        action = str(msg.get("action") or msg.get("type") or "").lower()
        if action in ("authenticate", "auth"):
            self._auth(conn, msg)
        elif action == "ping":
            conn.send({"type": "pong", "status": "success", "server_timestamp": int(time.time() * 1000),
                       "client_timestamp": msg.get("timestamp"), **({"_pingId": msg["_pingId"]}
                                                                     if "_pingId" in msg else {})})
        elif action == "get_supported_brokers":
            conn.send({"type": "supported_brokers", "status": "success", "brokers": ["paper"]})
        elif conn.acct is None:
            conn.send({"status": "error", "code": "NOT_AUTHENTICATED", "message": "Authentication required"})
        elif action == "subscribe":
            self._subscribe(conn, msg)
        elif action == "unsubscribe":
            self._unsubscribe(conn, msg)
        elif action == "unsubscribe_all":
            conn.subs.clear()
            conn.send({"type": "unsubscribe", "status": "success", "message": "Unsubscribed from all symbols",
                       "successful": [], "failed": [], "broker": "paper"})
        elif action == "subscribe_orders":
            conn.orders = True
            conn.send({"type": "subscribe_orders", "status": "success", "message": "Subscribed to order updates",
                       **({"request_id": msg["request_id"]} if "request_id" in msg else {})})
        elif action == "unsubscribe_orders":
            conn.orders = False
            conn.send({"type": "unsubscribe_orders", "status": "success",
                       "message": "Unsubscribed from order updates"})
        elif action == "get_broker_info":
            conn.send({"type": "broker_info", "status": "success", "broker": "paper", "adapter": "paperbroker",
                       "user_id": conn.acct.name})
        else:
            conn.send({"status": "error", "code": "INVALID_ACTION", "message": f"Invalid action: {action}"})

    def _auth(self, conn: Conn, msg: dict[str, Any]) -> None:
        key = msg.get("api_key") or msg.get("apikey")
        acct = self.broker.accounts.get(key) if isinstance(key, str) else None
        if acct is not None:
            spec = self.broker.faults.accounts.get(acct.apikey)
            if self.broker.faults.global_spec.session_expired or (spec is not None and spec.session_expired):
                acct = None
        if acct is None:
            conn.send({"type": "auth", "status": "error", "code": "AUTHENTICATION_ERROR",
                       "message": "Invalid API key"})
            return
        conn.acct = acct
        conn.send({"type": "auth", "status": "success", "message": "Authentication successful", "broker": "paper",
                   "user_id": acct.name, "supported_features": {"ltp": True, "quote": True, "depth": True}})

    @staticmethod
    def _entries(msg: dict[str, Any]) -> list[Any]:
        if isinstance(msg.get("symbols"), list):
            return list(msg["symbols"])
        if msg.get("symbol"):
            return [{"symbol": msg.get("symbol"), "exchange": msg.get("exchange")}]
        return []

    def _subscribe(self, conn: Conn, msg: dict[str, Any]) -> None:
        mode = parse_mode(msg.get("mode"))
        if mode is None:
            conn.send({"status": "error", "code": "INVALID_MODE", "message": f"Invalid mode: {msg.get('mode')}"})
            return
        entries = self._entries(msg)
        if not entries:
            conn.send({"status": "error", "code": "INVALID_PARAMETERS",
                       "message": "At least one symbol must be specified"})
            return
        subs: list[dict[str, Any]] = []
        fresh: list[Instrument] = []
        for e in entries:
            sym = e.get("symbol") if isinstance(e, dict) else None
            exch = e.get("exchange") if isinstance(e, dict) else None
            inst = self.broker.master.get(str(exch), str(sym)) if sym and exch else None
            if inst is None:
                subs.append({"symbol": sym, "exchange": exch, "status": "error",
                             "message": f"Symbol {sym} not found on {exch}", "broker": "paper"})
                continue
            conn.subs.setdefault((inst.exchange, inst.symbol), set()).add(mode)
            fresh.append(inst)
            subs.append({"symbol": inst.symbol, "exchange": inst.exchange, "status": "success",
                         "mode": MODE_NAMES[mode], "depth": 5, "broker": "paper"})
        ok = all(s["status"] == "success" for s in subs)
        conn.send({"type": "subscribe", "status": "success" if ok else "partial",
                   "message": "Subscription processing complete", "broker": "paper",
                   **({"request_id": msg["request_id"]} if "request_id" in msg else {}), "subscriptions": subs})
        for inst in fresh:  # an initial snapshot, so a subscriber need not wait for the next tick
            frame = self.market_frame(inst, mode)
            bad = self.broker.faults.bad_tick(conn.acct.apikey if conn.acct else None)
            conn.send(frame if bad is None else with_bad_ltp(frame, bad))

    def _unsubscribe(self, conn: Conn, msg: dict[str, Any]) -> None:
        ok: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for e in self._entries(msg):
            if not isinstance(e, dict):
                continue
            mode = parse_mode(e.get("mode", msg.get("mode")))
            key = (str(e.get("exchange")), str(e.get("symbol")))
            modes = conn.subs.get(key)
            row = {"symbol": e.get("symbol"), "exchange": e.get("exchange"), "broker": "paper"}
            if modes is None or mode not in modes:
                failed.append({**row, "status": "error", "message": "Not subscribed"})
                continue
            modes.discard(mode)
            if not modes:
                del conn.subs[key]
            ok.append({**row, "status": "success"})
        status = "success" if ok and not failed else ("partial" if ok else "error")
        conn.send({"type": "unsubscribe", "status": status, "message": "Unsubscription processing complete",
                   **({"request_id": msg["request_id"]} if "request_id" in msg else {}),
                   "successful": ok, "failed": failed, "broker": "paper"})
