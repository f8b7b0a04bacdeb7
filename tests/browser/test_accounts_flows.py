"""Accounts and the live dashboard in a real browser, against a paper broker the test can stop."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import TIMEOUT_MS, LiveServer, sign_in
from tests.helpers import make_user
from tests.support.paperbroker import ADMIN_TOKEN, start_broker

pytestmark = pytest.mark.browser
PASSWORD = "Str0ng!Passw0rd"


@pytest.fixture
def own_broker():
    bp = start_broker("--no-rate-limit", accounts=0)
    yield bp
    if bp.proc.poll() is None:
        bp.stop()


@pytest.fixture
def trading_server(app_factory, own_broker):
    application = app_factory(
        PAPER_BROKER_URL=own_broker.url, PAPER_BROKER_WS_URL=own_broker.ws_url, PAPERBROKER_ADMIN_TOKEN=ADMIN_TOKEN,
        CONNECTION_MONITOR_INTERVAL=1.0, PING_RETRY_SECONDS=0.2, ACCOUNT_REFRESH_INTERVAL=2.0,
        BROKER_READ_TIMEOUT=2.0, BROKER_CONNECT_TIMEOUT=1.0, PRICE_MAX_TICK_AGE_SECONDS=0)
    make_user(application, "alice")
    with LiveServer(application) as server:
        yield server


@pytest.fixture
def page(browser, trading_server):
    context = browser.new_context(base_url=trading_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    sign_in(page)
    yield page
    context.close()


def add_paper(page):
    page.goto("/accounts/manage")
    page.get_by_test_id("add-paper").click()
    expect(page.get_by_test_id("flashes")).to_contain_text("added with virtual funds")


def test_add_paper_account_and_see_its_funds_on_the_dashboard(page):
    add_paper(page)
    expect(page.get_by_test_id("paper-badge")).to_be_visible()
    page.goto("/dashboard")
    card = page.get_by_test_id("card-Paper 1")
    expect(card.locator('[data-field="available_margin"]')).to_have_text(re.compile(r"₹\s?10,00,000\.00"))
    expect(card.locator('[data-field="status"]')).to_have_text("connected")


def test_stopped_broker_shows_disconnected_within_two_cycles_and_page_loads(page, trading_server, own_broker):
    from app.services.runner import ensure_runner

    add_paper(page)
    runner = ensure_runner(trading_server.app, ttl=3.0, renew_interval=0.5, retry_interval=0.5)
    try:
        page.goto("/dashboard")
        status = page.get_by_test_id("card-Paper 1").locator('[data-field="status"]')
        expect(status).to_have_text("connected")
        # The premise is "last good data": wait until the first funds are cached and shown (a loaded
        # machine may need more than one poll) before the broker goes away.
        margin = page.get_by_test_id("card-Paper 1").locator('[data-field="available_margin"]')
        expect(margin).to_have_text(re.compile(r"10,00,000"), timeout=60_000)
        own_broker.stop()
        # Two monitor cycles (1 s each, three strikes per cycle) plus one dashboard poll (5 s): about
        # 12 s on a quiet machine; the deadline leaves room for a loaded one.
        expect(status).to_have_text("disconnected", timeout=60_000)
        page.reload()
        expect(page.get_by_test_id("dashboard-title")).to_be_visible()
        card = page.get_by_test_id("card-Paper 1")
        expect(card.locator('[data-field="status"]')).to_have_text("disconnected")
        expect(card.locator('[data-field="available_margin"]')).to_have_text(re.compile(r"10,00,000"))  # last good
    finally:
        runner.stop()


def test_mark_primary_and_delete(page):
    add_paper(page)
    add_paper(page)
    card = page.locator('[data-account="Paper 2"]')
    expect(card.get_by_test_id("primary-badge")).to_have_count(0)
    page.get_by_test_id("make-primary-Paper 2").click()
    expect(page.get_by_test_id("flashes")).to_contain_text("Paper 2 is now primary")
    expect(page.locator('[data-account="Paper 2"]').get_by_test_id("primary-badge")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("delete-Paper 1").click()
    expect(page.get_by_test_id("flashes")).to_contain_text("Account deleted")
    expect(page.locator('[data-account="Paper 1"]')).to_have_count(0)
    expect(page.locator('[data-account="Paper 2"]')).to_be_visible()
