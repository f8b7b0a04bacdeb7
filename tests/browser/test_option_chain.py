"""The option chain in a real browser: integer strikes, Indian-grouped OI, shaded in-the-money cells."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import TIMEOUT_MS, LiveServer, sign_in
from tests.helpers import Browserless, make_user
from tests.support.paperbroker import START

pytestmark = pytest.mark.browser
TRANSPARENT = "rgba(0, 0, 0, 0)"


@pytest.fixture
def chain_page(browser, app_factory, broker, sim):
    sim.post("/sim/clock", {"time": START, "frozen": True})
    sim.set_spot(NIFTY=26010, BANKNIFTY=59000, SENSEX=85000)
    key = sim.new_account()
    application = app_factory()
    make_user(application, "alice")
    with application.app_context():
        setup = Browserless(application.test_client())
        setup.login("alice")
        added = setup.post_form("/accounts/add", {"account_name": "Alpha", "host_url": broker.url,
                                                  "websocket_url": broker.ws_url, "api_key": key}, page="/accounts/add")
        assert added.status_code == 302
    with LiveServer(application) as server:
        context = browser.new_context(base_url=server.url, viewport={"width": 1400, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        sign_in(page)
        page.goto("/trading/option-chain")
        yield page
        context.close()
    sim.call("DELETE", f"/sim/accounts/{key}")


def _background(locator) -> str:
    return locator.evaluate("el => getComputedStyle(el).backgroundColor")


def test_chain_shows_integer_strikes_indian_grouped_oi_and_shaded_itm_cells(chain_page):
    page = chain_page
    atm = page.locator("tr[data-atm]")
    expect(atm).to_have_count(1)
    expect(atm.locator("[data-col=strike]")).to_have_text(re.compile(r"^26000\s*ATM$"))
    expect(page.locator("[data-chain-meta]")).to_contain_text("NIFTY 26,010.00 · ATM 26000")
    expect(atm.locator("[data-col=ce-oi]")).to_have_text("12,06,920")
    expect(atm.locator("[data-col=pe-oi]")).to_have_text("31,22,730")

    # Spot 26010: the 25900 call is in the money, the 25900 put is not.
    row = page.locator('tr[data-strike="25900"]')
    itm, otm = row.locator("[data-col=ce-ltp]"), row.locator("[data-col=pe-ltp]")
    expect(itm).to_have_attribute("data-itm", "1")
    expect(otm).not_to_have_attribute("data-itm", "1")
    assert _background(otm) == TRANSPARENT
    assert _background(itm) not in (TRANSPARENT, _background(otm))
    expect(row.locator("[data-col=ce-delta]")).to_have_text(re.compile(r"^0\.\d{4}$"))
    expect(row.locator("[data-col=ce-iv]")).to_have_text(re.compile(r"^\d+\.\d{2}$"))
