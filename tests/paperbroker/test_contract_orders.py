"""Contract tests through the official openalgo SDK: orders, books, funds and rejections."""

from __future__ import annotations

from typing import Any

import openalgo
import pytest

Admin = Any


def _ok(resp: dict) -> dict:
    assert resp.get("status") == "success", resp
    return resp


def _nearest_nifty_ce(client: openalgo.api, offset: str = "ATM") -> str:
    expiries = _ok(client.expiry(symbol="NIFTY", exchange="NFO", instrumenttype="options"))["data"]
    resp = _ok(client.optionsymbol(underlying="NIFTY", exchange="NSE_INDEX", expiry_date=expiries[0].replace("-", ""),
                                   offset=offset, option_type="CE"))
    return str(resp["symbol"])


def test_funds_default_account_has_ten_lakh(client: openalgo.api) -> None:
    data = _ok(client.funds())["data"]
    assert data == {"availablecash": 1000000.0, "collateral": 0.0, "m2mrealized": 0.0, "m2munrealized": 0.0,
                    "utiliseddebits": 0.0}


def test_market_buy_then_sell_realizes_exact_pnl(client: openalgo.api, admin: Admin) -> None:
    ask = _ok(client.quotes(symbol="SBIN", exchange="NSE"))["data"]["ask"]
    buy = _ok(client.placeorder(symbol="SBIN", exchange="NSE", action="BUY", quantity=10, product="MIS"))
    admin.set_spot(SBIN=810)
    bid = _ok(client.quotes(symbol="SBIN", exchange="NSE"))["data"]["bid"]
    sell = _ok(client.placeorder(symbol="SBIN", exchange="NSE", action="SELL", quantity=10, product="MIS"))

    expected = round((bid - ask) * 10, 2)
    assert (ask, bid, expected) == (800.1, 809.9, 98.0)
    pos = _ok(client.positionbook())["data"]
    assert pos == [{"symbol": "SBIN", "exchange": "NSE", "product": "MIS", "quantity": 0, "average_price": 0.0,
                    "ltp": 810.0, "pnl": expected}]
    funds = _ok(client.funds())["data"]
    assert funds["m2mrealized"] == expected
    assert funds["availablecash"] == 1000000.0 + expected
    trades = _ok(client.tradebook())["data"]
    assert {(t["orderid"], t["action"], t["average_price"]) for t in trades} == {
        (buy["orderid"], "BUY", ask), (sell["orderid"], "SELL", bid)}
    book = _ok(client.orderbook())["data"]
    assert [o["order_status"] for o in book["orders"]] == ["complete", "complete"]
    assert book["statistics"]["total_completed_orders"] == 2
    status = _ok(client.orderstatus(order_id=buy["orderid"]))["data"]
    assert status["order_status"] == "complete" and status["average_price"] == ask


def test_order_above_freeze_quantity_is_rejected_with_clear_400(client: openalgo.api) -> None:
    symbol = _nearest_nifty_ce(client)
    resp = client.placeorder(symbol=symbol, exchange="NFO", action="BUY", quantity=2600, product="NRML")
    assert resp["status"] == "error" and resp["code"] == 400
    assert "exceeds the freeze quantity 1755" in resp["message"]
    assert _ok(client.orderbook())["data"]["orders"] == []


def test_splitorder_1755_yields_children_1755_and_845(client: openalgo.api) -> None:
    symbol = _nearest_nifty_ce(client)
    resp = _ok(client.splitorder(symbol=symbol, exchange="NFO", action="BUY", quantity=2600, splitsize=1755,
                                 product="NRML"))
    assert resp["total_quantity"] == 2600 and resp["split_size"] == 1755
    assert [(r["order_num"], r["quantity"], r["status"]) for r in resp["results"]] == [
        (1, 1755, "success"), (2, 845, "success")]
    pos = _ok(client.positionbook())["data"]
    assert pos[0]["symbol"] == symbol and pos[0]["quantity"] == 2600


@pytest.mark.parametrize(("quantity", "fragment"), [
    (70, "not a multiple of lot size 65"),
    (1.5, "Fractional quantity (1.5)"),
])
def test_option_order_with_bad_quantity_is_rejected(client: openalgo.api, quantity: float, fragment: str) -> None:
    resp = client.placeorder(symbol=_nearest_nifty_ce(client), exchange="NFO", action="BUY", quantity=quantity)
    assert resp["code"] == 400 and fragment in resp["message"]


