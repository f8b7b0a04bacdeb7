"""Execute an iron condor on three paper accounts in a real browser, watch the run page reach
filled on every leg, close one account's part, then the rest, and see the positions page flat.

The order engine runs in the live server's process (a ServiceRunner holding the lease), against
the paper broker at 2026-01-05 10:00 IST with NIFTY at 26,000.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import TIMEOUT_MS, alice_with_paper_accounts, strategy_page_with_services
from tests.support.strategies import body, leg, send

pytestmark = pytest.mark.browser
ACCOUNTS = ("Alpha", "Beta", "Gamma")
CONDOR = [leg(strike_offset=2, option_type="CE", action="SELL"), leg(strike_offset=4, option_type="CE", action="BUY"),
          leg(strike_offset=2, option_type="PE", action="SELL"), leg(strike_offset=4, option_type="PE", action="BUY")]
FLAT_DEADLINE_S = 60


@pytest.fixture
def execution_page(browser, app_factory, broker, sim):
    pytest.importorskip("app.services.execution.engine")
    sim.set_spot(NIFTY=26000, BANKNIFTY=59000, SENSEX=85000)
    keys = [sim.new_account() for _ in ACCOUNTS]
    application = app_factory()
    with application.app_context():
        setup = alice_with_paper_accounts(application, broker, ACCOUNTS, keys)
        ids = [a["id"] for a in setup.get("/api/accounts").get_json()["accounts"]]
        created = send(setup, "POST", "/api/strategies",
                       body(name="Condor", legs=CONDOR, risk_profile="fixed_lots",
                            accounts=[{"account_id": i, "lot_multiplier": "1"} for i in ids]))
        assert created.status_code == 201, created.get_json()
        strategy_id = created.get_json()["id"]
    try:
        with strategy_page_with_services(browser, application, strategy_id) as page:
            yield page
    finally:
        sim.call("DELETE", "/sim/faults")
        for key in keys:
            sim.call("DELETE", f"/sim/accounts/{key}")


def _expect_account_filled(page, name: str) -> None:
    card = page.get_by_test_id(f"account-{name}")
    expect(card.locator("[data-intent]")).to_have_count(4)
    for n in range(4):
        expect(card.locator("[data-intent]").nth(n)).to_have_attribute("data-state", "filled")


def _expect_account_flat(page, name: str) -> None:
    # Judged on the live page: after the close's redirect, only the page's JSON poll re-renders
    # the cards (no reload), so a page that stops following the run fails here.
    held = page.get_by_test_id(f"account-{name}").locator('[data-field="held"]')
    expect(held).to_have_count(4, timeout=TIMEOUT_MS * 2)
    for n in range(4):
        expect(held.nth(n)).to_have_text("0", timeout=TIMEOUT_MS * 2)


def _positions_flat(page) -> bool:
    page.goto("/trading/positions")
    rows = page.get_by_test_id("book-table").locator("tbody tr")
    texts = [rows.nth(i).locator("td").all_inner_texts() for i in range(rows.count())]
    if len(texts) == 1 and len(texts[0]) == 1:
        return texts[0][0].strip() == "Nothing to show."
    return all(cells[4].strip() == "0" for cells in texts)


def test_execute_condor_on_three_accounts_fills_then_closes_flat(execution_page):
    page = execution_page
    boxes = page.get_by_test_id("execute-form").locator('input[name="account_ids"]')
    expect(boxes).to_have_count(3)
    for n in range(3):
        expect(boxes.nth(n)).to_be_checked()

    page.get_by_test_id("execute-button").click()

    expect(page).to_have_url(re.compile(r"/strategy/runs/\d+$"))
    for name in ACCOUNTS:
        _expect_account_filled(page, name)
    expect(page.locator('[data-latency="fill"]')).to_contain_text("(12)")

    page.get_by_test_id("close-account-Alpha").click()
    expect(page).to_have_url(re.compile(r"/strategy/runs/\d+$"))
    _expect_account_flat(page, "Alpha")
    held_beta = page.get_by_test_id("account-Beta").locator('[data-field="held"]')
    expect(held_beta.nth(0)).to_have_text("-65")

    page.get_by_test_id("close-run").click()
    for name in ACCOUNTS:
        _expect_account_flat(page, name)
    expect(page.get_by_test_id("run-status")).to_have_text("closed")

    deadline = time.monotonic() + FLAT_DEADLINE_S
    while not _positions_flat(page):  # the positions page reads the brokers' books (cached briefly)
        assert time.monotonic() < deadline, "positions page not flat"
        page.wait_for_timeout(1000)
