"""Outbound requests only where an admin allowed them: host[:port] rules, neutral ping errors, the banner.

The first half is decision tables over the pure rules (app/domain/hosts.py); the second goes
over real HTTP, with capture servers on loopback standing in for Redis, PostgreSQL, an SSH
daemon and foreign web services.
"""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import select

from app.domain import hosts
from app.domain.hosts import AllowEntry, HostRuleError
from app.extensions import db
from app.models.accounts import TradingAccount
from app.services.accounts import UNVERIFIED_HOST
from app.services.settings import set_setting
from tests.helpers import Browserless, make_user
from tests.support.capture import CaptureHTTP, RawTCP, closed_port

# --- pure rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    ("127.0.0.1", AllowEntry("127.0.0.1")),
    ("127.0.0.1:5100", AllowEntry("127.0.0.1", 5100)),
    ("  OpenAlgo.Example.COM.  ", AllowEntry("openalgo.example.com")),
    ("openalgo.example.com.:8765", AllowEntry("openalgo.example.com", 8765)),
    ("LOCALHOST", AllowEntry("localhost")),
    ("[::1]:5100", AllowEntry("::1", 5100)),
    ("[::1]", AllowEntry("::1")),
    ("::1", AllowEntry("::1")),
    ("[0:0:0:0:0:0:0:1]:8770", AllowEntry("::1", 8770)),
    ("[::ffff:127.0.0.1]:5100", AllowEntry("127.0.0.1", 5100)),
    ("[2001:DB8::0001]", AllowEntry("2001:db8::1")),
    ("open_algo:5000", AllowEntry("open_algo", 5000)),
    ("bücher.example", AllowEntry("xn--bcher-kva.example")),
    ("host:65535", AllowEntry("host", 65535)),
    ("host:1", AllowEntry("host", 1)),
])
def test_parse_entry_valid_gives_canonical_entry(raw, expected):
    assert hosts.parse_entry(raw) == expected


@pytest.mark.parametrize(("raw", "expected_text"), [
    ("127.0.0.1", "127.0.0.1"), ("127.0.0.1:5100", "127.0.0.1:5100"), ("::1", "[::1]"),
    ("[::1]:5100", "[::1]:5100"), ("Example.com.", "example.com"),
])
def test_entry_text_round_trips(raw, expected_text):
    entry = hosts.parse_entry(raw)
    assert str(entry) == expected_text and hosts.parse_entry(str(entry)) == entry


@pytest.mark.parametrize(("raw", "message"), [
    ("http://evil.example.com/x", "'http://evil.example.com/x': write host or host:port, without http:// or a path."),
    ("evil.example.com/x", "'evil.example.com/x': write host or host:port, without http:// or a path."),
    ("user@host", "'user@host': write host or host:port, without http:// or a path."),
    ("a b", "'a b': write host or host:port, without http:// or a path."),
    ("host:0", "'host:0': the port must be a number from 1 to 65535."),
    ("host:65536", "'host:65536': the port must be a number from 1 to 65535."),
    ("host:", "'host:': the port must be a number from 1 to 65535."),
    ("host:+80", "'host:+80': the port must be a number from 1 to 65535."),
    ("host:http", "'host:http': the port must be a number from 1 to 65535."),
    ("[::1", "'[::1': a '[' without its ']'."),
    ("[::1]5100", "'[::1]5100': only :port may follow ']'."),
    ("[127.0.0.1]:80", "'[127.0.0.1]:80': brackets are only for IPv6 addresses."),
    ("a..b", "'a..b': not a valid host name."),
    ("-a.example", "'-a.example': not a valid host name."),
    ("*.example.com", "'*.example.com': not a valid host name."),
    ("x" * 64 + ".com", f"'{'x' * 64}.com': not a valid host name."),
    ("127.1", "'127.1': not a valid IPv4 address: write it as four numbers, e.g. 127.0.0.1."),
    ("2130706433", "'2130706433': not a valid IPv4 address: write it as four numbers, e.g. 127.0.0.1."),
    ("0x7f000001", "'0x7f000001': not a valid IPv4 address: write it as four numbers, e.g. 127.0.0.1."),
    ("127.000.000.001", "'127.000.000.001': not a valid IPv4 address: write it as four numbers, e.g. 127.0.0.1."),
    ("fe80::1%eth0", "'fe80::1%eth0': iPv6 scope ids (%…) are not supported."),
])
def test_parse_entry_garbage_is_refused_with_reason(raw, message):
    with pytest.raises(HostRuleError) as caught:
        hosts.parse_entry(raw)
    assert caught.value.message == message


