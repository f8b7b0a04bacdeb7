"""Raw HTTP tests for what the SDK hides: validation styles, status codes, 404/403/429 bodies."""

from __future__ import annotations

import ast
from typing import Any

import httpx
import pytest

ORDER = {"strategy": "t", "symbol": "SBIN", "exchange": "NSE", "action": "BUY", "quantity": 1,
         "pricetype": "MARKET", "product": "MIS"}


def test_unknown_field_on_account_endpoint_is_style_a(http: httpx.Client, apikey: str) -> None:
    resp = http.post("/funds", json={"apikey": apikey, "strategy": "x"})
    assert resp.status_code == 400
    assert resp.json() == {"status": "error", "message": {"strategy": ["Unknown field."]}}


def test_unknown_field_on_order_endpoint_is_stringified_style_b(http: httpx.Client, apikey: str) -> None:
    resp = http.post("/placeorder", json={"apikey": apikey, **ORDER, "target": 5})
    assert resp.status_code == 400
    body = resp.json()
    assert body["status"] == "error" and isinstance(body["message"], str)
    assert ast.literal_eval(body["message"]) == {"target": ["Unknown field."]}


@pytest.mark.parametrize("endpoint", ["cancelorder", "orderstatus", "placeorder", "closeposition",
                                      "cancelallorder", "openposition", "modifyorder", "splitorder"])
def test_strategy_is_required(http: httpx.Client, apikey: str, endpoint: str) -> None:
    body = {"apikey": apikey, **{k: v for k, v in ORDER.items() if k != "strategy"}, "orderid": "1"}
    resp = http.post(f"/{endpoint}", json=body)
    assert resp.status_code == 400
    errors = ast.literal_eval(resp.json()["message"])
    assert errors["strategy"] == ["Missing data for required field."]


def test_options_endpoints_use_style_c_and_greeks_style_d(http: httpx.Client, apikey: str) -> None:
    c = http.post("/optionsymbol", json={"apikey": apikey, "underlying": "NIFTY", "exchange": "NSE_INDEX",
                                         "expiry_date": "06JAN26", "offset": "ATM5", "option_type": "CE"})
    assert c.status_code == 400
    assert c.json() == {"status": "error", "message": "Validation error",
                        "errors": {"offset": ["Offset must be ATM, ITM1-ITM50, or OTM1-OTM50"]}}
    d = http.post("/optiongreeks", json={"apikey": apikey, "symbol": "X", "exchange": "NSE"})
    assert d.status_code == 400
    assert d.json() == {"status": "error", "message": "Validation failed",
                        "errors": {"exchange": ["Must be one of: NFO, BFO, MCX, CDS, NCO, BCD, NCDEX, CRYPTO."]}}


@pytest.mark.parametrize(("field", "value", "message"), [
    ("quantity", "abc", "Not a valid number."),
    ("quantity", 0, "Must be greater than 0."),
    ("price", -1, "Must be greater than or equal to 0."),
    ("action", "HOLD", "Must be one of: BUY, SELL."),
    ("exchange", "nse", "Must be one of: NSE, NFO, CDS, BSE, BFO, BCD, MCX, NCDEX, NCO, NSE_INDEX, BSE_INDEX, "
                        "MCX_INDEX, GLOBAL_INDEX, CRYPTO."),
    ("symbol", 5, "Not a valid string."),
    ("disclosed_quantity", 1.5, "Not a valid integer."),
])
def test_wrong_types_are_rejected_with_marshmallow_messages(http: httpx.Client, apikey: str, field: str,
                                                            value: Any, message: str) -> None:
    resp = http.post("/placeorder", json={"apikey": apikey, **ORDER, field: value})
    assert resp.status_code == 400
    assert ast.literal_eval(resp.json()["message"]) == {field: [message]}


def test_numeric_strings_and_lowercase_action_are_accepted(http: httpx.Client, apikey: str) -> None:
    resp = http.post("/placeorder", json={"apikey": apikey, **ORDER, "action": "buy", "quantity": "2",
                                          "price": "0", "disclosed_quantity": "0"})
    assert resp.status_code == 200 and resp.json()["orderid"].isdigit()
    assert len(resp.json()["orderid"]) == 14 and resp.json()["orderid"].startswith("260105")


def test_bad_key_is_403_and_greeks_401(http: httpx.Client) -> None:
    resp = http.post("/funds", json={"apikey": "nope"})
    assert resp.status_code == 403
    assert resp.json() == {"status": "error", "message": "Invalid openalgo apikey"}
    greeks = http.post("/optiongreeks", json={"apikey": "nope", "symbol": "X", "exchange": "NFO"})
    assert greeks.status_code == 401


def test_missing_apikey_is_a_400_not_403(http: httpx.Client) -> None:
    resp = http.post("/ping", json={}, headers={"X-API-KEY": "whatever"})
    assert resp.status_code == 400
    assert resp.json() == {"status": "error", "message": {"apikey": ["Missing data for required field."]}}


def test_unknown_route_and_get_on_post_route_are_json_404(http: httpx.Client) -> None:
    for resp, path in ((http.get("/ping"), "/api/v1/ping"), (http.post("/nope", json={}), "/api/v1/nope")):
        assert resp.status_code == 404
        assert resp.json() == {"status": "error", "message": "Not found", "path": path}


def test_trailing_slash_is_optional(http: httpx.Client, apikey: str) -> None:
    resp = http.post("/ping/", json={"apikey": apikey})
    assert resp.json() == {"status": "success", "data": {"message": "pong", "broker": "paper"}}


def test_malformed_json_is_400_and_form_body_is_500(http: httpx.Client) -> None:
    bad = http.post("/ping", content=b"{nope", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400
    assert bad.json() == {"message": "The browser (or proxy) sent a request that this server could not understand."}
    form = http.post("/ping", data={"apikey": "x"})
    assert form.status_code == 500
    assert form.json() == {"status": "error", "message": "An unexpected error occurred"}


def test_rate_limit_429_body_per_route(http: httpx.Client, admin: Any, apikey: str) -> None:
    admin.post("/sim/ratelimits", {"enabled": True, "order": 3, "api": 5})  # small: fits in 1 s on a busy box
    try:
        codes = [http.post("/ping", json={"apikey": apikey}).status_code for _ in range(8)]
        orders = [http.post("/placeorder", json={"apikey": "bad"}) for _ in range(5)]
    finally:
        admin.post("/sim/ratelimits", {"enabled": False, "order": 10, "api": 50})
    assert codes == [200] * 5 + [429] * 3
    assert [r.status_code for r in orders] == [400] * 3 + [429] * 2  # a separate counter per route
    limited = orders[-1]
    assert limited.json() == {"message": "3 per 1 second"} and "Retry-After" not in limited.headers


def test_admin_api_requires_the_token(broker: Any) -> None:
    resp = httpx.get(f"{broker.url}/sim/status", headers={"X-Admin-Token": "wrong"})
    assert resp.status_code == 403
    assert httpx.get(f"{broker.url}/sim/status").status_code == 403


def test_health_status(broker: Any) -> None:
    assert httpx.get(f"{broker.url}/health/status").json()["status"] == "pass"
