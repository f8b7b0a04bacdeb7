"""The preview section of /strategy/<id> in a real browser: resolved legs, payoff and sizing
tables from the JSON, and nothing left on screen once the market-data account fails."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from playwright.sync_api import expect

from app.services.strategy import preview as preview_service
from tests.browser.conftest import TIMEOUT_MS, LiveServer, sign_in
from tests.helpers import Browserless, make_user
from tests.support.paperbroker import START
from tests.support.strategies import body, leg, send

pytestmark = pytest.mark.browser
CONDOR = [leg(strike_offset=2, option_type="CE", action="SELL"), leg(strike_offset=4, option_type="CE", action="BUY"),
          leg(strike_offset=2, option_type="PE", action="SELL"), leg(strike_offset=4, option_type="PE", action="BUY")]


@pytest.fixture
def preview_page(browser, app_factory, broker, sim, monkeypatch):
    monkeypatch.setattr(preview_service, "utcnow", lambda: datetime.fromisoformat(START))
    sim.set_spot(NIFTY=26000, BANKNIFTY=59000, SENSEX=85000)
    key = sim.new_account()
    application = app_factory()
    make_user(application, "alice")
    with application.app_context():
        setup = Browserless(application.test_client())
        setup.login("alice")
        added = setup.post_form("/accounts/add", {"account_name": "Alpha", "host_url": broker.url,
                                                  "websocket_url": broker.ws_url, "api_key": key}, page="/accounts/add")
        assert added.status_code == 302
        [account] = setup.get("/api/accounts").get_json()["accounts"]
        created = send(setup, "POST", "/api/strategies",
                       body(name="Condor", legs=CONDOR, accounts=[{"account_id": account["id"]}]))
        assert created.status_code == 201, created.get_json()
        strategy_id = created.get_json()["id"]
    with LiveServer(application) as server:
        context = browser.new_context(base_url=server.url, viewport={"width": 1400, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        sign_in(page)
        page.goto(f"/strategy/{strategy_id}")
        yield page, key
        context.close()
    sim.call("DELETE", "/sim/faults")
    sim.call("DELETE", f"/sim/accounts/{key}")


def test_preview_shows_legs_payoff_and_sizing_then_nothing_stale_when_the_source_fails(preview_page, sim):
    page, key = preview_page
    legs = page.get_by_test_id("preview-legs").locator("tbody tr")
    expect(legs).to_have_count(4)
    expect(legs.nth(0)).to_contain_text("NIFTY06JAN2626100CE")
    expect(legs.nth(3)).to_contain_text("NIFTY06JAN2625800PE")
    expect(page.locator('[data-preview-field="max_profit"]')).to_have_text(re.compile(r"^₹[\d,]+\.\d\d$"))
    expect(page.locator('[data-preview-field="max_loss"]')).to_have_text(re.compile(r"^-₹[\d,]+\.\d\d$"))
    breakevens = re.compile(r"^25,8\d\d\.\d\d · 26,1\d\d\.\d\d$")
    expect(page.locator('[data-preview-field="breakevens"]')).to_have_text(breakevens)
    expect(page.get_by_test_id("preview-payoff").locator("tbody tr")).to_have_count(21)
    sizing = page.get_by_test_id("preview-sizing").locator("tbody tr")
    expect(sizing).to_have_count(1)
    expect(sizing.nth(0)).to_contain_text("Alpha")
    expect(sizing.nth(0)).to_contain_text("₹10,00,000")
    expect(sizing.nth(0).locator('[data-sizing-leg="1"]')).to_have_text(
        re.compile(r"^L1 \d+ lots · [\d,]+ qty · \d+ orders? \([\d, +]+\)$"))
    total = page.get_by_test_id("preview-sizing").locator("[data-sizing-total]")
    expect(total).to_contain_text("Total (1 account trades)")
    expect(total.locator('[data-sizing-leg="4"]')).to_have_text(re.compile(r"^L4 \d+ lots · [\d,]+ qty · \d+ orders?$"))

    sim.post("/sim/faults", {"apikey": key, "error_rate": 1.0})
    page.get_by_test_id("preview-refresh").click()

    expect(page.get_by_test_id("preview-error")).to_contain_text("Market-data account Alpha failed")
    expect(page.get_by_test_id("preview-payoff")).to_be_hidden()
    expect(page.get_by_test_id("preview-sizing")).to_be_hidden()
    expect(legs.nth(0)).not_to_contain_text("NIFTY06JAN2626100CE")
    expect(page.locator("[data-leg-error=market_data_down]")).to_have_count(4)
