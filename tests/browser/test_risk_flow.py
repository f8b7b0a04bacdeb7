"""The risk engine in a real browser: execute a short straddle with a max loss and a Supertrend exit on
two paper accounts, see the run page's premium chart with its Supertrend line, move NIFTY past the
max loss at the paper broker, see the run close by itself and the risk event on the risk events page.

The live server's process runs the services (a ServiceRunner holding the lease: the order engine and
the risk monitor). The paper broker's clock stays frozen at START (a Monday, 10:00 IST), so the legs
have that morning's 1-minute history (the chart's candles); the app's trading clock runs from START
(strategy_page_with_services), so the test does not depend on the hour it runs at.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import TIMEOUT_MS, alice_with_paper_accounts, strategy_page_with_services
from tests.support.paperbroker import START
from tests.support.strategies import body, leg, send

pytestmark = pytest.mark.browser
ACCOUNTS = ("Alpha", "Beta")
STRADDLE = [leg(strike_method="atm", strike_offset=0, option_type="CE", action="SELL"),
            leg(strike_method="atm", strike_offset=0, option_type="PE", action="SELL")]


@pytest.fixture
def risk_page(browser, app_factory, broker, sim):
    sim.post("/sim/clock", {"time": START, "frozen": True})
    sim.post("/sim/reset", {"keep_accounts": True})
    sim.set_spot(NIFTY=26000, BANKNIFTY=59000, SENSEX=85000)
    keys = [sim.new_account() for _ in ACCOUNTS]
    # The frozen clock stamps every tick with the same trade time: let the monitor use them.
    application = app_factory(RISK_PRICE_MAX_AGE_SECONDS=3600.0, PRICE_MAX_TICK_AGE_SECONDS=0.0)
    with application.app_context():
        setup = alice_with_paper_accounts(application, broker, ACCOUNTS, keys)
        ids = [a["id"] for a in setup.get("/api/accounts").get_json()["accounts"]]
        created = send(setup, "POST", "/api/strategies", body(
            name="Guarded straddle", legs=STRADDLE, risk_profile="fixed_lots", max_loss="3000",
            supertrend_enabled=True, supertrend_timeframe="1m", supertrend_period=7, supertrend_multiplier="3",
            accounts=[{"account_id": i, "lot_multiplier": "1"} for i in ids]))
        assert created.status_code == 201, created.get_json()
        strategy_id = created.get_json()["id"]
    try:
        with strategy_page_with_services(browser, application, strategy_id) as page:
            yield page
    finally:
        for key in keys:
            sim.call("DELETE", f"/sim/accounts/{key}")
        sim.post("/sim/clock", {"time": START, "frozen": True})
        sim.post("/sim/reset", {"keep_accounts": True})
        sim.set_spot(NIFTY=26000, BANKNIFTY=59000, SENSEX=85000)


def test_max_loss_closes_the_run_by_itself_and_the_event_appears(risk_page, sim):
    page = risk_page
    page.get_by_test_id("execute-button").click()
    expect(page).to_have_url(re.compile(r"/strategy/runs/\d+$"))
    run_id = page.url.rstrip("/").rsplit("/", 1)[1]
    for name in ACCOUNTS:
        intents = page.get_by_test_id(f"account-{name}").locator("[data-intent]")
        expect(intents).to_have_count(2)
        for n in range(2):
            expect(intents.nth(n)).to_have_attribute("data-state", "filled")
    panel = page.get_by_test_id("risk-panel")
    expect(panel).to_contain_text("Max loss ₹3000.00 at base size")
    expect(panel.locator('[data-field="risk-state"]')).to_contain_text("Watching")
    chart = page.get_by_test_id("premium-chart")
    expect(chart).to_have_attribute("data-chart-state", "drawn")
    expect(chart).to_have_attribute("data-line-points", re.compile(r"^[1-9]\d*$"))
    expect(chart.locator("canvas").first).to_be_visible()
    expect(chart).to_have_attribute("data-markers", "0")
    for name in ACCOUNTS:  # per-account scope at base size: each account's line is the builder's −₹3,000
        unit = panel.locator(f'[data-risk-unit="{name}"]')
        expect(unit).to_contain_text("₹-3000.00")
        expect(unit.locator('[data-field="pnl"]')).to_have_text(re.compile(r"^₹-?\d+\.\d\d$"))
    expect(panel).to_contain_text(re.compile(r"NIFTY\w+CE \d+\.\d\d \(\d+(\.\d)? s old\)"))

    # NIFTY 600 points up at the broker: the short call loses far more than ₹3,000 per account.
    sim.set_spot(NIFTY=26600)
    expect(page.get_by_test_id("run-status")).to_have_text("closed", timeout=TIMEOUT_MS * 2)
    for name in ACCOUNTS:
        held = page.get_by_test_id(f"account-{name}").locator('[data-field="held"]')
        expect(held).to_have_count(2)
        for n in range(2):
            expect(held.nth(n)).to_have_text("0")
    expect(page.get_by_test_id("exit-requests")).to_contain_text("risk")
    expect(chart).to_have_attribute("data-markers", re.compile(r"^[1-9]\d*$"))  # the risk exits, on the chart

    page.goto("/strategy/risk-events?type=max_loss")
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(2)  # per-account scope: one event per account
    expect(rows.first).to_contain_text("Max loss")
    expect(rows.first).to_contain_text("Guarded straddle")
    assert run_id
