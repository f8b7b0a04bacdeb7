"""Margin calculator over real HTTP against the paper broker (₹10,00,000 per paper account).

"Today" is pinned to a day chosen from the broker's own NIFTY expiry list (its first expiry,
or the day after it), because the rate depends on whether today is an expiry day.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from app.broker.client import OpenAlgoClient
from app.domain.expiries import parse_expiries
from app.extensions import db
from app.models.accounts import TradingAccount
from app.services.margin import calculator
from tests.helpers import Browserless, make_user

API = "/api/margin/calculate"


def add(client, broker, key, name="Main") -> int:
    form = {"account_name": name, "host_url": broker.url, "websocket_url": broker.ws_url, "api_key": key}
    assert client.post_form("/accounts/add", form, page="/accounts/add").status_code == 302
    db.session.expire_all()
    return db.session.scalars(select(TradingAccount.id).where(TradingAccount.account_name == name)).one()


@pytest.fixture
def nifty_expiries(broker, apikey) -> tuple[date, ...]:
    client = OpenAlgoClient(broker.url, apikey)
    try:
        return parse_expiries(client.expiries("NIFTY", "NFO"))
    finally:
        client.close()


def pin_today(monkeypatch, day: date) -> None:
    at = datetime(day.year, day.month, day.day, 5, 0, tzinfo=UTC)  # 10:30 IST
    monkeypatch.setattr(calculator, "utcnow", lambda: at)


@pytest.fixture
def non_expiry_day(monkeypatch, nifty_expiries) -> date:
    day = nifty_expiries[0] + timedelta(days=1)
    assert day not in nifty_expiries
    pin_today(monkeypatch, day)
    return day


def no_broker_margin(sim, key: str) -> None:
    """The broker's /margin fails (HTTP 500): the margin table is the fallback."""
    sim.post("/sim/faults", {"apikey": key, "error_rate": 1.0, "routes": ["margin"]})


def calc(client, accounts, **overrides):
    body = {"accounts": accounts, "underlying": "NIFTY", "trade_type": "ce_or_pe_sell", "share": "grade:B",
            "allowed_splits": 1, **overrides}
    return client.post_json(API, body, page="/margin/calculator")


def test_grade_b_nifty_sell_non_expiry_from_the_table_gives_2_lots(alice, broker, sim, apikey, non_expiry_day):
    account_id = add(alice, broker, apikey)
    no_broker_margin(sim, apikey)
    response = calc(alice, [account_id])
    assert response.status_code == 200, response.json
    data = response.json
    assert data["margin_source"] == "margin_table"
    assert data["margin_per_strategy_lot"] == "250000.00"
    assert data["expiry_day"] == {"NIFTY": {"expiry_day": False, "known": True}}
    assert data["formula"] == ("available margin = available cash (OpenAlgo /funds availablecash; "
                               "collateral shown, not added)")
    assert data["contract"]["lot_size"] == 65 and data["contract"]["lot_source"] == "broker"
    assert data["contract"]["max_lots_per_order"] == 27
    [row] = data["accounts"]
    assert row["error"] is None
    assert row["available_margin"] == "1000000.00"
    assert row["usable_margin"] == "650000.00"
    assert (row["strategy_lots"], row["lots"], row["binding"], row["skip_reason"]) == (2, [2], "profile", None)
    assert row["margin_used"] == "500000.00"
    assert row["legs"] == [{"lots": 2, "quantity": 130, "child_orders": 1, "child_quantities": [130]}]


def test_expiry_day_rate_from_the_broker_expiry_list(alice, broker, sim, apikey, monkeypatch, nifty_expiries):
    pin_today(monkeypatch, nifty_expiries[0])
    account_id = add(alice, broker, apikey)
    no_broker_margin(sim, apikey)
    data = calc(alice, [account_id]).json
    assert data["expiry_day"] == {"NIFTY": {"expiry_day": True, "known": True}}
    assert data["margin_per_strategy_lot"] == "205000.00"
    assert data["accounts"][0]["strategy_lots"] == 3  # floor(6,50,000 / 2,05,000)


