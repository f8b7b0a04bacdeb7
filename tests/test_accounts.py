"""Accounts over real HTTP against the paper broker: adding, bad input, ownership, lifecycle."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models.accounts import TradingAccount
from app.models.audit import ActivityLog
from tests.helpers import Browserless, make_user


def add(client, broker, key, name="Main", **extra):
    form = {"account_name": name, "host_url": broker.url, "websocket_url": broker.ws_url, "api_key": key, **extra}
    return client.post_form("/accounts/add", form, page="/accounts/add")


def accounts() -> list[TradingAccount]:
    return list(db.session.scalars(select(TradingAccount).order_by(TradingAccount.id)))


def test_add_account_pings_then_stores_key_encrypted(alice, broker, apikey):
    response = add(alice, broker, apikey)
    assert response.status_code == 302
    [account] = accounts()
    assert account.broker_name == "paper" and account.connection_status == "connected"
    assert account.is_primary  # the first account becomes primary
    assert apikey not in account.api_key_encrypted and account.api_key_last4 == apikey[-4:]
    entry = db.session.scalar(select(ActivityLog).where(ActivityLog.action == "account_added"))
    assert apikey not in str(entry.details)
    page = alice.get("/accounts/manage").get_data(as_text=True)
    assert apikey not in page and apikey[-4:] in page
    assert apikey not in alice.get(f"/accounts/edit/{account.id}").get_data(as_text=True)


class _Html(BaseHTTPRequestHandler):
    body = b"<html><body>It works!</body></html>"
    content_type = "text/html"

    def do_POST(self):
        body = self.body
        self.send_response(200)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _WrongJson(_Html):
    body = b'{"hello": "world"}'
    content_type = "application/json"


def _serve(handler):
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def html_host():
    server = _serve(_Html)
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def json_host():
    server = _serve(_WrongJson)
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.mark.parametrize(("host", "key", "field", "message"), [
    ("http://127.0.0.1:9", None, "host_url", "Could not verify an OpenAlgo server at this address"),
    ("HTML", None, "host_url", "Could not verify an OpenAlgo server at this address"),
    ("JSON", None, "host_url", "Could not verify an OpenAlgo server at this address"),
    (None, "wrong-key-0000", "api_key", "OpenAlgo refused this API key"),
    ("http://user:pass@127.0.0.1:5000", None, "host_url", "must not contain a user name or password"),
    ("ftp://127.0.0.1:5000", None, "host_url", "Use a full URL starting with http:// or https://"),
    (None, "WITHSPACE", "api_key", "contains spaces or line breaks"),
])
def test_bad_input_gets_clear_message_and_saves_nothing(alice, broker, apikey, html_host, json_host, host, key,
                                                        field, message):
    host = {"HTML": html_host, "JSON": json_host}.get(host or "", host or broker.url)
    key = f" {apikey}\n" if key == "WITHSPACE" else (key or apikey)
    response = alice.post_form("/accounts/add", {"account_name": "X", "host_url": host, "api_key": key},
                               page="/accounts/add")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert f'data-field-error="{field}"' in html and message in html
    assert accounts() == []


def test_duplicate_name_is_refused(alice, broker, apikey):
    add(alice, broker, apikey, name="Main")
    response = add(alice, broker, apikey, name="main")
    assert response.status_code == 400 and "already have an account with this name" in response.get_data(as_text=True)
    assert len(accounts()) == 1


def test_edit_with_wrong_key_is_refused_and_old_key_kept(alice, broker, apikey):
    add(alice, broker, apikey)
    [account] = accounts()
    stored = account.api_key_encrypted
    response = alice.post_form(f"/accounts/edit/{account.id}", {
        "account_name": "Main", "host_url": broker.url, "websocket_url": broker.ws_url, "api_key": "bad-key-1234"},
        page=f"/accounts/edit/{account.id}")
    assert response.status_code == 400 and "OpenAlgo refused this API key" in response.get_data(as_text=True)
    db.session.expire_all()
    assert accounts()[0].api_key_encrypted == stored


def test_edit_name_keeps_key_when_left_empty(alice, broker, apikey):
    add(alice, broker, apikey)
    [account] = accounts()
    alice.post_form(f"/accounts/edit/{account.id}", {
        "account_name": "Renamed", "host_url": broker.url, "websocket_url": broker.ws_url, "api_key": ""},
        page=f"/accounts/edit/{account.id}")
    db.session.expire_all()
    assert accounts()[0].account_name == "Renamed" and accounts()[0].api_key_last4 == apikey[-4:]


def test_delete_refused_with_open_positions_then_allowed(alice, broker, apikey, paper_app):
    from app.broker.client import OpenAlgoClient

    add(alice, broker, apikey)
    [account] = accounts()
    trader = OpenAlgoClient(broker.url, apikey)
    trader.place_order(symbol="SBIN", exchange="NSE", product="MIS", action="BUY", quantity=3)
    refused = alice.post_form(f"/accounts/{account.id}/delete", page="/accounts/manage", follow_redirects=True)
    assert "open positions: SBIN (+3)" in refused.get_data(as_text=True)
    db.session.expire_all()
    assert accounts()[0].deleted_at is None
    trader.place_order(symbol="SBIN", exchange="NSE", product="MIS", action="SELL", quantity=3)
    trader.close()
    alice.post_form(f"/accounts/{account.id}/delete", page="/accounts/manage")
    db.session.expire_all()
    [row] = accounts()  # soft delete: the row (and its history) stays
    assert row.deleted_at is not None and "Main" not in alice.get("/accounts/manage").get_data(as_text=True)


def test_add_paper_account_in_one_click(alice, paper_app):
    response = alice.post_form("/accounts/add-paper", page="/accounts/manage", follow_redirects=True)
    assert "Paper account Paper 1 added" in response.get_data(as_text=True)
    [account] = accounts()
    assert account.is_paper and account.broker_name == "paper" and account.is_primary
    assert 'data-testid="paper-badge"' in alice.get("/accounts/manage").get_data(as_text=True)


def test_primary_moves_and_deactivating_primary_promotes_next(alice, broker, sim):
    add(alice, broker, sim.new_account(), name="A")
    add(alice, broker, sim.new_account(), name="B")
    a, b = accounts()
    assert a.is_primary and not b.is_primary
    alice.post_form(f"/accounts/{b.id}/primary", page="/accounts/manage")
    db.session.expire_all()
    a, b = accounts()
    assert b.is_primary and not a.is_primary
    alice.post_form(f"/accounts/{b.id}/deactivate", page="/accounts/manage")
    db.session.expire_all()
    a, b = accounts()
    assert a.is_primary and not b.is_active


def test_dashboard_api_shows_margin_by_single_formula(alice, broker, apikey):
    add(alice, broker, apikey)
    data = alice.get("/api/dashboard").json
    [card] = data["accounts"]
    assert card["available_margin"] == "1000000.0" or card["available_margin"] == "1000000"
    assert data["totals"]["available_margin"] in ("1000000", "1000000.0") and data["totals"]["accounts"] == 1
    assert "collateral shown, not added" in data["formula"]
    assert data["market_data_source"] == "Main"


def test_dashboard_serves_cache_for_a_hanging_account(alice, broker, apikey, sim, paper_app):
    add(alice, broker, apikey)
    [account] = accounts()
    alice.get("/api/dashboard")  # fills the cache
    account.last_checked_at = None  # make it stale
    db.session.commit()
    sim.post("/sim/faults", {"apikey": apikey, "latency_ms": 10_000, "routes": ["funds"]})
    data = alice.get("/api/dashboard").json
    [card] = data["accounts"]
    assert card["available_margin"] in ("1000000", "1000000.0")  # last good data
    assert card["data_age_seconds"] is not None


# --- authorization: another user's account ids lead nowhere ----------------------------------------

def _account_routes(app):
    for rule in app.url_map.iter_rules():
        if "account_id" in rule.arguments:
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                args = {name: ("up" if name == "direction" else 0) for name in rule.arguments}
                yield method, rule, args


def test_user_b_cannot_reach_user_a_account_by_id(alice, broker, apikey, paper_app):
    add(alice, broker, apikey)
    [account] = accounts()
    make_user(paper_app, "mallory")
    mallory = Browserless(paper_app.test_client())
    mallory.login("mallory")
    routes = list(_account_routes(paper_app))
    assert len(routes) >= 10
    for method, rule, args in routes:
        url = rule.build({**args, "account_id": account.id})[1]
        if method == "GET":
            response = mallory.get(url, headers={"Accept": "application/json"} if url.startswith("/api") else {})
        else:
            response = mallory.post_form(url, {"account_name": "hijack", "host_url": broker.url, "api_key": "x"},
                                         page="/dashboard")
        assert response.status_code == 404, (method, url, response.status_code)
    db.session.expire_all()
    [unchanged] = accounts()
    assert unchanged.account_name == "Main" and unchanged.deleted_at is None and unchanged.is_active
    assert mallory.get("/api/accounts").json == {"accounts": []}
    assert db.session.scalar(select(func.count()).select_from(ActivityLog).where(
        ActivityLog.username == "mallory", ActivityLog.category == "account")) == 0


def test_admin_host_allowlist_limits_new_accounts(paper_app, broker, apikey):
    make_user(paper_app, "root", role="admin")
    admin = Browserless(paper_app.test_client())
    admin.login("root")
    bad = admin.post_form("/admin/account-hosts", {"hosts": "http://evil.example.com/x"}, page="/admin/account-hosts")
    assert bad.status_code == 400 and "write host or host:port, without http://" in bad.get_data(as_text=True)
    admin.post_form("/admin/account-hosts", {"hosts": "openalgo.example.com"}, page="/admin/account-hosts")
    response = add(admin, broker, apikey)
    assert response.status_code == 400 and (
        f"127.0.0.1:{broker.http_port} is not on the administrator&#39;s list of allowed hosts: openalgo.example.com"
        in response.get_data(as_text=True))
    assert accounts() == []
    # A bare host allows ports 80 and 443 only: the paper broker's ports must be listed.
    admin.post_form("/admin/account-hosts", {"hosts": "openalgo.example.com, 127.0.0.1"}, page="/admin/account-hosts")
    assert add(admin, broker, apikey).status_code == 400 and accounts() == []
    admin.post_form("/admin/account-hosts", {
        "hosts": f"openalgo.example.com\n127.0.0.1:{broker.http_port}, 127.0.0.1:{broker.ws_port}"},
        page="/admin/account-hosts")
    sneaky = add(admin, broker, apikey, websocket_url="ws://collector.example.net:8765")
    assert sneaky.status_code == 400 and 'data-field-error="websocket_url"' in sneaky.get_data(as_text=True)
    assert add(admin, broker, apikey).status_code == 302
    entry = db.session.scalar(select(ActivityLog).where(ActivityLog.action == "account_hosts_allowlist_set")
                              .order_by(ActivityLog.id.desc()))
    assert entry.details == {"hosts": sorted([f"127.0.0.1:{broker.http_port}", f"127.0.0.1:{broker.ws_port}",
                                              "openalgo.example.com"])}


def test_long_names_can_be_deleted_and_reused_repeatedly(alice, broker, sim):
    name = "N" * 60
    for _ in range(2):
        add(alice, broker, sim.new_account(), name=name)
        account = next(a for a in accounts() if a.account_name == name)
        response = alice.post_form(f"/accounts/{account.id}/delete", page="/accounts/manage", follow_redirects=True)
        assert response.status_code == 200 and "Account deleted" in response.get_data(as_text=True)
        db.session.expire_all()
    names = [a.account_name for a in accounts()]
    assert len(set(names)) == 2 and all(n.endswith(("]",)) and len(n) <= 64 for n in names)


def test_inactive_account_cannot_become_primary_by_edit(alice, broker, sim):
    add(alice, broker, sim.new_account(), name="A")
    add(alice, broker, sim.new_account(), name="B")
    _a, b = accounts()
    alice.post_form(f"/accounts/{b.id}/deactivate", page="/accounts/manage")
    response = alice.post_form(f"/accounts/edit/{b.id}", {
        "account_name": "B", "host_url": broker.url, "websocket_url": broker.ws_url, "api_key": "",
        "is_primary": "y"}, page=f"/accounts/edit/{b.id}")
    assert response.status_code == 400 and "Activate the account before making it primary" in response.get_data(
        as_text=True)
    db.session.expire_all()
    assert [(x.account_name, x.is_primary) for x in accounts()] == [("A", True), ("B", False)]


def test_unreachable_account_can_be_deleted_only_after_deactivation(alice, broker, apikey, sim):
    add(alice, broker, apikey)
    [account] = accounts()
    sim.post("/sim/faults", {"apikey": apikey, "drop_rate": 1.0, "routes": ["positionbook"]})
    refused = alice.post_form(f"/accounts/{account.id}/delete", page="/accounts/manage", follow_redirects=True)
    assert "Deactivate the account first" in refused.get_data(as_text=True)
    alice.post_form(f"/accounts/{account.id}/deactivate", page="/accounts/manage")
    alice.post_form(f"/accounts/{account.id}/delete", page="/accounts/manage")
    db.session.expire_all()
    assert accounts()[0].deleted_at is not None
    entry = db.session.scalar(select(ActivityLog).where(ActivityLog.action == "account_deleted"))
    assert entry.details["positions_verified"] is False
