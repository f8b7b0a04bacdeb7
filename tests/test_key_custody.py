"""Key custody: a stored API key never goes to a host or WebSocket URL it was not entered for.

A capture server on loopback stands in for the attacker's host: when an edit changes only the
URL, it must receive nothing, and nothing may be saved. Re-entering the key makes the change.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models.accounts import TradingAccount
from app.models.audit import ActivityLog
from app.services.accounts import KEY_AGAIN
from tests.support.capture import CaptureHTTP, RawTCP, wait_for


@pytest.fixture
def capture():
    server = CaptureHTTP()
    yield server
    server.close()


@pytest.fixture
def raw_ws():
    server = RawTCP()
    yield server
    server.close()


@pytest.fixture
def account(alice, broker, apikey) -> TradingAccount:
    response = alice.post_form("/accounts/add", {"account_name": "Main", "host_url": broker.url,
                                                 "websocket_url": broker.ws_url, "api_key": apikey},
                               page="/accounts/add")
    assert response.status_code == 302
    return db.session.scalar(select(TradingAccount))


def edit(client, account, **fields):
    form = {"account_name": account.account_name, "host_url": account.host_url,
            "websocket_url": account.websocket_url, "api_key": "", **fields}
    return client.post_form(f"/accounts/edit/{account.id}", form, page=f"/accounts/edit/{account.id}")


def stored(account_id: int) -> tuple:
    db.session.expire_all()
    row = db.session.get(TradingAccount, account_id)
    return row.host_url, row.websocket_url, row.api_key_encrypted, row.broker_name


def test_edit_host_without_key_is_refused_and_capture_server_receives_nothing(alice, account, capture):
    before = stored(account.id)
    response = edit(alice, account, host_url=capture.url)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'data-field-error="api_key"' in html
    assert KEY_AGAIN.format(what="the host URL").replace("'", "&#39;") in html
    assert capture.requests == []
    assert stored(account.id) == before
    assert db.session.scalar(select(ActivityLog).where(ActivityLog.action == "account_updated")) is None


def test_edit_websocket_url_without_key_is_refused_and_feed_never_connects_there(alice, account, raw_ws,
                                                                                 paper_app, broker):
    from app.services.monitors import MarketDataFeed

    before = stored(account.id)
    response = edit(alice, account, websocket_url=f"ws://127.0.0.1:{raw_ws.port}")
    assert response.status_code == 400
    assert KEY_AGAIN.format(what="the WebSocket URL").replace("'", "&#39;") in response.get_data(as_text=True)
    assert stored(account.id) == before
    # The market feed reads the account's URL from the database: it connects to the old one.
    feed = MarketDataFeed()
    try:
        feed.run_once()
        assert feed.manager is not None
        assert wait_for(lambda: any(s.connected for s in feed.manager.status().values()), timeout=30)
        assert [s.url for s in feed.manager.status().values()] == [broker.ws_url]
    finally:
        feed.on_stop()
    assert raw_ws.received == []


def test_edit_both_urls_without_key_names_both(alice, account, capture, raw_ws):
    response = edit(alice, account, host_url=capture.url, websocket_url=f"ws://127.0.0.1:{raw_ws.port}")
    assert response.status_code == 400
    assert KEY_AGAIN.format(what="the host URL and the WebSocket URL").replace("'", "&#39;") in (
        response.get_data(as_text=True))
    assert capture.requests == [] and raw_ws.received == []


@pytest.mark.parametrize("spelling", ["{url}/", "{URL}", "{URL}/", "http://127.0.0.1.:{port}", "HTTP://127.0.0.1:{port}//"])
def test_cosmetic_host_change_needs_no_key(alice, account, broker, spelling):
    url = spelling.format(url=broker.url, URL=broker.url.upper(), port=broker.http_port)
    response = edit(alice, account, host_url=url, account_name="Renamed")
    assert response.status_code == 302, response.get_data(as_text=True)
    db.session.expire_all()
    row = db.session.get(TradingAccount, account.id)
    assert (row.account_name, row.host_url) == ("Renamed", broker.url)


@pytest.mark.parametrize("spelling", ["{url}/", "{URL}", "ws://127.0.0.1.:{port}"])
def test_cosmetic_websocket_change_needs_no_key(alice, account, broker, spelling):
    url = spelling.format(url=broker.ws_url, URL=broker.ws_url.upper(), port=broker.ws_port)
    assert edit(alice, account, websocket_url=url).status_code == 302
    db.session.expire_all()
    assert db.session.get(TradingAccount, account.id).websocket_url == broker.ws_url


def test_localhost_instead_of_127_0_0_1_counts_as_a_new_host(alice, account, broker, capture):
    response = edit(alice, account, host_url=f"http://localhost:{broker.http_port}")
    assert response.status_code == 400 and 'data-field-error="api_key"' in response.get_data(as_text=True)


def test_key_entered_again_with_new_host_is_pinged_there_and_saved(alice, account, capture):
    new_key = "capture-key-0000000000000000000000000001"
    response = edit(alice, account, host_url=capture.url, api_key=new_key)
    assert response.status_code == 302
    assert [(r.method, r.path, r.json()) for r in capture.requests] == [("POST", "/api/v1/ping", {"apikey": new_key})]
    db.session.expire_all()
    row = db.session.get(TradingAccount, account.id)
    assert (row.host_url, row.broker_name, row.api_key_last4) == (capture.url, "capture", "0001")
    entry = db.session.scalar(select(ActivityLog).where(ActivityLog.action == "account_updated"))
    assert entry.details["changed"] == ["api_key", "host_url"]


def test_key_entered_again_with_new_websocket_url_is_used_by_the_feed(alice, account, apikey, broker, paper_app):
    from app.services.monitors import MarketDataFeed

    new_ws = f"{broker.ws_url}/feed"  # another path on the same server: a different URL all the same
    assert edit(alice, account, websocket_url=new_ws).status_code == 400
    assert edit(alice, account, websocket_url=new_ws, api_key=apikey).status_code == 302
    db.session.expire_all()
    assert db.session.get(TradingAccount, account.id).websocket_url == new_ws
    feed = MarketDataFeed()
    try:
        feed.run_once()
        assert feed.manager is not None
        assert wait_for(lambda: any(s.connected for s in feed.manager.status().values()), timeout=30)
        assert [s.url for s in feed.manager.status().values()] == [new_ws]
    finally:
        feed.on_stop()
