"""Option chain over real HTTP: the app served on loopback, the paper broker behind a counting proxy.

The proxy counts what the broker is really asked, per endpoint and API key, so the tests can
prove that N tabs cost one chain call per refresh and that one user's cache never answers
another user.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from werkzeug.serving import make_server

from app.services import option_chain as service
from tests.helpers import PASSWORD, Browserless, csrf_from, make_user
from tests.support.broker_proxy import BrokerProxy
from tests.support.paperbroker import START

DEADLINE = 30.0
CHAIN = "/api/option-chain?underlying=NIFTY&strikes=2"


def wait_until(condition: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    pause = threading.Event()
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        result = condition()
        if result:
            return result
        pause.wait(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Env:
    app: Any
    url: str
    proxy: BrokerProxy
    keys: dict[str, str]  # account name -> API key
    clients: dict[str, Browserless]

    def http(self, username: str) -> httpx.Client:
        """A signed-in HTTP client of the live server (one browser tab's cookies)."""
        client = httpx.Client(base_url=self.url, timeout=DEADLINE)
        token = csrf_from(client.get("/auth/login").text)
        answer = client.post("/auth/login", data={"identifier": username, "password": PASSWORD,
                                                  "csrf_token": token})
        assert answer.status_code == 302, answer.text
        return client

    def chain_calls(self, account: str) -> int:
        return self.proxy.count("optionchain", self.keys[account])

    def expiry_calls(self, account: str) -> int:
        return self.proxy.count("expiry", self.keys[account])


@pytest.fixture
def env(app_factory, broker, sim) -> Iterator[Env]:
    sim.post("/sim/clock", {"time": START, "frozen": True})
    sim.set_spot(NIFTY=26010, BANKNIFTY=59000, SENSEX=85000)
    keys: dict[str, str] = {}
    with BrokerProxy(broker.url) as proxy:
        application = app_factory(RATELIMIT_API="1000 per minute")
        with application.app_context():
            clients = {}
            for username, accounts in (("alice", ("Alpha", "Alpha2")), ("bob", ("Bravo",))):
                make_user(application, username)
                clients[username] = client = Browserless(application.test_client())
                client.login(username)
                for name in accounts:
                    keys[name] = sim.new_account()
                    answer = client.post_form("/accounts/add", {
                        "account_name": name, "host_url": proxy.url, "websocket_url": broker.ws_url,
                        "api_key": keys[name]}, page="/accounts/add")
                    assert answer.status_code == 302, answer.get_data(as_text=True)
            server = make_server("127.0.0.1", 0, application, threaded=True)
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            try:
                yield Env(application, f"http://127.0.0.1:{server.server_port}", proxy, keys, clients)
            finally:
                server.shutdown()
                thread.join(timeout=5)
    sim.call("DELETE", "/sim/faults")
    for key in keys.values():
        sim.call("DELETE", f"/sim/accounts/{key}")


def _slow_broker(sim, key: str, ms: int) -> None:
    sim.post("/sim/faults", {"apikey": key, "latency_ms": ms, "routes": ["expiry", "optionchain"]})


def test_chain_sends_raw_values_with_their_display_forms(env):
    data = env.clients["alice"].get(CHAIN).json

    assert data["status"] == "success" and data["source"] == "Alpha"
    assert (data["underlying_ltp_display"], data["atm_strike_display"]) == ("26,010.00", "26000")
    assert [r["strike_display"] for r in data["rows"]] == ["25900", "25950", "26000", "26050", "26100"]
    assert [r["strike"] for r in data["rows"]][2] == data["atm_strike"]  # raw values stay exact strings
    assert [r["atm"] for r in data["rows"]] == [False, False, True, False, False]
    # Spot 26010: calls below it (up to 26000) and puts above it are in the money.
    assert [r["ce"]["itm"] for r in data["rows"]] == [True, True, True, False, False]
    assert [r["pe"]["itm"] for r in data["rows"]] == [False, False, False, True, True]
    atm = data["rows"][2]
    assert atm["ce"]["symbol"] == "NIFTY06JAN2626000CE"
    # The paper broker's OI depends only on the contract: exact figures, Indian grouping.
    assert (atm["ce"]["oi"], atm["ce"]["display"]["oi"]) == (1206920, "12,06,920")
    assert (atm["pe"]["oi"], atm["pe"]["display"]["oi"]) == (3122730, "31,22,730")
    for row in data["rows"]:
        for leg in (row["ce"], row["pe"]):
            shown = leg["display"]
            assert shown["volume"] == _indian(leg["volume"])
            for key, places in (("ltp", 2), ("iv", 2), ("delta", 4), ("gamma", 4), ("theta", 4), ("vega", 4)):
                assert re.fullmatch(rf"-?[\d,]+\.\d{{{places}}}", shown[key]), (key, shown[key])
                assert abs(Decimal(shown[key].replace(",", "")) - Decimal(leg[key])) <= Decimal(5).scaleb(-places - 1)
            rounded = Decimal(shown["change"].replace(",", ""))
            assert abs(rounded - Decimal(leg["change"])) <= Decimal("0.005")
            assert shown["change"].startswith("+") == (rounded > 0)  # a plus sign on rises only


def _indian(n: int) -> str:
    """Written out independently of app/domain/formatting.py: lakhs and crores by hand."""
    s = str(n)
    if len(s) <= 3:
        return s
    head, tail = s[:-3], s[-3:]
    groups = [head[max(0, i - 2):i] for i in range(len(head), 0, -2)]
    return ",".join(reversed(groups)) + "," + tail


def test_ten_tabs_within_a_second_cost_one_chain_call_and_one_expiry_call(env, sim):
    # Each broker answer takes 1 s, so all ten tabs arrive while the first fetch is in flight.
    _slow_broker(sim, env.keys["Alpha"], 1000)
    tabs = [env.http("alice") for _ in range(10)]
    start = threading.Barrier(len(tabs))
    answers: list[httpx.Response | None] = [None] * len(tabs)

    def poll(i: int) -> None:
        start.wait(DEADLINE)
        answers[i] = tabs[i].get(CHAIN)

    threads = [threading.Thread(target=poll, args=(i,)) for i in range(len(tabs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)

    assert [a.status_code if a else None for a in answers] == [200] * 10
    bodies = [a.json() for a in answers if a]
    assert all(b == bodies[0] for b in bodies) and bodies[0]["source"] == "Alpha"
    assert env.chain_calls("Alpha") == 1
    assert env.expiry_calls("Alpha") == 1
    for tab in tabs:
        tab.close()


def test_after_the_ttl_the_next_refresh_asks_the_broker_again_but_expiries_stay_cached(env):
    client = env.clients["alice"]
    began = time.monotonic()
    assert client.get(CHAIN).status_code == 200
    assert (env.chain_calls("Alpha"), env.expiry_calls("Alpha")) == (1, 1)

    def refreshed() -> bool:
        assert client.get(CHAIN).status_code == 200
        return env.chain_calls("Alpha") == 2

    wait_until(refreshed, "a second chain call after the TTL")
    assert time.monotonic() - began >= service.CHAIN_TTL_SECONDS
    assert env.expiry_calls("Alpha") == 1  # the expiry list lives for minutes


def test_another_users_cached_chain_never_serves_this_user(env):
    first = env.clients["alice"].get(CHAIN).json
    second = env.clients["bob"].get(CHAIN).json  # same host, same query, within the TTL

    assert (first["source"], second["source"]) == ("Alpha", "Bravo")
    assert (env.chain_calls("Alpha"), env.expiry_calls("Alpha")) == (1, 1)
    assert (env.chain_calls("Bravo"), env.expiry_calls("Bravo")) == (1, 1)


def test_a_new_market_data_account_is_asked_itself_not_served_the_old_accounts_cache(env):
    alice = env.clients["alice"]
    assert alice.get(CHAIN).json["source"] == "Alpha"
    with env.app.app_context():
        from sqlalchemy import select

        from app.extensions import db
        from app.models.accounts import TradingAccount

        alpha2 = db.session.scalar(select(TradingAccount.id).where(TradingAccount.account_name == "Alpha2"))
    assert alice.post_form(f"/accounts/{alpha2}/primary", page="/accounts/manage").status_code == 302

    assert alice.get(CHAIN).json["source"] == "Alpha2"
    assert (env.chain_calls("Alpha2"), env.expiry_calls("Alpha2")) == (1, 1)
    assert env.chain_calls("Alpha") == 1


def test_each_strike_count_and_expiry_is_its_own_cache_entry(env):
    alice = env.clients["alice"]
    expiries = alice.get(CHAIN).json["expiries"]
    assert len(alice.get("/api/option-chain?underlying=NIFTY&strikes=3").json["rows"]) == 7
    later = alice.get(f"/api/option-chain?underlying=NIFTY&strikes=2&expiry={expiries[1]}").json
    assert later["expiry"] == expiries[1] and later["rows"][2]["ce"]["symbol"].startswith("NIFTY13JAN26")
    assert (env.chain_calls("Alpha"), env.expiry_calls("Alpha")) == (3, 1)


def test_a_failing_broker_is_a_502_with_the_account_name(env, sim):
    sim.post("/sim/faults", {"apikey": env.keys["Alpha"], "error_rate": 1.0, "routes": ["expiry"]})
    answer = env.clients["alice"].get(CHAIN)
    assert answer.status_code == 502
    assert answer.json["status"] == "error" and answer.json["message"].startswith("Alpha: ")


def test_option_chain_page_renders_for_a_signed_in_user(env):
    page = env.clients["alice"].get("/trading/option-chain")
    assert page.status_code == 200 and 'data-testid="chain-table"' in page.get_data(as_text=True)