def test_unknown_symbol_and_limit_without_price_are_rejected(client: openalgo.api) -> None:
    unknown = client.placeorder(symbol="NOPE", exchange="NSE", action="BUY", quantity=1)
    assert unknown["code"] == 400 and "Symbol NOPE not found on NSE" in unknown["message"]
    no_price = client.placeorder(symbol="SBIN", exchange="NSE", action="BUY", quantity=1, price_type="LIMIT")
    assert no_price["code"] == 400 and "LIMIT orders require price" in no_price["message"]


def test_futures_beyond_funds_are_rejected_for_margin(client: openalgo.api) -> None:
    fut = "NIFTY27JAN26FUT"
    ok = _ok(client.placeorder(symbol=fut, exchange="NFO", action="BUY", quantity=65, product="NRML"))
    assert ok["orderid"]
    funds = _ok(client.funds())["data"]
    assert 200000 < funds["utiliseddebits"] < 230000  # SPAN-like, about 12.5 % of notional
    big = client.placeorder(symbol=fut, exchange="NFO", action="SELL", quantity=65 * 27, product="MIS")
    assert big["code"] == 400 and "Insufficient funds" in big["message"]


def test_limit_order_rests_then_fills_when_price_crosses(client: openalgo.api, admin: Admin) -> None:
    oid = _ok(client.placeorder(symbol="SBIN", exchange="NSE", action="BUY", quantity=5, price_type="LIMIT",
                                price=790))["orderid"]
    assert _ok(client.orderstatus(order_id=oid))["data"]["order_status"] == "open"
    mod = _ok(client.modifyorder(order_id=oid, symbol="SBIN", action="BUY", exchange="NSE", price_type="LIMIT",
                                 product="MIS", quantity=6, price=795))
    assert mod["orderid"] == oid
    admin.set_spot(SBIN=794)
    data = _ok(client.orderstatus(order_id=oid))["data"]
    assert (data["order_status"], data["quantity"], data["price"]) == ("complete", 6, 795.0)
    assert data["average_price"] <= 795.0


def test_sl_order_triggers_then_fills(client: openalgo.api, admin: Admin) -> None:
    oid = _ok(client.placeorder(symbol="SBIN", exchange="NSE", action="SELL", quantity=5, price_type="SL-M",
                                trigger_price=780))["orderid"]
    assert _ok(client.orderstatus(order_id=oid))["data"]["order_status"] == "trigger pending"
    admin.set_spot(SBIN=779)
    assert _ok(client.orderstatus(order_id=oid))["data"]["order_status"] == "complete"


def test_cancel_and_cancelall_include_trigger_pending(client: openalgo.api) -> None:
    a = _ok(client.placeorder(symbol="SBIN", exchange="NSE", action="BUY", quantity=1, price_type="LIMIT",
                              price=700))["orderid"]
    b = _ok(client.placeorder(symbol="SBIN", exchange="NSE", action="BUY", quantity=1, price_type="SL",
                              price=901, trigger_price=900))["orderid"]
    c = _ok(client.placeorder(symbol="SBIN", exchange="NSE", action="BUY", quantity=1, price_type="LIMIT",
                              price=701))["orderid"]
    assert _ok(client.cancelorder(order_id=a))["orderid"] == a
    again = client.cancelorder(order_id=a)
    assert again["code"] == 400 and "Cannot cancel order in cancelled status" in again["message"]
    resp = _ok(client.cancelallorder())
    assert sorted(resp["canceled_orders"]) == sorted([b, c])
    assert resp["message"] == "Canceled 2 orders. Failed to cancel 0 orders."
    missing = client.orderstatus(order_id="999")
    assert missing["code"] == 404 and "Order 999 not found" in missing["message"]


def test_basket_places_buy_legs_before_sell_legs(client: openalgo.api) -> None:
    orders = [
        {"symbol": "SBIN", "exchange": "NSE", "action": "SELL", "quantity": 1, "pricetype": "MARKET", "product": "MIS"},
        {"symbol": "RELIANCE", "exchange": "NSE", "action": "BUY", "quantity": 1, "pricetype": "MARKET",
         "product": "MIS"},
        {"symbol": "NOPE", "exchange": "NSE", "action": "BUY", "quantity": 1, "pricetype": "MARKET", "product": "MIS"},
    ]
    results = _ok(client.basketorder(orders=orders))["results"]
    assert [(r["symbol"], r["status"]) for r in results] == [
        ("RELIANCE", "success"), ("NOPE", "error"), ("SBIN", "success")]
    assert "Symbol NOPE not found on NSE" in results[1]["message"]


