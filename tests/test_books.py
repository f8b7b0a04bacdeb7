"""Cross-account books over real HTTP against the paper broker."""

import csv
import io

import pytest

from app.broker.client import OpenAlgoClient
from app.services import books
from tests.helpers import WAIT_SECONDS, Browserless, make_user
from tests.support.paperbroker import ADMIN_TOKEN


@pytest.fixture
def two_accounts(app_factory, broker, sim, monkeypatch):
    # Live order/trade reads: wait until every account answered (the app's 3 s page deadline is
    # for users; a loaded test machine can miss it and the test would see an account missing).
    monkeypatch.setattr(books, "LIVE_WAIT_SECONDS", WAIT_SECONDS)
    application = app_factory(PAPER_BROKER_URL=broker.url, PAPER_BROKER_WS_URL=broker.ws_url,
                              PAPERBROKER_ADMIN_TOKEN=ADMIN_TOKEN)
    with application.app_context():
        make_user(application, "alice")
        client = Browserless(application.test_client())
        client.login("alice")
        keys = [sim.new_account(), sim.new_account()]
        for name, key in zip(("One", "Two"), keys, strict=True):
            client.post_form("/accounts/add", {"account_name": name, "host_url": broker.url,
                                               "websocket_url": broker.ws_url, "api_key": key},
                             page="/accounts/add")
        sim.set_spot(SBIN=800, RELIANCE=1400)
        for key, symbol, qty in ((keys[0], "SBIN", 10), (keys[1], "RELIANCE", 4)):
            trader = OpenAlgoClient(broker.url, key)
            trader.place_order(symbol=symbol, exchange="NSE", product="MIS", action="BUY", quantity=qty)
            trader.close()
        yield client, keys
        for key in keys:
            sim.call("DELETE", f"/sim/accounts/{key}")


def _csv(response):
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_positions_from_all_accounts_with_account_column(two_accounts):
    client, _ = two_accounts
    rows = _csv(client.get("/trading/positions?format=csv&sort=symbol"))
    assert [(r["account"], r["symbol"], r["quantity"]) for r in rows] == [
        ("Two", "RELIANCE", "4"), ("One", "SBIN", "10")]


def test_filters_and_sorting(two_accounts):
    client, _ = two_accounts
    rows = _csv(client.get("/trading/orderbook?format=csv&account=One"))
    assert [(r["account"], r["symbol"], r["status"]) for r in rows] == [("One", "SBIN", "complete")]
    rows = _csv(client.get("/trading/tradebook?format=csv&sort=quantity&dir=desc"))
    assert [r["quantity"] for r in rows] == ["10", "4"]


def test_funds_totals(two_accounts):
    client, _ = two_accounts
    page = client.get("/trading/funds").get_data(as_text=True)
    assert "Total (2)" in page
    rows = _csv(client.get("/trading/funds?format=csv"))
    assert {r["account"] for r in rows} == {"One", "Two"}


def test_a_failing_account_is_reported_not_blocking(two_accounts, sim):
    client, keys = two_accounts
    sim.post("/sim/faults", {"apikey": keys[1], "error_rate": 1.0, "routes": ["orderbook"]})
    page = client.get("/trading/orderbook").get_data(as_text=True)
    assert 'data-testid="account-error"' in page and "<strong>Two</strong>" in page
    assert "SBIN" in page  # the healthy account is still shown


def test_option_chain_from_primary(two_accounts):
    client, _ = two_accounts
    assert client.get("/trading/option-chain").status_code == 200
    data = client.get("/api/option-chain?underlying=NIFTY&strikes=2").json
    assert data["status"] == "success" and data["source"] == "One"
    assert data["atm_strike"] == "26000.0" or data["atm_strike"] == "26000"
    assert len(data["rows"]) == 5 and data["rows"][2]["ce"]["label"] == "ATM"
    assert data["expiry"] == data["expiries"][0]


def test_option_chain_bad_input_is_400(two_accounts):
    client, _ = two_accounts
    assert client.get("/api/option-chain?underlying=DOGE").status_code == 400
    assert client.get("/api/option-chain?strikes=500").status_code == 400


def test_one_users_slow_accounts_cannot_take_every_fetch_slot():
    import threading

    from app.services.books import MAX_FETCHES_PER_USER, LiveFetches

    release = threading.Event()
    fetches = LiveFetches(workers=4)
    hog = [fetches.submit(1, account_id, "orders", lambda _id: release.wait(5) and []) for account_id in range(40)]
    assert sum(f is not None for f in hog) == MAX_FETCHES_PER_USER  # the rest are reported busy
    again = fetches.submit(1, 0, "orders", lambda _id: [])
    assert again is hog[0]  # an account already being read keeps its running read
    other = fetches.submit(2, 99, "orders", lambda _id: ["ok"])
    assert other is not None
    release.set()
    assert other.result(timeout=10) == ["ok"]
    fetches.pool.shutdown(wait=True)
