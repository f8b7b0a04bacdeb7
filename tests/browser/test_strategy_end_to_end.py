"""The strategy builder end to end in a real browser: the built-in Iron condor template opened
from the Strategies page, its first leg moved one strike further out, three paper accounts
ticked, saved; the strategy page then resolves the changed leg, draws the payoff chart and sizes
each of the three accounts."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from playwright.sync_api import expect

from app.services.strategy import preview as preview_service
from tests.browser.conftest import TIMEOUT_MS, LiveServer, alice_with_paper_accounts, sign_in
from tests.support.paperbroker import START

pytestmark = pytest.mark.browser
ACCOUNTS = ("Alpha", "Beta", "Gamma")


@pytest.fixture
def builder_page(browser, app_factory, broker, sim, monkeypatch):
    """alice signed in with three paper accounts on the session paper broker (Alpha, the first,
    serves market data) and no strategy yet."""
    monkeypatch.setattr(preview_service, "utcnow", lambda: datetime.fromisoformat(START))
    sim.set_spot(NIFTY=26000, BANKNIFTY=59000, SENSEX=85000)
    keys = [sim.new_account() for _ in ACCOUNTS]
    application = app_factory()
    with application.app_context():
        alice_with_paper_accounts(application, broker, ACCOUNTS, keys)
    with LiveServer(application) as server:
        context = browser.new_context(base_url=server.url, viewport={"width": 1400, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        sign_in(page)
        yield page, errors
        context.close()
    for key in keys:
        sim.call("DELETE", f"/sim/accounts/{key}")


def test_iron_condor_built_in_the_browser_previews_the_changed_leg_chart_and_three_accounts(builder_page):
    page, errors = builder_page
    legs = page.locator("[data-legs] [data-leg]")

    page.locator("nav").get_by_test_id("nav-strategies").click()
    expect(page).to_have_url(re.compile(r"/strategy$"))
    page.get_by_test_id("use-template-Iron condor").click()
    expect(page).to_have_url(re.compile(r"/strategy/builder\?template=\d+$"))
    expect(legs).to_have_count(4)
    expect(page.locator("#name")).to_have_value("Iron condor")
    expect(page.locator("#legs-0-strike_offset")).to_have_value("2")

    page.fill("#name", "Condor end to end")
    page.fill("#legs-0-strike_offset", "3")  # the CE sell moves one strike further out
    for name in ACCOUNTS:
        box = page.get_by_label(f"Run on {name}")
        box.check()
        expect(box).to_be_checked()

    with page.expect_response(lambda r: re.search(r"/api/strategies/\d+/preview$", r.url) is not None,
                              timeout=TIMEOUT_MS) as answer:
        page.get_by_test_id("save-strategy").click()
    expect(page.get_by_test_id("flashes")).to_contain_text("Strategy Condor end to end saved.")
    expect(page).to_have_url(re.compile(r"/strategy/\d+$"))
    data = answer.value.json()
    assert data["status"] == "ok", data

    # The re-opened form and the resolved legs both carry the changed leg: 26000 + 3 × 50.
    expect(page.locator("#legs-0-strike_offset")).to_have_value("3")
    expect(page.locator("#legs-1-strike_offset")).to_have_value("6")
    for name in ACCOUNTS:
        expect(page.get_by_label(f"Run on {name}")).to_be_checked()
    resolved = page.get_by_test_id("preview-legs").locator("tbody tr")
    expect(resolved).to_have_count(4)
    symbols = ["NIFTY06JAN2626150CE", "NIFTY06JAN2626300CE", "NIFTY06JAN2625900PE", "NIFTY06JAN2625700PE"]
    for row, symbol in enumerate(symbols):
        expect(resolved.nth(row)).to_contain_text(symbol)
    assert [x["symbol"] for x in data["legs"]] == symbols

    payoff = data["payoff"]
    points = str(len(payoff["points"]))
    assert len(payoff["points"]) == preview_service.CHART_POINTS
    assert len(payoff["breakevens"]) == 2
    chart = page.get_by_test_id("payoff-chart")
    expect(chart).to_have_attribute("data-chart-state", "drawn")
    expect(chart).to_have_attribute("data-expiry-points", points)
    expect(chart).to_have_attribute("data-today-points", points)
    expect(chart).to_have_attribute("data-spot", payoff["spot"])
    expect(chart).to_have_attribute("data-breakevens", "2")
    expect(chart.locator("canvas").first).to_be_visible()

    sizing = page.get_by_test_id("preview-sizing").locator("tbody tr")
    expect(sizing).to_have_count(3)
    for row, name in enumerate(ACCOUNTS):
        expect(sizing.nth(row).locator("td").first).to_have_text(name)
        expect(sizing.nth(row)).to_contain_text("₹10,00,000")
    assert sorted(a["name"] for a in data["sizing"]["accounts"]) == list(ACCOUNTS)
    assert errors == []
