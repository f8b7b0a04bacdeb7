"""Partial fills: an order fills in parts over wall time; order, trade and position books agree throughout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websocket

from paperbroker.partial import PartialFills
from tests.helpers import wait_until

OPTION = "NIFTY06JAN2626000CE"  # lot 65
OPTION_ORDER = {"strategy": "t", "symbol": OPTION, "exchange": "NFO", "action": "BUY", "quantity": 195,
                "pricetype": "MARKET", "product": "NRML"}
SBIN_ORDER = {"strategy": "t", "symbol": "SBIN", "exchange": "NSE", "action": "BUY", "quantity": 10,
              "pricetype": "MARKET", "product": "MIS"}


def place(http: httpx.Client, key: str, **order: Any) -> str:
    resp = http.post("/placeorder", json={"apikey": key, **order})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["orderid"])


def status(http: httpx.Client, key: str, oid: str) -> dict[str, Any]:
    resp = http.post("/orderstatus", json={"apikey": key, "strategy": "t", "orderid": oid})
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["data"])


def books(http: httpx.Client, key: str, oid: str, symbol: str) -> dict[str, Any]:
    """One snapshot of every book for one order: status, orderbook row, its trades, the position."""
    book = http.post("/orderbook", json={"apikey": key}).json()["data"]["orders"]
    trades = [t for t in http.post("/tradebook", json={"apikey": key}).json()["data"] if t["orderid"] == oid]
    trades.reverse()  # the tradebook lists the newest first; parts read oldest first
    positions = [p for p in http.post("/positionbook", json={"apikey": key}).json()["data"]
                 if p["symbol"] == symbol]
    return {"status": status(http, key, oid), "row": next(r for r in book if r["orderid"] == oid),
            "trades": trades, "position": positions[0]["quantity"] if positions else 0}


def assert_agree(snap: dict[str, Any], filled: int, total: int, order_status: str) -> None:
    st, row = snap["status"], snap["row"]
    pending = total - filled if order_status == "open" else 0
    for r in (st, row):
        assert (r["order_status"], r["filled_quantity"], r["pending_quantity"]) == (order_status, filled, pending)
    assert sum(t["quantity"] for t in snap["trades"]) == filled
    assert snap["position"] == filled
    vwap = sum(t["quantity"] * t["average_price"] for t in snap["trades"]) / filled
    assert st["average_price"] == row["average_price"] == round(vwap, 2)


@pytest.fixture
def order_ws(broker: Any, apikey: str) -> Iterator[websocket.WebSocket]:
    """A WebSocket subscribed to the account's order updates."""
    conn = websocket.create_connection(broker.ws_url, timeout=20)
    conn.send(json.dumps({"action": "authenticate", "api_key": apikey}))
    conn.send(json.dumps({"action": "subscribe_orders"}))
    while json.loads(conn.recv()).get("type") != "subscribe_orders":
        pass
    yield conn
    conn.close()


def order_updates(conn: websocket.WebSocket, count: int) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    while len(frames) < count:
        frame = json.loads(conn.recv())
        if frame.get("type") == "order_update":
            frames.append(frame)
    return frames


def test_option_order_in_three_parts_fills_65_130_195_and_books_agree(http: httpx.Client, admin: Any,
                                                                       apikey: str) -> None:
    # Arrange: parts 1.5 s apart, far longer than one snapshot of the books takes.
    admin.partial_fills(apikey, {"min_quantity": 195, "parts": 3, "interval_ms": 1500})
    # Act / Assert: the first part fills with the placement.
    oid = place(http, apikey, **OPTION_ORDER)
    assert_agree(books(http, apikey, oid, OPTION), 65, 195, "open")
    admin.set_spot(NIFTY=26100)  # the next parts fill at a higher premium: the average is weighted
    wait_until(lambda: status(http, apikey, oid)["filled_quantity"] == 130, message="second part")
    assert_agree(books(http, apikey, oid, OPTION), 130, 195, "open")
    wait_until(lambda: status(http, apikey, oid)["order_status"] == "complete", message="last part")
    snap = books(http, apikey, oid, OPTION)
    assert_agree(snap, 195, 195, "complete")
    assert [t["quantity"] for t in snap["trades"]] == [65, 65, 65]
    prices = [t["average_price"] for t in snap["trades"]]
    assert prices[0] < prices[1] == prices[2]  # 65 before the move, 130 after it