def test_parse_entries_splits_on_commas_and_lines_and_drops_duplicates():
    entries, problems = hosts.parse_entries("127.0.0.1:5100,\n localhost:8770 ,127.0.0.1:5100,,bad..host")
    assert entries == [AllowEntry("127.0.0.1", 5100), AllowEntry("localhost", 8770)]
    assert problems == ["'bad..host': not a valid host name."]


LIST = [hosts.parse_entry(e) for e in ("127.0.0.1", "127.0.0.1:5100", "openalgo.example.com",
                                       "ws.example.com:8765", "[2001:db8::1]:5000")]


@pytest.mark.parametrize(("url", "allowed"), [
    # a bare host: its default ports only
    ("http://127.0.0.1", True),
    ("https://127.0.0.1", True),
    ("http://127.0.0.1:443", True),
    ("ws://127.0.0.1", True),
    ("http://127.0.0.1:6379", False),  # Redis
    ("http://127.0.0.1:5432", False),  # PostgreSQL
    ("ws://127.0.0.1:8765", False),
    # host:port: exactly that port, any scheme
    ("http://127.0.0.1:5100", True),
    ("https://127.0.0.1:5100", True),
    ("ws://127.0.0.1:5100", True),
    ("http://127.0.0.1:5101", False),
    # loopback spellings are one host
    ("http://localhost:5100", True),
    ("http://LOCALHOST.:5100", True),
    ("http://[::1]:5100", True),
    ("http://[::ffff:127.0.0.1]:5100", True),
    ("http://localhost:6379", False),
    # ... but other loopback addresses are not aliases
    ("http://127.0.0.2:5100", False),
    ("http://0.0.0.0:5100", False),
    # names: case and trailing dot do not matter; subdomains and look-alikes do
    ("https://OpenAlgo.Example.com./", True),
    ("https://openalgo.example.com:8443", False),
    ("https://api.openalgo.example.com", False),
    ("https://openalgo.example.com.evil.net", False),
    ("wss://ws.example.com:8765", True),
    ("wss://ws.example.com", False),
    ("http://[2001:DB8:0::1]:5000", True),
    ("http://[2001:db8::1]", False),
])
def test_is_allowed_decision_table(url, allowed):
    assert hosts.is_allowed(hosts.destination(url), LIST) is allowed


def test_empty_list_allows_nothing_by_itself():
    assert hosts.is_allowed(hosts.destination("http://127.0.0.1:5100"), []) is False


@pytest.mark.parametrize(("a", "b", "same"), [
    ("http://127.0.0.1:5100", "http://127.0.0.1:5100/", True),
    ("http://127.0.0.1:5100", "HTTP://127.0.0.1:5100", True),
    ("http://example.com", "http://Example.COM.:80/", True),
    ("https://example.com/openalgo", "https://example.com/openalgo/", True),
    ("ws://[::1]:8770", "ws://[0:0::1]:8770", True),
    ("http://127.0.0.1:5100", "http://localhost:5100", False),  # key custody does not alias
    ("http://127.0.0.1:5100", "https://127.0.0.1:5100", False),
    ("http://127.0.0.1:5100", "http://127.0.0.1:5101", False),
    ("https://example.com/openalgo", "https://example.com/OpenAlgo", False),
    ("https://example.com/openalgo", "https://example.com", False),
    ("http://127.0.0.1:5100", None, False),
    ("http://127.0.0.1:5100", "not a url", False),
])
def test_same_destination_decision_table(a, b, same):
    assert hosts.same_destination(a, b) is same


@pytest.mark.parametrize(("url", "canonical"), [
    ("HTTP://Example.COM:80/", "http://example.com"),
    ("https://example.com:443/openalgo/", "https://example.com/openalgo"),
    ("http://127.0.0.1.:5100", "http://127.0.0.1:5100"),
    ("ws://[0:0::1]:8770", "ws://[::1]:8770"),
    ("wss://h:8765", "wss://h:8765"),
])
def test_canonical_url(url, canonical):
    assert hosts.canonical_url(url) == canonical


@pytest.mark.parametrize("url", ["http://127.1:5100", "http://2130706433", "http://[::1", "http://h:0",
                                 "http://u:p@h", "http://h\t.example", "gopher://h", "http://"])
def test_canonical_url_refuses_ambiguous_or_broken_urls(url):
    with pytest.raises(HostRuleError):
        hosts.canonical_url(url)


