"""Persistence across restarts, clean shutdown, real market hours and the 15:15 MIS square-off."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx


def post(bp: Any, endpoint: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{bp.url}/api/v1/{endpoint}", json=body, timeout=20)


def test_state_survives_a_restart(tmp_path: Path, launch: Any, admin_for: Any) -> None:
    db = str(tmp_path / "paper.sqlite")
    first = launch("--state", db, accounts=1)
    key = first.keys[0]
    admin_for(first).post(f"/sim/accounts/{key}/funds", {"funds": 500000})
    oid = post(first, "placeorder", apikey=key, strategy="s", symbol="SBIN", exchange="NSE", action="BUY",
               quantity=5).json()["orderid"]
    resting = post(first, "placeorder", apikey=key, strategy="s", symbol="SBIN", exchange="NSE", action="BUY",
                   quantity=1, pricetype="LIMIT", price=700).json()["orderid"]
    assert first.stop() == 0

    second = launch("--state", db, accounts=1)
    assert second.keys == [key]  # no extra account: N accounts already exist
    orders = post(second, "orderbook", apikey=key).json()["data"]["orders"]
    assert {o["orderid"]: o["order_status"] for o in orders} == {oid: "complete", resting: "open"}
    pos = post(second, "positionbook", apikey=key).json()["data"]
    assert [(p["symbol"], p["quantity"]) for p in pos] == [("SBIN", 5)]
    funds = post(second, "funds", apikey=key).json()["data"]
    assert funds["availablecash"] + funds["utiliseddebits"] == 500000.0
    newer = post(second, "placeorder", apikey=key, strategy="s", symbol="SBIN", exchange="NSE", action="SELL",
                 quantity=5).json()["orderid"]
    assert newer > resting
    assert post(second, "cancelorder", apikey=key, strategy="s", orderid=resting).status_code == 200
    assert second.stop(signal.SIGINT) == 0


def test_real_hours_reject_closed_market_and_square_off_mis(launch: Any, admin_for: Any) -> None:
    bp = launch("--market-hours", "real", "--start-time", "2026-01-04T10:00:00+05:30", accounts=1)  # a Sunday
    admin = admin_for(bp)
    key = bp.keys[0]
    order = {"apikey": key, "strategy": "s", "symbol": "SBIN", "exchange": "NSE", "action": "BUY", "quantity": 4,
             "product": "MIS"}
    closed = post(bp, "placeorder", **order)
    assert closed.status_code == 400 and "Market is closed" in closed.json()["message"]

    admin.post("/sim/clock", {"time": "2026-01-05T15:10:00+05:30"})
    assert post(bp, "placeorder", **order).status_code == 200
    assert post(bp, "placeorder", **{**order, "product": "CNC", "quantity": 2}).status_code == 200

    admin.post("/sim/clock", {"time": "2026-01-05T15:16:00+05:30"})
    positions = {p["product"]: p["quantity"] for p in post(bp, "positionbook", apikey=key).json()["data"]}
    assert positions == {"MIS": 0, "CNC": 2}  # MIS squared off at 15:15, CNC kept
    strategies = [o["order_status"] for o in post(bp, "orderbook", apikey=key).json()["data"]["orders"]]
    assert strategies == ["complete"] * 3
    late = post(bp, "placeorder", **order)
    assert late.status_code == 400 and "15:15" in late.json()["message"]
    assert bp.stop() == 0