def test_option_order_in_parts_sends_one_order_update_per_part(http: httpx.Client, admin: Any, apikey: str,
                                                               order_ws: websocket.WebSocket) -> None:
    admin.partial_fills(apikey, {"min_quantity": 195, "parts": 3, "interval_ms": 200})
    oid = place(http, apikey, **OPTION_ORDER)
    frames = order_updates(order_ws, 4)
    assert [(f["orderid"], f["order_status"], f["filled_quantity"], f["pending_quantity"]) for f in frames] == [
        (oid, "open", 0, 195), (oid, "open", 65, 130), (oid, "open", 130, 65), (oid, "complete", 195, 0)]


def test_cancel_after_first_part_keeps_65_filled_and_fills_no_more(http: httpx.Client, admin: Any,
                                                                  apikey: str) -> None:
    admin.partial_fills(apikey, {"min_quantity": 195, "parts": 3, "interval_ms": 1000})
    oid = place(http, apikey, **OPTION_ORDER)
    resp = http.post("/cancelorder", json={"apikey": apikey, "strategy": "t", "orderid": oid})
    assert resp.status_code == 200 and resp.json()["orderid"] == oid
    assert_agree(books(http, apikey, oid, OPTION), 65, 195, "cancelled")
    # A later order in parts completes only after the cancelled order's next part would have been due.
    later = place(http, apikey, **{**OPTION_ORDER, "quantity": 130})
    wait_until(lambda: status(http, apikey, later)["order_status"] == "complete", message="later order")
    snap = books(http, apikey, oid, OPTION)
    assert (snap["status"]["order_status"], snap["status"]["filled_quantity"]) == ("cancelled", 65)
    assert [t["quantity"] for t in snap["trades"]] == [65]
    assert snap["position"] == 65 + 130


def test_equity_order_splits_with_the_remainder_last(http: httpx.Client, admin: Any, apikey: str) -> None:
    admin.partial_fills(apikey, {"min_quantity": 10, "parts": 3, "interval_ms": 100})
    oid = place(http, apikey, **SBIN_ORDER)
    wait_until(lambda: status(http, apikey, oid)["order_status"] == "complete", message="complete")
    snap = books(http, apikey, oid, "SBIN")
    assert [t["quantity"] for t in snap["trades"]] == [3, 3, 4]
    assert_agree(snap, 10, 10, "complete")


def test_order_below_min_quantity_fills_at_once_with_live_keys_only(http: httpx.Client, admin: Any,
                                                                     apikey: str) -> None:
    admin.partial_fills(apikey, {"min_quantity": 11, "parts": 3, "interval_ms": 100})
    oid = place(http, apikey, **SBIN_ORDER)
    st = status(http, apikey, oid)
    assert st["order_status"] == "complete" and "filled_quantity" not in st
    assert [t["quantity"] for t in books(http, apikey, oid, "SBIN")["trades"]] == [10]


def test_limit_orders_flag_splits_a_small_marketable_limit(http: httpx.Client, admin: Any, apikey: str) -> None:
    admin.partial_fills(apikey, {"min_quantity": 10_000, "parts": 2, "interval_ms": 100, "limit_orders": True})
    market = place(http, apikey, **{**SBIN_ORDER, "quantity": 4})
    limit = place(http, apikey, **{**SBIN_ORDER, "quantity": 4, "pricetype": "LIMIT", "price": 900})
    assert status(http, apikey, market)["order_status"] == "complete"
    wait_until(lambda: status(http, apikey, limit)["order_status"] == "complete", message="limit complete")
    assert [t["quantity"] for t in books(http, apikey, limit, "SBIN")["trades"]] == [2, 2]


