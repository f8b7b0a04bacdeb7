"""The dashboard waits only for accounts it has nothing to show for; cached ones refresh in the background."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, update

from app.broker.client import OpenAlgoClient
from app.extensions import db
from app.models.accounts import TradingAccount
from app.services.account_data import refresher
from tests.helpers import Browserless, make_user, wait_until
from tests.support.paperbroker import ADMIN_TOKEN

SLOW_MS = 1_500
PAGE_WAIT_SECONDS = 600.0  # a page that waits on a refresh it should not wait for shows it as a hang
HOLD_SECONDS = 120.0  # a held broker read gives up after this (well inside PAGE_WAIT_SECONDS)


@pytest.fixture
def patient_app(app_factory, broker):
    """A page wait far longer than any call here, so a page that waits shows it."""
    application = app_factory(PAPER_BROKER_URL=broker.url, PAPER_BROKER_WS_URL=broker.ws_url,
                              PAPERBROKER_ADMIN_TOKEN=ADMIN_TOKEN, BROKER_READ_TIMEOUT=30.0,
                              DASHBOARD_WAIT_SECONDS=PAGE_WAIT_SECONDS)
    with application.app_context():
        yield application


@pytest.fixture
def carol(patient_app):
    make_user(patient_app, "carol")
    client = Browserless(patient_app.test_client())
    client.login("carol")
    return client


def add_account(client, broker, key):
    form = {"account_name": "Main", "host_url": broker.url, "websocket_url": broker.ws_url, "api_key": key}
    assert client.post_form("/accounts/add", form, page="/accounts/add").status_code in (200, 302)
    return db.session.scalars(select(TradingAccount)).one()


class HeldFunds:
    """Funds reads that hang until the test releases them, then go to the paper broker as usual:
    a broker that answers only when the test says so. Never held past HOLD_SECONDS."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()
        real = OpenAlgoClient.funds

        def funds(client: OpenAlgoClient):
            self.entered.set()
            self.released.wait(HOLD_SECONDS)
            return real(client)

        monkeypatch.setattr(OpenAlgoClient, "funds", funds)

    def release(self) -> None:
        self.released.set()


def make_stale(**values):
    db.session.execute(update(TradingAccount).values(last_checked_at=None, **values))
    db.session.commit()


def test_dashboard_with_cached_data_answers_before_a_slow_refresh_ends(carol, broker, apikey, monkeypatch):
    # Arrange: cached data, then the account's broker stops answering funds and its cache turns stale.
    account = add_account(carol, broker, apikey)
    assert carol.get("/api/dashboard").json["accounts"][0]["available_margin"] is not None
    held = HeldFunds(monkeypatch)
    make_stale()
    try:
        # Act: had the page waited on the refresh, it would answer only after HOLD_SECONDS, with
        # the refresh done (the page waits far longer than that).
        data = carol.get("/api/dashboard").json
        # Assert: the answer came from the cache while the refresh it started was still held.
        running = refresher()._inflight.get(account.id)
        assert running is not None, "the dashboard started no refresh"
        assert held.entered.wait(60), "the refresh never reached the broker"
        assert not running.done()
        [card] = data["accounts"]
        assert card["available_margin"] in ("1000000", "1000000.0")
    finally:
        held.release()
    result = running.result(timeout=60)  # the refresh still lands, in the background
    assert result.error is None
    db.session.expire_all()
    assert wait_until(lambda: db.session.get(TradingAccount, account.id).last_checked_at is not None)


def test_dashboard_waits_for_an_account_without_cached_data(carol, broker, apikey, sim):
    # Arrange: a slow account that has never been read.
    sim.post("/sim/faults", {"apikey": apikey, "latency_ms": SLOW_MS, "routes": ["funds"]})
    add_account(carol, broker, apikey)
    make_stale(last_data_at=None, last_funds=None)
    # Act
    data = carol.get("/api/dashboard").json
    # Assert: the page waited for it, so its card has figures.
    [card] = data["accounts"]
    assert card["available_margin"] in ("1000000", "1000000.0")
    assert card["data_age_seconds"] is not None
