"""WebSocket protocol tests: auth, auth timeout, ping, subscribe modes, order updates, the SDK feed."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterator
from typing import Any

import openalgo
import pytest
import websocket

from tests.helpers import wait_until

Frame = dict[str, Any]


@pytest.fixture
def ws(broker: Any) -> Iterator[websocket.WebSocket]:
    conn = websocket.create_connection(broker.ws_url, timeout=10)
    yield conn
    conn.close()


def send(ws: websocket.WebSocket, **msg: Any) -> None:
    ws.send(json.dumps(msg))


def recv_until(ws: websocket.WebSocket, pred: Callable[[Frame], bool], limit: int = 50) -> Frame:
    for _ in range(limit):
        frame = json.loads(ws.recv())
        if pred(frame):
            return frame
    raise AssertionError("expected frame not received")


def auth(ws: websocket.WebSocket, key: str) -> Frame:
    send(ws, action="authenticate", api_key=key)
    return recv_until(ws, lambda f: f.get("type") == "auth")


def test_authenticate_then_ping_pong(ws: websocket.WebSocket, apikey: str) -> None:
    ok = auth(ws, apikey)
    assert ok["status"] == "success" and ok["broker"] == "paper"
    assert ok["supported_features"] == {"ltp": True, "quote": True, "depth": True}
    send(ws, action="ping", timestamp=123)
    pong = recv_until(ws, lambda f: f.get("type") == "pong")
    assert pong["client_timestamp"] == 123 and pong["status"] == "success"


def test_commands_before_auth_and_bad_key_are_refused(ws: websocket.WebSocket) -> None:
    send(ws, action="subscribe", symbols=[{"symbol": "SBIN", "exchange": "NSE"}], mode=1)
    assert json.loads(ws.recv()) == {"status": "error", "code": "NOT_AUTHENTICATED",
                                     "message": "Authentication required"}
    bad = auth(ws, "nope")
    assert bad["status"] == "error"


def test_unauthenticated_socket_is_closed_with_4401(broker: Any) -> None:
    conn = websocket.create_connection(broker.ws_url, timeout=10)
    try:
        opcode, data = conn.recv_data(control_frame=True)
    finally:
        conn.close()
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert struct.unpack("!H", data[:2])[0] == 4401 and data[2:] == b"auth timeout"


@pytest.mark.parametrize(("mode", "mode_num", "mode_name"), [(1, 1, "LTP"), ("quote", 2, "Quote"),
                                                             ("Depth", 3, "Depth")])
def test_subscribe_modes_push_market_data_with_both_aliases(ws: websocket.WebSocket, apikey: str, admin: Any,
                                                            mode: Any, mode_num: int, mode_name: str) -> None:
    auth(ws, apikey)
    send(ws, action="subscribe", symbols=[{"symbol": "SBIN", "exchange": "NSE"}, {"symbol": "X", "exchange": "NSE"}],
         mode=mode, request_id="r1")
    ack = recv_until(ws, lambda f: f.get("type") == "subscribe")
    assert ack["status"] == "partial" and ack["request_id"] == "r1"
    assert ack["subscriptions"][0]["mode"] == mode_name and ack["subscriptions"][1]["status"] == "error"
    admin.set_spot(SBIN=812.5)
    frame = recv_until(ws, lambda f: f.get("type") == "market_data" and f["data"]["ltp"] == 812.5)
    assert (frame["symbol"], frame["exchange"], frame["mode"]) == ("SBIN", "NSE", mode_num)
    data = frame["data"]
    assert isinstance(data["ltt"], int) and data["timestamp"] > 1_700_000_000_000
    if mode_num >= 2:
        assert data["average_price"] == data["avg_trade_price"]
        assert data["last_quantity"] == data["last_trade_quantity"]
    if mode_num == 3:
        assert len(data["depth"]["buy"]) == 5 and len(data["depth"]["sell"]) == 5


def test_unsubscribe_stops_the_feed(ws: websocket.WebSocket, apikey: str, admin: Any) -> None:
    auth(ws, apikey)
    send(ws, action="subscribe", symbol="SBIN", exchange="NSE", mode="LTP")
    recv_until(ws, lambda f: f.get("type") == "subscribe")
    send(ws, action="unsubscribe", symbols=[{"symbol": "SBIN", "exchange": "NSE", "mode": 1}])
    unsub = recv_until(ws, lambda f: f.get("type") == "unsubscribe")
    assert unsub["status"] == "success" and unsub["successful"][0]["symbol"] == "SBIN"
    admin.set_spot(SBIN=820)
    send(ws, action="ping", timestamp=1)
    after = recv_until(ws, lambda f: f.get("type") in ("pong", "market_data"))
    assert after["type"] == "pong"


def test_subscribe_orders_gets_an_update_on_every_order_event(ws: websocket.WebSocket, apikey: str,
                                                              client: openalgo.api) -> None:
    auth(ws, apikey)
    send(ws, action="subscribe_orders", request_id="o1")
    ack = recv_until(ws, lambda f: f.get("type") == "subscribe_orders")
    assert ack == {"type": "subscribe_orders", "status": "success", "message": "Subscribed to order updates",
                   "request_id": "o1"}
    oid = client.placeorder(symbol="SBIN", exchange="NSE", action="BUY", quantity=1)["orderid"]
    first = recv_until(ws, lambda f: f.get("type") == "order_update")
    second = recv_until(ws, lambda f: f.get("type") == "order_update")
    assert (first["orderid"], first["order_status"]) == (oid, "open")
    assert (second["orderid"], second["order_status"], second["filled_quantity"]) == (oid, "complete", 1)
    assert second["mode"] == "live" and second["broker"] == "paper"
    lim = client.placeorder(symbol="SBIN", exchange="NSE", action="BUY", quantity=1, price_type="LIMIT",
                            price=700)["orderid"]
    client.cancelorder(order_id=lim)
    statuses = [recv_until(ws, lambda f: f.get("type") == "order_update")["order_status"] for _ in range(2)]
    assert statuses == ["open", "cancelled"]


def test_sdk_feed_receives_ltp(broker: Any, apikey: str, admin: Any) -> None:
    feed = openalgo.api(api_key=apikey, host=broker.url, ws_port=broker.ws_port, auto_reconnect=False)
    try:
        assert feed.connect()
        assert feed.subscribe_ltp([{"exchange": "NSE", "symbol": "RELIANCE"}])
        admin.set_spot(RELIANCE=1411)
        wait_until(lambda: feed.get_ltp().get("ltp", {}).get("NSE", {}).get("RELIANCE", {}).get("ltp") == 1411.0,
                   interval=0.02, message="the feed never delivered RELIANCE at 1411")
    finally:
        feed.disconnect()
        feed.close()
