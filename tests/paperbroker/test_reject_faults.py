"""Rejection faults: broker-like RMS refusals, as an HTTP 400 or as a recorded "rejected" order."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import websocket

SBIN_CNC = {"strategy": "t", "symbol": "SBIN", "exchange": "NSE", "action": "BUY", "quantity": 10,
            "pricetype": "MARKET", "product": "CNC"}
OPTION = {"strategy": "t", "symbol": "NIFTY06JAN2626000CE", "exchange": "NFO", "action": "BUY", "quantity": 65,
          "pricetype": "MARKET", "product": "NRML"}
RMS_BLOCK_NFO = "RMS:Blocked for trading in NSE F&O segment for this client; contact the RMS desk"


def orders(http: httpx.Client, key: str) -> dict[str, Any]:
    return dict(http.post("/orderbook", json={"apikey": key}).json()["data"])


def ask(http: httpx.Client, key: str, symbol: str, exchange: str) -> float:
    return float(http.post("/quotes", json={"apikey": key, "symbol": symbol, "exchange": exchange}).json()
                 ["data"]["ask"])


def test_http_mode_margin_reject_is_a_400_and_places_nothing(http: httpx.Client, admin: Any, apikey: str) -> None:
    admin.set_faults(apikey, reject_rate=1.0, reject_reason="margin", reject_mode="http", routes=["placeorder"])
    required = ask(http, apikey, "SBIN", "NSE") * 10  # CNC blocks the full value
    resp = http.post("/placeorder", json={"apikey": apikey, **SBIN_CNC})
    assert resp.status_code == 400
    assert resp.json() == {"status": "error", "message": f"RMS:Margin Exceeds,Required:{required:.2f}, "
                                                         f"Available:{required * 0.8:.2f} for SBIN (NSE CNC)"}
    assert orders(http, apikey)["orders"] == []
    assert http.post("/tradebook", json={"apikey": apikey}).json()["data"] == []


def test_order_mode_rms_block_records_a_rejected_order_with_the_reason(http: httpx.Client, admin: Any,
                                                                       apikey: str, broker: Any) -> None:
    ws = websocket.create_connection(broker.ws_url, timeout=20)
    try:
        ws.send(json.dumps({"action": "authenticate", "api_key": apikey}))
        ws.send(json.dumps({"action": "subscribe_orders"}))
        while json.loads(ws.recv()).get("type") != "subscribe_orders":
            pass
        admin.set_faults(apikey, reject_rate=1.0, reject_reason="rms_block", reject_mode="order")
        before = http.post("/funds", json={"apikey": apikey}).json()["data"]
        resp = http.post("/placeorder", json={"apikey": apikey, **OPTION})
        assert resp.status_code == 200
        oid = resp.json()["orderid"]
        frame = json.loads(ws.recv())
    finally:
        ws.close()
    assert (frame["type"], frame["orderid"], frame["order_status"], frame["rejection_reason"],
            frame["filled_quantity"], frame["pending_quantity"]) == (
        "order_update", oid, "rejected", RMS_BLOCK_NFO, 0, 0)
    st = http.post("/orderstatus", json={"apikey": apikey, "strategy": "t", "orderid": oid}).json()["data"]
    assert (st["order_status"], st["rejection_reason"], st["average_price"]) == ("rejected", RMS_BLOCK_NFO, 0.0)
    book = orders(http, apikey)
    assert [(r["orderid"], r["order_status"], r["rejection_reason"]) for r in book["orders"]] == [
        (oid, "rejected", RMS_BLOCK_NFO)]
    assert (book["statistics"]["total_rejected_orders"], book["statistics"]["total_open_orders"]) == (1, 0)
    assert http.post("/tradebook", json={"apikey": apikey}).json()["data"] == []
    assert http.post("/positionbook", json={"apikey": apikey}).json()["data"] == []
    assert http.post("/funds", json={"apikey": apikey}).json()["data"] == before


def test_reject_message_overrides_the_reason(http: httpx.Client, admin: Any, apikey: str) -> None:
    admin.set_faults(apikey, reject_rate=1.0, reject_reason="rms_block", reject_message="Order value above limit")
    resp = http.post("/placeorder", json={"apikey": apikey, **SBIN_CNC})
    assert (resp.status_code, resp.json()) == (400, {"status": "error", "message": "Order value above limit"})


def test_rate_one_rejects_every_request(http: httpx.Client, admin: Any, apikey: str) -> None:
    admin.set_faults(apikey, reject_rate=1.0, reject_mode="order")
    ids = [http.post("/placeorder", json={"apikey": apikey, **SBIN_CNC, "quantity": 1}).json()["orderid"]
           for _ in range(25)]
    book = orders(http, apikey)
    assert sorted(r["orderid"] for r in book["orders"]) == sorted(ids)
    assert {r["order_status"] for r in book["orders"]} == {"rejected"}


def test_reject_fault_spares_other_routes_and_other_accounts(http: httpx.Client, admin: Any, apikey: str) -> None:
    other = admin.new_account()
    try:
        admin.set_faults(apikey, reject_rate=1.0, routes=["placesmartorder"])
        assert http.post("/placeorder", json={"apikey": apikey, **SBIN_CNC}).status_code == 200
        smart = http.post("/placesmartorder", json={"apikey": apikey, **SBIN_CNC, "position_size": 20})
        assert smart.status_code == 400 and smart.json()["message"].startswith("RMS:Margin Exceeds,Required:")
        admin.set_faults(apikey, reject_rate=1.0)
        assert http.post("/placeorder", json={"apikey": other, **SBIN_CNC}).status_code == 200
        assert http.post("/funds", json={"apikey": apikey}).status_code == 200  # not an order route
    finally:
        admin.call("DELETE", f"/sim/accounts/{other}")


def test_ordinary_checks_answer_before_the_reject_fault(http: httpx.Client, admin: Any, apikey: str) -> None:
    admin.set_faults(apikey, reject_rate=1.0, reject_mode="order")
    resp = http.post("/placeorder", json={"apikey": apikey, **OPTION, "quantity": 50})
    assert resp.json() == {"status": "error",
                           "message": "Quantity 50 is not a multiple of lot size 65 for NIFTY06JAN2626000CE"}
    assert orders(http, apikey)["orders"] == []


def test_global_reject_fault_in_a_basket_is_a_per_item_error(http: httpx.Client, admin: Any, apikey: str) -> None:
    admin.set_faults(reject_rate=1.0, reject_reason="rms_block", routes=["basketorder"])
    item = {k: v for k, v in OPTION.items() if k != "strategy"}
    resp = http.post("/basketorder", json={"apikey": apikey, "strategy": "t", "orders": [item]})
    assert resp.status_code == 200
    assert resp.json()["results"] == [{"symbol": OPTION["symbol"], "exchange": "NFO", "status": "error",
                                       "message": RMS_BLOCK_NFO}]


@pytest.mark.parametrize("spec", [
    {"reject_rate": 1.5}, {"reject_rate": -0.1}, {"reject_rate": "often"}, {"reject_reason": "funds"},
    {"reject_mode": "socket"}, {"reject_message": ""}, {"reject_message": 5},
])
def test_bad_reject_fields_are_a_400(admin: Any, apikey: str, spec: dict[str, Any]) -> None:
    resp = admin.http.post("/sim/faults", json={"apikey": apikey, **spec})
    assert resp.status_code == 400 and resp.json()["status"] == "error"
    assert apikey not in admin.call("GET", "/sim/faults")["faults"]["accounts"]