def test_broker_basket_margin_is_used_when_the_broker_answers(alice, broker, apikey, non_expiry_day):
    account_id = add(alice, broker, apikey)
    data = calc(alice, [account_id]).json
    # The paper broker holds 15 % of the notional for a short option: 0.15 × 26,000 × 65.
    assert data["margin_source"] == "broker_basket"
    assert data["margin_per_strategy_lot"] == "253500.00"
    assert data["margin_lines"] == []
    [row] = data["accounts"]
    assert (row["strategy_lots"], row["binding"]) == (2, "profile")
    assert data["contract"]["symbol"].startswith("NIFTY") and data["contract"]["symbol"].endswith("26000CE")


def test_straddle_table_margin_is_one_pair_and_page_shows_it(alice, broker, sim, apikey, non_expiry_day):
    account_id = add(alice, broker, apikey)
    no_broker_margin(sim, apikey)
    data = calc(alice, [account_id], trade_type="ce_and_pe_sell", share="profile:aggressive").json
    assert data["margin_per_strategy_lot"] == "320000.00"
    assert data["margin_lines"] == [{"underlying": "NIFTY", "trade_type": "ce_and_pe_sell", "lots": 1,
                                     "rate": "320000.00", "amount": "320000.00"}]
    assert data["accounts"][0]["strategy_lots"] == 2  # floor(8,00,000 / 3,20,000)
    assert data["accounts"][0]["lots"] == [2, 2]

    page = alice.get(f"/margin/calculator/results?accounts={account_id}&underlying=NIFTY&trade_type=ce_and_pe_sell"
                     "&share=profile:aggressive&allowed_splits=1")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'data-testid="margin-per-lot">₹3,20,000<' in html and "margin table" in html
    assert 'data-testid="usable">₹8,00,000<' in html and 'data-testid="lots">2<' in html
    assert "available cash (OpenAlgo /funds availablecash" in html


def test_zero_lots_shows_the_skip_reason(alice, broker, sim, apikey, non_expiry_day):
    account_id = add(alice, broker, apikey)
    sim.post(f"/sim/accounts/{apikey}/funds", {"funds": 120000})
    no_broker_margin(sim, apikey)
    [row] = calc(alice, [account_id]).json["accounts"]
    assert row["strategy_lots"] == 0 and row["lots"] == [0]
    assert row["skip_reason"] == "available ₹1,20,000 < ₹2,50,000 for one lot"


def test_a_failing_account_is_an_error_row_and_the_others_are_sized(alice, broker, sim, apikey, non_expiry_day):
    good = add(alice, broker, apikey, "Good")
    bad_key = sim.new_account()
    try:
        bad = add(alice, broker, bad_key, "Bad")
        sim.post("/sim/faults", {"apikey": bad_key, "error_rate": 1.0, "routes": ["funds"]})
        no_broker_margin(sim, apikey)
        rows = {r["name"]: r for r in calc(alice, [good, bad]).json["accounts"]}
        assert rows["Good"]["strategy_lots"] == 2 and rows["Good"]["error"] is None
        assert rows["Bad"]["error"] and rows["Bad"]["strategy_lots"] is None and rows["Bad"]["account_id"] == bad
    finally:
        sim.call("DELETE", f"/sim/accounts/{bad_key}")


def test_another_users_account_id_is_refused_without_its_data(alice, broker, apikey, paper_app, non_expiry_day):
    account_id = add(alice, broker, apikey)
    make_user(paper_app, "mallory")
    mallory = Browserless(paper_app.test_client())
    mallory.login("mallory")
    response = calc(mallory, [account_id])
    assert response.status_code == 404
    assert response.json["errors"] == {"accounts": [f"not one of your active accounts: {account_id}"]}
    assert "Main" not in response.get_data(as_text=True) and "1000000" not in response.get_data(as_text=True)
    page = mallory.get(f"/margin/calculator/results?accounts={account_id}&underlying=NIFTY&trade_type=futures"
                       "&share=grade:A&allowed_splits=1")
    assert page.status_code == 400
    html = page.get_data(as_text=True)
    assert 'data-field-error="accounts"' in html and "Main" not in html