# --- over HTTP ------------------------------------------------------------------------------------

@pytest.fixture
def root(paper_app):
    make_user(paper_app, "root", role="admin")
    client = Browserless(paper_app.test_client())
    client.login("root")
    return client


def add(client, host_url, key="some-key-1234", ws=None):
    form = {"account_name": "X", "host_url": host_url, "api_key": key, **({"websocket_url": ws} if ws else {})}
    return client.post_form("/accounts/add", form, page="/accounts/add")


def set_list(client, text):
    return client.post_form("/admin/account-hosts", {"hosts": text}, page="/admin/account-hosts")


def field_errors(html: str, field: str) -> list[str]:
    import re

    return re.findall(rf'data-field-error="{field}">([^<]*)<', html)


FOREIGN_TEXT = "secret-banner-7f3a"  # anything the remote host says must never reach the user


@pytest.fixture
def foreign_hosts():
    servers = {
        "ssh": RawTCP(reply=f"SSH-2.0-OpenSSH_9.6 {FOREIGN_TEXT}\r\n".encode()),
        "html200": CaptureHTTP(200, f"<html><title>{FOREIGN_TEXT}</title></html>".encode(), "text/html"),
        "json404": CaptureHTTP(404, json.dumps({"status": "error", "message": FOREIGN_TEXT}).encode()),
        "html403": CaptureHTTP(403, f"<h1>Forbidden {FOREIGN_TEXT}</h1>".encode(), "text/html"),
        "json500": CaptureHTTP(500, json.dumps({"message": FOREIGN_TEXT}).encode()),
        "json429": CaptureHTTP(429, json.dumps({"message": FOREIGN_TEXT}).encode()),
    }
    yield {name: f"http://127.0.0.1:{s.port}" for name, s in servers.items()}
    for server in servers.values():
        server.close()


def test_failed_ping_answers_one_neutral_message_whatever_is_listening(root, foreign_hosts, caplog):
    targets = {"closed": f"http://127.0.0.1:{closed_port()}", **foreign_hosts}
    errors = {}
    with caplog.at_level(logging.WARNING, logger="app.services.accounts"):
        for name, url in targets.items():
            response = add(root, url)
            html = response.get_data(as_text=True)
            assert response.status_code == 400, name
            assert FOREIGN_TEXT not in html, name
            errors[name] = field_errors(html, "host_url") + field_errors(html, "api_key")
    assert errors == {name: [UNVERIFIED_HOST] for name in targets}
    assert db.session.scalar(select(TradingAccount)) is None
    # The detail (class, endpoint, status) goes to the log, with user-supplied values escaped.
    lines = [r.getMessage() for r in caplog.records if r.message.startswith("Account check failed")]
    logged = {name: next(line.split(" detail=")[0] for line in lines if f"host='{url}'" in line)
              for name, url in targets.items()}
    assert logged == {name: f"Account check failed: host='{targets[name]}' {detail}" for name, detail in {
        "closed": "error=BrokerUnavailable endpoint=ping status=None",
        "ssh": "error=BrokerUnavailable endpoint=ping status=None",
        "html200": "error=NotOpenAlgo endpoint=ping status=200",
        "json404": "error=BrokerRequestError endpoint=ping status=404",
        "html403": "error=NotOpenAlgo endpoint=ping status=403",
        "json500": "error=BrokerUnavailable endpoint=ping status=500",
        "json429": "error=RateLimited endpoint=ping status=429"}.items()}


def test_log_line_of_a_failed_ping_escapes_what_the_remote_said(root, caplog):
    forged = "x\r\n2026-01-01 00:00:00 INFO [-] app: admin granted\u001b[31m"
    server = CaptureHTTP(404, json.dumps({"status": "error", "message": forged}).encode())
    try:
        with caplog.at_level(logging.WARNING, logger="app.services.accounts"):
            response = add(root, server.url)
    finally:
        server.close()
    assert response.status_code == 400 and "admin granted" not in response.get_data(as_text=True)
    [line] = [r.getMessage() for r in caplog.records if r.message.startswith("Account check failed")]
    assert "\n" not in line and "\r" not in line and "\u001b" not in line
    assert "x\\r\\n2026-01-01" in line and "\\x1b[31m" in line


def test_bad_urls_are_refused_before_any_request(root):
    for url in (f"http://127.0.0.1:{closed_port()}/x\u001b[31m", "http://127.1:5100", "http://2130706433/"):
        response = add(root, url)
        assert response.status_code == 400 and field_errors(response.get_data(as_text=True), "host_url"), url


