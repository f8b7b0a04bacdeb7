"""Order receive times (admin GET/DELETE /sim/orders/received): the broker's wall-clock arrival of
each recorded order, taken before any injected latency, per account and since a time."""

from __future__ import annotations

import time
from typing import Any

import httpx

SBIN = {"strategy": "t", "symbol": "SBIN", "exchange": "NSE", "action": "BUY", "quantity": 3,
        "pricetype": "MARKET", "product": "MIS"}


def receipts(admin: Any, **query: Any) -> list[dict[str, Any]]:
    resp = admin.http.get("/sim/orders/received", params=query)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["orders"])


def place(http: httpx.Client, key: str, **changes: Any) -> str:
    resp = http.post("/placeorder", json={"apikey": key, **SBIN, **changes})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["orderid"])


def test_each_order_has_its_wall_clock_receive_time_and_identity(http: httpx.Client, admin: Any,
                                                                 apikey: str) -> None:
    other = admin.new_account()
    try:
        sent_ms = time.time() * 1000.0
        first = place(http, apikey)
        second = place(http, apikey, action="SELL", quantity=2)
        place(http, other)  # another account's order is not in this account's list
        answered_ms = time.time() * 1000.0
        rows = receipts(admin, apikey=apikey)
        assert [(r["orderid"], r["symbol"], r["exchange"], r["action"], r["quantity"]) for r in rows] == [
            (first, "SBIN", "NSE", "BUY", 3), (second, "SBIN", "NSE", "SELL", 2)]
        # The broker's clock is frozen at 2026-01-05 (deterministic): the receipts are wall-clock times.
        for row in rows:
            assert sent_ms <= row["received_ms"] <= row["recorded_ms"] <= answered_ms
        assert rows[0]["received_ms"] <= rows[1]["received_ms"]
        later = receipts(admin, apikey=apikey, since_ms=rows[1]["received_ms"])
        assert [r["orderid"] for r in later] == [second]
    finally:
        admin.call("DELETE", f"/sim/accounts/{other}")


def test_receive_time_is_taken_before_the_injected_latency(http: httpx.Client, admin: Any, apikey: str) -> None:
    admin.set_faults(apikey, latency_ms=300, routes=["placeorder"])
    oid = place(http, apikey)
    [row] = receipts(admin, apikey=apikey)
    assert row["orderid"] == oid
    assert row["recorded_ms"] - row["received_ms"] >= 250  # the 300 ms sleep lies between the two


def test_an_order_refused_with_400_is_not_recorded_and_delete_forgets_all(http: httpx.Client, admin: Any,
                                                                          apikey: str) -> None:
    resp = http.post("/placeorder", json={"apikey": apikey, **SBIN, "quantity": 2.5})  # fractional: 400
    assert resp.status_code == 400
    assert receipts(admin, apikey=apikey) == []
    place(http, apikey)
    assert len(receipts(admin, apikey=apikey)) == 1
    cleared = admin.call("DELETE", "/sim/orders/received")["cleared"]
    assert cleared >= 1 and receipts(admin, apikey=apikey) == []


def test_an_unknown_account_is_404(admin: Any) -> None:
    resp = admin.http.get("/sim/orders/received", params={"apikey": "no-such-key"})
    assert resp.status_code == 404 and resp.json()["message"] == "account not found"