def test_an_inactive_account_is_refused(alice, broker, apikey, non_expiry_day):
    account_id = add(alice, broker, apikey)
    account = db.session.get(TradingAccount, account_id)
    account.is_active = False
    db.session.commit()
    assert calc(alice, [account_id]).status_code == 404


@pytest.mark.parametrize("overrides,field", [
    ({"accounts": []}, "accounts"),
    ({"accounts": ["abc"]}, None),  # not a whole number: no such account (404)
    ({"underlying": "NOPE"}, "underlying"),
    ({"underlying": "NIF\x00TY"}, "underlying"),
    ({"trade_type": "straddle"}, "trade_type"),
    ({"share": "grade:Z"}, "share"),
    ({"share": "profile:fixed_lots"}, "share"),
    ({"allowed_splits": 0}, "allowed_splits"),
    ({"allowed_splits": -1}, "allowed_splits"),
    ({"allowed_splits": "x"}, "allowed_splits"),
])
def test_bad_input_gives_field_errors(alice, broker, apikey, overrides, field):
    account_id = add(alice, broker, apikey)
    body = {"accounts": [account_id], **overrides}
    response = calc(alice, body.pop("accounts"), **body)
    if field is None:
        assert response.status_code == 404
    else:
        assert response.status_code == 400, response.json
        assert field in response.json["errors"]


def test_calculate_without_csrf_is_refused(alice, broker, apikey):
    account_id = add(alice, broker, apikey)
    response = alice.post(API, json={"accounts": [account_id], "underlying": "NIFTY", "trade_type": "futures",
                                     "share": "grade:A", "allowed_splits": 1})
    assert response.status_code == 400


def test_calculator_page_without_query_is_a_plain_form(alice, broker, apikey):
    add(alice, broker, apikey)
    page = alice.get("/margin/calculator")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-testid="calculator-form"' in html and 'data-testid="calc-table"' not in html
    assert "Grade B (65 %)" in html


def test_calculations_use_the_heavy_rate_tier_and_opening_the_form_does_not(app_factory):
    application = app_factory(RATELIMIT_HEAVY="2 per minute")
    make_user(application, "zoe")
    zoe = Browserless(application.test_client())
    zoe.login("zoe")
    assert [zoe.get("/margin/calculator").status_code for _ in range(4)] == [200] * 4
    codes = [zoe.post_json(API, {"accounts": [], "underlying": "NIFTY"}, page="/dashboard").status_code,
             zoe.get("/margin/calculator/results?underlying=NIFTY").status_code,
             zoe.post_json(API, {"accounts": [], "underlying": "NIFTY"}, page="/dashboard").status_code]
    assert codes == [400, 400, 429]


def test_a_repeated_account_id_is_sized_once(alice, broker, sim, apikey, non_expiry_day):
    account_id = add(alice, broker, apikey)
    no_broker_margin(sim, apikey)
    rows = calc(alice, [account_id, account_id]).json["accounts"]
    assert [r["account_id"] for r in rows] == [account_id]


def test_a_hanging_account_becomes_an_error_row_after_the_read_timeout(alice, broker, sim, apikey, non_expiry_day):
    good = add(alice, broker, apikey, "Good")
    slow_key = sim.new_account()
    try:
        add(alice, broker, slow_key, "Slow")
        slow = db.session.scalars(select(TradingAccount.id).where(TradingAccount.account_name == "Slow")).one()
        sim.post("/sim/faults", {"apikey": slow_key, "latency_ms": 60_000, "routes": ["funds"]})
        no_broker_margin(sim, apikey)
        started = time.monotonic()
        rows = {r["name"]: r for r in calc(alice, [good, slow]).json["accounts"]}
        elapsed = time.monotonic() - started
        assert rows["Good"]["strategy_lots"] == 2
        assert rows["Slow"]["error"] and rows["Slow"]["strategy_lots"] is None
        assert elapsed < 45  # the 3 s read timeout ended it, not the broker's 60 s latency
    finally:
        sim.call("DELETE", f"/sim/accounts/{slow_key}")