def test_smart_order_trades_to_target_then_reports_matched(client: openalgo.api) -> None:
    _ok(client.placesmartorder(symbol="SBIN", exchange="NSE", action="BUY", quantity=0, position_size=10))
    assert _ok(client.openposition(symbol="SBIN", exchange="NSE", product="MIS"))["quantity"] == 10
    _ok(client.placesmartorder(symbol="SBIN", exchange="NSE", action="BUY", quantity=0, position_size=-5))
    assert _ok(client.openposition(symbol="SBIN", exchange="NSE", product="MIS"))["quantity"] == -5
    same = _ok(client.placesmartorder(symbol="SBIN", exchange="NSE", action="BUY", quantity=0, position_size=-5))
    assert same["message"] == "Positions Already Matched. No Action needed."
    assert _ok(client.openposition(symbol="RELIANCE", exchange="NSE", product="MIS"))["quantity"] == 0


def test_closeposition_squares_off_everything(client: openalgo.api) -> None:
    _ok(client.placeorder(symbol="SBIN", exchange="NSE", action="BUY", quantity=3))
    _ok(client.placeorder(symbol=_nearest_nifty_ce(client), exchange="NFO", action="SELL", quantity=65 * 2))
    assert _ok(client.closeposition())["message"] == "All Open Positions Squared Off"
    assert all(p["quantity"] == 0 for p in _ok(client.positionbook())["data"])
    assert _ok(client.funds())["data"]["utiliseddebits"] == 0.0


def test_cnc_buy_shows_in_holdings_and_sell_needs_holdings(client: openalgo.api) -> None:
    short = client.placeorder(symbol="SBIN", exchange="NSE", action="SELL", quantity=1, product="CNC")
    assert short["code"] == 400 and "Insufficient holdings" in short["message"]
    _ok(client.placeorder(symbol="SBIN", exchange="NSE", action="BUY", quantity=4, product="CNC"))
    data = _ok(client.holdings())["data"]
    assert [(h["symbol"], h["quantity"], h["product"]) for h in data["holdings"]] == [("SBIN", 4, "CNC")]
    assert data["statistics"]["totalinvvalue"] == 3200.4


def test_margin_endpoint_prices_a_basket(client: openalgo.api) -> None:
    data = _ok(client.margin(positions=[{"symbol": "NIFTY27JAN26FUT", "exchange": "NFO", "action": "BUY",
                                         "product": "NRML", "pricetype": "MARKET", "quantity": "65"}]))["data"]
    assert data["total_margin_required"] == pytest.approx(0.125 * 26000 * 65)
    assert data["span_margin"] + data["exposure_margin"] == pytest.approx(data["total_margin_required"])


def test_analyzer_toggle_adds_sandbox_keys(client: openalgo.api) -> None:
    assert _ok(client.analyzerstatus())["data"] == {"analyze_mode": False, "mode": "live", "total_logs": 0}
    toggled = _ok(client.analyzertoggle(mode=True))["data"]
    assert toggled["analyze_mode"] is True and toggled["message"] == "Analyzer mode switched to analyze"
    funds = _ok(client.funds())
    assert funds["mode"] == "analyze" and "grossexposure" in funds["data"]


def test_numbers_as_strings_option(broker: Any, admin: Admin) -> None:
    key = admin.new_account(numbers_as_strings=True)
    c = openalgo.api(api_key=key, host=broker.url, timeout=20.0)
    try:
        assert _ok(c.funds())["data"]["availablecash"] == "1000000.00"
        _ok(c.placeorder(symbol="SBIN", exchange="NSE", action="BUY", quantity=2))
        pos = _ok(c.positionbook())["data"][0]
        assert pos["quantity"] == "2" and isinstance(pos["average_price"], str)
        assert _ok(c.openposition(symbol="SBIN", exchange="NSE", product="MIS"))["quantity"] == "2"
    finally:
        c.close()
        admin.call("DELETE", f"/sim/accounts/{key}")
