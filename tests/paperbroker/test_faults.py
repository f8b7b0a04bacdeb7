"""Fault injection: each fault does exactly what it says, per account or globally."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any

import httpx
import openalgo
import pytest
import websocket

from tests.helpers import wait_until

ORDER = {"strategy": "t", "symbol": "SBIN", "exchange": "NSE", "action": "BUY", "quantity": 1}


def set_fault(admin: Any, key: str | None = None, **spec: Any) -> None:
    admin.post("/sim/faults", {**({"apikey": key} if key else {}), **spec})


def test_latency_applies_to_the_faulted_account_only(http: httpx.Client, admin: Any, apikey: str) -> None:
    other = admin.new_account()
    # A latency far above what a loaded machine adds to a loopback ping, so "fast" stays fast.
    set_fault(admin, apikey, latency_ms=1500, jitter_ms=50)
    t0 = time.monotonic()
    assert http.post("/ping", json={"apikey": apikey}).status_code == 200
    slow = time.monotonic() - t0
    t0 = time.monotonic()
    assert http.post("/ping", json={"apikey": other}).status_code == 200
    fast = time.monotonic() - t0
    assert slow >= 1.5 and fast < 1.5
    admin.call("DELETE", f"/sim/accounts/{other}")


def test_http_500_rate_limited_to_chosen_routes(http: httpx.Client, admin: Any, apikey: str) -> None:
    set_fault(admin, apikey, error_rate=1.0, routes=["placeorder"])
    resp = http.post("/placeorder", json={"apikey": apikey, **ORDER})
    assert resp.status_code == 500 and resp.json()["status"] == "error"
    assert http.post("/funds", json={"apikey": apikey}).status_code == 200
    admin.call("DELETE", f"/sim/faults?apikey={apikey}")
    book = http.post("/orderbook", json={"apikey": apikey}).json()
    assert book["data"]["orders"] == []  # a 500 before handling placed nothing


def test_session_expired_is_the_invalid_key_403(client: openalgo.api, admin: Any, apikey: str) -> None:
    set_fault(admin, apikey, session_expired=True)
    resp = client.funds()
    assert resp["code"] == 403 and "Invalid openalgo apikey" in resp["message"]


def test_rate_limit_storm_uses_the_route_label(http: httpx.Client, admin: Any, apikey: str) -> None:
    set_fault(admin, apikey, rate_limit_rate=1.0)
    assert http.post("/ping", json={"apikey": apikey}).json() == {"message": "50 per 1 second"}
    order = http.post("/placeorder", json={"apikey": apikey, **ORDER})
    assert order.status_code == 429 and order.json() == {"message": "10 per 1 second"}


def test_global_fault_hits_every_account(http: httpx.Client, admin: Any, apikey: str) -> None:
    set_fault(admin, error_rate=1.0, routes=["ping"])
    assert http.post("/ping", json={"apikey": apikey}).status_code == 500
    assert http.post("/funds", json={"apikey": apikey}).status_code == 200


def test_dropped_connection_places_nothing(http: httpx.Client, client: openalgo.api, admin: Any,
                                           apikey: str) -> None:
    set_fault(admin, apikey, drop_rate=1.0, routes=["placeorder"])
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/placeorder", json={"apikey": apikey, **ORDER})
    resp = client.placeorder(symbol="SBIN", exchange="NSE", action="BUY", quantity=1)
    assert resp["status"] == "error" and "orderid" not in resp
    assert client.orderbook()["data"]["orders"] == []


def test_accepted_but_response_lost_leaves_the_order_in_the_book(client: openalgo.api, admin: Any,
                                                                 apikey: str) -> None:
    set_fault(admin, apikey, lost_response_rate=1.0, routes=["placeorder"])
    resp = client.placeorder(symbol="SBIN", exchange="NSE", action="BUY", quantity=3)
    assert resp["status"] == "error" and "orderid" not in resp
    orders = client.orderbook()["data"]["orders"]
    assert [(o["symbol"], o["quantity"], o["order_status"]) for o in orders] == [("SBIN", 3, "complete")]


def test_response_delay_makes_the_client_time_out_after_placing(broker: Any, admin: Any, apikey: str) -> None:
    set_fault(admin, apikey, response_delay_ms=1500, routes=["placeorder"])
    impatient = openalgo.api(api_key=apikey, host=broker.url, timeout=0.3)
    try:
        resp = impatient.placeorder(symbol="SBIN", exchange="NSE", action="BUY", quantity=2)
    finally:
        impatient.close()
    assert resp["error_type"] == "timeout_error"

    def booked() -> list[int]:
        book = httpx.post(f"{broker.url}/api/v1/orderbook", json={"apikey": apikey}, timeout=30).json()
        return [o["quantity"] for o in book["data"]["orders"]]

    # On a loaded machine the client can give up before the broker has even recorded the order.
    assert wait_until(booked) == [2]


def _close_code(conn: websocket.WebSocket) -> int:
    while True:
        opcode, data = conn.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int(struct.unpack("!H", data[:2])[0])


def _authed_ws(broker: Any, key: str) -> websocket.WebSocket:
    conn = websocket.create_connection(broker.ws_url, timeout=10)
    conn.send(json.dumps({"action": "authenticate", "api_key": key}))
    assert json.loads(conn.recv())["status"] == "success"
    return conn


def test_ws_disconnect_now_and_periodically(broker: Any, admin: Any, apikey: str) -> None:
    conn = _authed_ws(broker, apikey)
    try:
        assert admin.post("/sim/ws/disconnect", {"apikey": apikey})["closed"] == 1
        assert _close_code(conn) == 1011
    finally:
        conn.close()
    set_fault(admin, apikey, ws_disconnect_every_s=0.2)
    conn = _authed_ws(broker, apikey)
    try:
        assert _close_code(conn) == 1011
    finally:
        conn.close()


def test_ws_auth_fails_while_session_expired(broker: Any, admin: Any, apikey: str) -> None:
    set_fault(admin, apikey, session_expired=True)
    conn = websocket.create_connection(broker.ws_url, timeout=10)
    try:
        conn.send(json.dumps({"action": "authenticate", "api_key": apikey}))
        assert json.loads(conn.recv())["status"] == "error"
    finally:
        conn.close()


def test_bad_ticks_put_a_zero_or_text_ltp_in_the_faulted_accounts_frames_only(broker: Any, admin: Any,
                                                                             apikey: str) -> None:
    other = admin.new_account()
    faulted, clean = _authed_ws(broker, apikey), _authed_ws(broker, other)
    try:
        for conn in (faulted, clean):
            conn.send(json.dumps({"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 1}))
            assert json.loads(conn.recv())["type"] == "subscribe"
            assert json.loads(conn.recv())["type"] == "market_data"  # the snapshot, before any fault
        set_fault(admin, apikey, bad_ticks="zero")
        admin.set_spot(SBIN=801.5)
        assert _next_ltp(faulted) == 0 and _next_ltp(clean) == 801.5
        set_fault(admin, apikey, bad_ticks="text")
        admin.set_spot(SBIN=802.5)
        assert _next_ltp(faulted) == "N/A" and _next_ltp(clean) == 802.5
        admin.call("DELETE", "/sim/faults")
        admin.set_spot(SBIN=803.5)
        assert _next_ltp(faulted) == 803.5
    finally:
        faulted.close()
        clean.close()
        admin.call("DELETE", f"/sim/accounts/{other}")
    resp = httpx.post(f"{broker.url}/sim/faults", json={"bad_ticks": "nan"},
                      headers={"X-Admin-Token": "test-admin-token"})
    assert resp.status_code == 400 and "bad_ticks must be one of: zero, text" in resp.json()["message"]


def _next_ltp(conn: websocket.WebSocket) -> Any:
    while True:
        frame = json.loads(conn.recv())
        if frame.get("type") == "market_data":
            return frame["data"]["ltp"]


def test_bad_fault_spec_is_rejected(broker: Any) -> None:
    resp = httpx.post(f"{broker.url}/sim/faults", json={"error_rate": 2},
                      headers={"X-Admin-Token": "test-admin-token"})
    assert resp.status_code == 400 and "between 0 and 1" in resp.json()["message"]


def test_config_file_sets_faults_and_latency(tmp_path: Path, launch: Any) -> None:
    cfg = tmp_path / "pb.json"
    cfg.write_text(json.dumps({"faults": {"global": {"error_rate": 1.0, "routes": ["funds"]}}}))
    bp = launch("--config", str(cfg), "--latency-ms", "50", accounts=1)
    t0 = time.monotonic()
    funds = httpx.post(f"{bp.url}/api/v1/funds", json={"apikey": bp.keys[0]})
    assert funds.status_code == 500 and time.monotonic() - t0 >= 0.05
    assert httpx.post(f"{bp.url}/api/v1/ping", json={"apikey": bp.keys[0]}).status_code == 200
    assert bp.stop() == 0