def test_broker_default_applies_unless_the_account_opts_out(http: httpx.Client, admin: Any, apikey: str) -> None:
    other = admin.new_account()
    try:
        shown = admin.partial_fills(None, {"min_quantity": 10, "parts": 2, "interval_ms": 60_000})
        assert shown["partial_fills"] == {"min_quantity": 10, "parts": 2, "interval_ms": 60000.0,
                                          "limit_orders": False}
        admin.partial_fills(other, False)
        in_parts = place(http, apikey, **SBIN_ORDER)
        at_once = place(http, other, **SBIN_ORDER)
        assert (status(http, apikey, in_parts)["order_status"], status(http, apikey, in_parts)["filled_quantity"]) \
            == ("open", 5)
        assert status(http, other, at_once)["order_status"] == "complete"
    finally:
        assert admin.partial_fills(None, None)["partial_fills"] is None
        admin.call("DELETE", f"/sim/accounts/{other}")


def test_modify_of_a_partly_filled_order_is_refused(http: httpx.Client, admin: Any, apikey: str) -> None:
    admin.partial_fills(apikey, {"min_quantity": 10, "parts": 2, "interval_ms": 60_000})
    oid = place(http, apikey, **SBIN_ORDER)
    resp = http.post("/modifyorder", json={
        "apikey": apikey, "strategy": "t", "orderid": oid, "symbol": "SBIN", "exchange": "NSE", "action": "BUY",
        "product": "MIS", "pricetype": "MARKET", "price": 0, "quantity": 20, "disclosed_quantity": 0,
        "trigger_price": 0})
    assert resp.status_code == 400
    assert resp.json() == {"status": "error", "message": "Cannot modify a partially filled order (5 of 10 filled); "
                                                         "cancel the rest and place a new order"}


@pytest.mark.parametrize("spec", [
    {"parts": 1}, {"parts": 2.5}, {"interval_ms": 0}, {"interval_ms": "fast"}, {"min_quantity": 0},
    {"min_quantity": True}, {"limit_orders": "yes"}, {"partss": 3}, [1, 2],
])
def test_bad_partial_fill_spec_is_a_400(admin: Any, apikey: str, spec: Any) -> None:
    for path, body in ((f"/sim/accounts/{apikey}/options", {"partial_fills": spec}), ("/sim/partial-fills", spec)):
        resp = admin.http.post(path, json=body)
        assert resp.status_code == 400 and resp.json()["status"] == "error", (path, resp.text)
    assert admin.call("GET", "/sim/partial-fills")["partial_fills"] is None


@pytest.mark.parametrize(("quantity", "unit", "parts", "expected"), [
    (195, 65, 3, [65, 65, 65]), (455, 65, 3, [130, 130, 195]), (130, 65, 3, [65, 65]), (65, 65, 3, [65]),
    (10, 1, 3, [3, 3, 4]), (2, 1, 3, [1, 1]),
])
def test_split_gives_whole_lots_with_the_remainder_last(quantity: int, unit: int, parts: int,
                                                        expected: list[int]) -> None:
    assert PartialFills(parts=parts).split(quantity, unit) == expected


def test_open_parts_resume_after_a_restart_with_state(launch: Any, admin_for: Any, tmp_path: Any) -> None:
    state = str(tmp_path / "paper.db")
    first = launch("--state", state, "--no-rate-limit")
    key = first.keys[0]
    admin_for(first).partial_fills(key, {"min_quantity": 195, "parts": 3, "interval_ms": 1000})
    with httpx.Client(base_url=f"{first.url}/api/v1", timeout=20) as http:
        oid = place(http, key, **OPTION_ORDER)
        assert status(http, key, oid)["filled_quantity"] == 65
    assert first.stop() == 0
    second = launch("--state", state, "--no-rate-limit")
    with httpx.Client(base_url=f"{second.url}/api/v1", timeout=20) as http:
        wait_until(lambda: status(http, key, oid)["order_status"] == "complete", message="resumed parts")
        snap = books(http, key, oid, OPTION)
    assert [t["quantity"] for t in snap["trades"]] == [65, 65, 65]
    assert_agree(snap, 195, 195, "complete")