def test_json_403_is_reported_as_a_refused_key(root):
    """A JSON 401/403 is OpenAlgo's answer to a bad key: the one distinct message (docs/security.md)."""
    server = CaptureHTTP(403, json.dumps({"status": "error", "message": FOREIGN_TEXT}).encode())
    try:
        response = add(root, server.url)
    finally:
        server.close()
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and FOREIGN_TEXT not in html
    assert field_errors(html, "api_key") == ["OpenAlgo refused this API key: check the key, or log the broker in "
                                             "again in OpenAlgo."]


def test_bare_host_entry_does_not_open_other_ports_and_nothing_is_sent(root):
    redis_like, postgres_like = RawTCP(), RawTCP()
    try:
        assert set_list(root, "127.0.0.1").status_code == 302
        for server in (redis_like, postgres_like):
            response = add(root, f"http://127.0.0.1:{server.port}")
            assert response.status_code == 400
            assert field_errors(response.get_data(as_text=True), "host_url") == [
                f"127.0.0.1:{server.port} is not on the administrator&#39;s list of allowed hosts: 127.0.0.1. "
                "A host without a port allows ports 80 and 443 only."]
        assert redis_like.received == [] and postgres_like.received == []
    finally:
        redis_like.close()
        postgres_like.close()


def test_host_port_entry_allows_that_port_under_any_loopback_spelling(root, broker, apikey):
    capture = CaptureHTTP()
    try:
        set_list(root, f"localhost:{capture.port}, [::1]:{broker.http_port}, 127.0.0.1:{broker.ws_port}")
        response = add(root, capture.url, ws=broker.ws_url)  # 127.0.0.1 against the entry "localhost"
        assert response.status_code == 302, response.get_data(as_text=True)
        assert [r.path for r in capture.requests] == ["/api/v1/ping"]
        other_port = add(root, f"http://127.0.0.1:{closed_port()}", ws=broker.ws_url)
        assert other_port.status_code == 400
    finally:
        capture.close()


def test_websocket_url_is_checked_too(root, broker, apikey):
    set_list(root, f"127.0.0.1:{broker.http_port}")
    response = add(root, broker.url, key=apikey)  # default ws://127.0.0.1:8765 is not listed
    assert response.status_code == 400
    assert field_errors(response.get_data(as_text=True), "websocket_url") == [
        "127.0.0.1:8765 is not on the administrator&#39;s list of allowed hosts: "
        f"127.0.0.1:{broker.http_port}. A host without a port allows ports 80 and 443 only."]


def test_admin_garbage_entries_get_a_field_error_and_nothing_is_saved(root):
    set_list(root, "127.0.0.1:5100")
    response = set_list(root, "127.0.0.1:5100, http://x.example/, 10.0.0.1:99999")
    assert response.status_code == 400
    assert field_errors(response.get_data(as_text=True), "hosts") == [
        "&#39;http://x.example/&#39;: write host or host:port, without http:// or a path. "
        "&#39;10.0.0.1:99999&#39;: the port must be a number from 1 to 65535."]
    from app.services.outbound import allowlist_text

    db.session.expire_all()
    assert allowlist_text() == ["127.0.0.1:5100"]


def test_saved_list_is_shown_canonical_and_hint_names_paper_broker_ports(root, broker):
    set_list(root, "LocalHost.:5100\n[0::1]:8770, Example.com")
    html = root.get("/admin/account-hosts").get_data(as_text=True)
    assert "[::1]:8770, example.com, localhost:5100</textarea>" in html
    assert f'data-testid="paper-hint">127.0.0.1:{broker.http_port}, 127.0.0.1:{broker.ws_port}</code>' in html


def test_list_saved_before_ports_keeps_meaning_default_ports(root, paper_app):
    set_setting("account_host_allowlist", "openalgo.example.com,127.0.0.1")  # as issue 4 stored it
    html = root.get("/admin/account-hosts").get_data(as_text=True)
    assert "openalgo.example.com, 127.0.0.1</textarea>" in html
    from app.services.outbound import allowlist

    assert allowlist() == [AllowEntry("openalgo.example.com"), AllowEntry("127.0.0.1")]
    assert add(root, f"http://127.0.0.1:{closed_port()}").status_code == 400


def test_unreadable_saved_list_fails_closed(root, paper_app):
    set_setting("account_host_allowlist", "bad..host")
    from app.services.outbound import allowlist

    assert allowlist() == []  # set, but allows nothing
    response = add(root, "http://127.0.0.1")
    assert field_errors(response.get_data(as_text=True), "host_url") == [
        "127.0.0.1:80 is not on the administrator&#39;s list of allowed hosts: (none). "
        "A host without a port allows ports 80 and 443 only."]


