"""Playwright fixtures: the system Chromium against the app served on a loopback port."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta

import pytest
from werkzeug.serving import make_server

from tests.helpers import Browserless, make_user

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# One generous deadline for every Playwright action and expect(): a wait ends as soon as its
# condition holds, and a loaded CI machine can take seconds to render a page (Playwright's own
# default for expect() is 5 s).
TIMEOUT_MS = 30_000
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def _chromium_available() -> bool:
    return os.path.exists(CHROMIUM) or shutil.which("chromium") is not None


@pytest.fixture(scope="session")
def browser():
    if not _chromium_available():
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(f"Chromium not found at {CHROMIUM}; install the Debian 'chromium' package")
        pytest.skip("system Chromium not installed")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def alice_with_paper_accounts(application, broker, names, keys) -> Browserless:
    """alice on `application`, signed in (test client), with one paper account per (name, key)
    added through the add form; returns the signed-in client."""
    make_user(application, "alice")
    setup = Browserless(application.test_client())
    setup.login("alice")
    for name, key in zip(names, keys, strict=True):
        added = setup.post_form("/accounts/add", {"account_name": name, "host_url": broker.url,
                                                  "websocket_url": broker.ws_url, "api_key": key}, page="/accounts/add")
        assert added.status_code == 302
    return setup


@contextmanager
def strategy_page_with_services(browser, application, strategy_id: int) -> Iterator:
    """alice's strategy page on a live server whose process runs the background services (a
    ServiceRunner holding the lease: order engine, risk monitor …); confirmations are accepted.

    The app's trading clock (preview, planner, scheduler, risk monitor) runs from the paper broker's
    START (a Monday, 10:00 IST) at the wall clock's pace, whatever time the suite runs at: outside
    09:15–15:30 IST the planner would refuse to send, and between 15:00 and 15:30 IST the strategy's
    exit time would fall due mid-test (both happened in CI). Callers leave the paper clock at START."""
    import time as wall
    from unittest import mock

    from playwright.sync_api import expect

    from app.services.execution import planner, scheduler
    from app.services.risk import monitor
    from app.services.runner import ServiceRunner
    from app.services.strategy import preview
    from tests.support.paperbroker import START

    origin, began = datetime.fromisoformat(START), wall.monotonic()

    def trading_now() -> datetime:
        return origin + timedelta(seconds=wall.monotonic() - began)

    runner = ServiceRunner(application, ttl=6.0, renew_interval=2.0, retry_interval=0.5)
    with ExitStack() as patches:
        for module in (preview, planner, scheduler, monitor):
            patches.enter_context(mock.patch.object(module, "utcnow", trading_now))
        runner.start()
        try:
            with LiveServer(application) as server:
                context = browser.new_context(base_url=server.url, viewport={"width": 1400, "height": 1000})
                context.set_default_timeout(TIMEOUT_MS)
                page = context.new_page()
                page.on("dialog", lambda dialog: dialog.accept())  # the close buttons' confirmation
                sign_in(page)
                expect(page.get_by_test_id("engine-state")).to_contain_text("Engine online")
                page.goto(f"/strategy/{strategy_id}")
                yield page
                context.close()
        finally:
            runner.stop()


def sign_in(page, username: str = "alice", password: str | None = None) -> None:
    """Sign in through the login form and wait for the dashboard."""
    import re

    from playwright.sync_api import expect

    from tests.helpers import PASSWORD

    page.goto("/auth/login")
    page.fill("#identifier", username)
    page.fill("#password", password or PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))


class LiveServer:
    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.thread.join(timeout=30)


@pytest.fixture
def live_server(app_factory) -> Iterator[LiveServer]:
    with LiveServer(app_factory()) as server:
        yield server


@pytest.fixture
def new_page(browser, live_server):
    """Open a page in a fresh browser context (its own cookies), like a separate visitor."""
    contexts = []

    def open_page(viewport: dict | None = None):
        context = browser.new_context(base_url=live_server.url, viewport=viewport or {"width": 1280, "height": 800})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()