def test_add_paper_account_is_refused_before_provisioning_when_not_allowed(root, broker, sim):
    set_list(root, "openalgo.example.com")
    before = len(sim.call("GET", "/sim/accounts")["accounts"])
    response = root.post_form("/accounts/add-paper", page="/accounts/manage", follow_redirects=True)
    assert "is not on the administrator&#39;s list of allowed hosts" in response.get_data(as_text=True)
    assert len(sim.call("GET", "/sim/accounts")["accounts"]) == before
    assert db.session.scalar(select(TradingAccount)) is None


# --- the production banner --------------------------------------------------------------------------

BANNER = 'data-testid="allowlist-warning"'


@pytest.fixture
def prod_like(app_factory):
    """The testing configuration, but the environment name production, which is what the banner reads."""
    application = app_factory(ENV_NAME="production")
    with application.app_context():
        yield application


def _client(application, name, role):
    make_user(application, name, role=role)
    client = Browserless(application.test_client())
    client.login(name)
    return client


def test_admin_sees_banner_on_every_page_in_production_until_list_is_set(prod_like):
    admin = _client(prod_like, "root", "admin")
    pages = ["/dashboard", "/accounts/manage", "/admin/users", "/audit/", "/auth/change-password"]
    for page in pages:
        response = admin.get(page, follow_redirects=True)
        html = response.get_data(as_text=True)
        assert response.status_code == 200 and BANNER in html, page
        assert 'href="/admin/account-hosts"' in html
    set_list(admin, "openalgo.example.com")
    for page in pages:
        assert BANNER not in admin.get(page, follow_redirects=True).get_data(as_text=True), page


def test_trader_never_sees_banner(prod_like):
    trader = _client(prod_like, "bob", "trader")
    for page in ["/dashboard", "/accounts/manage", "/audit/"]:
        response = trader.get(page, follow_redirects=True)
        assert response.status_code == 200 and BANNER not in response.get_data(as_text=True), page


def test_no_banner_outside_production(app):
    admin = _client(app, "root", "admin")
    assert BANNER not in admin.get("/dashboard").get_data(as_text=True)


def test_banner_flag_can_be_forced_on_and_off(app_factory):
    forced = app_factory(HOST_ALLOWLIST_REQUIRED=True)
    with forced.app_context():
        assert BANNER in _client(forced, "root", "admin").get("/dashboard").get_data(as_text=True)


def test_host_removed_from_the_list_is_no_longer_contacted_by_any_path(root, paper_app, caplog):
    """The list is enforced on every use of a stored key, not only when a URL is entered."""
    from app.services import connection, monitors

    capture = CaptureHTTP()
    try:
        ws = "ws://127.0.0.1:1"  # never dialled in this test
        set_list(root, f"127.0.0.1:{capture.port}, 127.0.0.1:1")
        assert add(root, capture.url, ws=ws).status_code == 302
        account = db.session.scalar(select(TradingAccount))
        sent_while_allowed = len(capture.requests)
        assert sent_while_allowed == 1  # the ping before saving

        set_list(root, "127.0.0.1:5100")  # the capture server's port is no longer listed
        caplog.set_level(logging.DEBUG)
        outcome = connection.check_connection(account)  # "Test connection"
        assert not outcome.ok and "allowed hosts" in (outcome.error or "")
        assert monitors._ping_in_context(paper_app, account.id)[0].ok is False  # the connection monitor
        assert monitors.MarketDataFeed().desired_sources() == {}  # the feed does not dial it either
        chain = root.get("/api/option-chain?symbol=NIFTY")  # the option chain (market-data account)
        assert chain.status_code == 502 and "allowed hosts" in chain.get_data(as_text=True)
        from app.services.account_data import refresher

        result = refresher().refresh([account.id])[account.id].result(timeout=60)  # the data refresher
        assert result.error is not None and "allowed hosts" in result.error
        assert len(capture.requests) == sent_while_allowed
        # One warning when the account became refused; every later cycle logs at DEBUG, no traceback.
        refused = [r for r in caplog.records if r.getMessage().startswith("Not contacting account")]
        assert [r.levelname for r in refused][:1] == ["WARNING"] and len(refused) >= 4
        assert all(r.levelname == "DEBUG" for r in refused[1:])
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    finally:
        capture.close()

