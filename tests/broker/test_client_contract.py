"""OpenAlgoClient against the paper broker: typed results for every call, typed errors for every fault."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from app.broker.client import OpenAlgoClient
from app.broker.errors import (
    BrokerAuthError,
    BrokerRequestError,
    BrokerUnavailable,
    NotOpenAlgo,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
)
from app.broker.parsing import Funds
from tests.helpers import wait_until

SBIN = {"symbol": "SBIN", "exchange": "NSE", "product": "MIS"}


def test_ping_returns_broker_name(client):
    assert client.ping() == "paper"


def test_funds_are_typed_decimals(client):
    funds = client.funds()
    assert funds == Funds(Decimal("1000000"), Decimal("0"), Decimal("0"), Decimal("0"), Decimal("0"))


@pytest.mark.parametrize("analyzer", [False, True])
def test_numbers_as_strings_and_analyzer_keys_parse_the_same(client, sim, apikey, analyzer):
    sim.post(f"/sim/accounts/{apikey}/options", {"numbers_as_strings": True, "analyzer": analyzer})
    client.place_order(**SBIN, action="BUY", quantity=10)
    funds = client.funds()
    assert isinstance(funds.available_cash, Decimal) and funds.utilised_debits > 0
    [position] = client.positions()
    assert position.quantity == 10 and isinstance(position.average_price, Decimal)
    assert position.average_price > Decimal("799")
    [order] = client.orderbook()
    assert order.status == "complete" and order.quantity == 10 and isinstance(order.order_id, str)
    [trade] = client.tradebook()
    assert trade.quantity == 10 and trade.action == "BUY"


def test_market_buy_then_sell_shows_in_books_and_positions(client):
    ack = client.place_order(**SBIN, action="BUY", quantity=5)
    assert len(ack.order_ids) == 1 and ack.order_ids[0].isdigit()
    client.place_order(**SBIN, action="SELL", quantity=5)
    orders = client.orderbook()
    assert [o.status for o in orders] == ["complete", "complete"]
    [position] = client.positions()
    assert position.quantity == 0
    status = client.order_status(ack.order_ids[0])
    assert status.order_id == ack.order_ids[0] and status.status == "complete"
    assert len(client.tradebook()) == 2


def test_holdings_parse(client):
    holdings = client.holdings()
    assert holdings.items == [] and holdings.total_pnl == Decimal("0")


def test_quotes_and_multiquotes(client):
    quote = client.quote("NIFTY", "NSE_INDEX")
    assert quote.ltp == Decimal("26000")
    quotes = client.multiquotes([("NIFTY", "NSE_INDEX"), ("SBIN", "NSE"), ("NOPE", "NSE")])
    assert set(quotes) == {("NIFTY", "NSE_INDEX"), ("SBIN", "NSE")}
    assert quotes[("SBIN", "NSE")].bid < quotes[("SBIN", "NSE")].ask


def test_expiries_and_option_chain(client):
    expiries = client.expiries("NIFTY", "NFO")
    assert expiries and all(len(e) == 9 and e[2] == "-" for e in expiries)
    chain = client.option_chain("NIFTY", "NSE_INDEX", expiries[0], strike_count=2)
    assert chain.atm_strike == Decimal("26000") and len(chain.rows) == 5
    atm = chain.rows[2]
    assert atm.strike == Decimal("26000") and atm.ce.label == "ATM" and atm.pe.label == "ATM"
    assert atm.ce.delta is not None and Decimal("0.4") < atm.ce.delta < Decimal("0.6")
    assert chain.rows[1].ce.label == "ITM1" and chain.rows[1].pe.label == "OTM1"


def test_unknown_symbol_read_is_request_error(client):
    with pytest.raises(BrokerRequestError, match="NOPE"):
        client.quote("NOPE", "NSE")


def test_limit_without_price_is_rejected_with_message(client):
    with pytest.raises(OrderRejected) as info:
        client.place_order(**SBIN, action="BUY", quantity=1, price_type="LIMIT")
    assert "price" in str(info.value).lower() and info.value.status_code == 400
    assert client.orderbook() == []


def test_order_above_freeze_quantity_is_rejected(client):
    expiry = client.expiries("NIFTY", "NFO", "futures")[0].replace("-", "")
    with pytest.raises(OrderRejected, match=r"(?i)freeze"):
        client.place_order(symbol=f"NIFTY{expiry}FUT", exchange="NFO", product="NRML", action="BUY", quantity=2600)


def test_wrong_key_is_auth_error(make_client):
    with pytest.raises(BrokerAuthError):
        make_client("not-a-real-key").funds()


def test_session_expired_fault_is_auth_error(client, sim, apikey):
    sim.post("/sim/faults", {"apikey": apikey, "session_expired": True})
    with pytest.raises(BrokerAuthError):
        client.ping()


def test_rate_limit_storm_is_rate_limited(client, sim, apikey):
    sim.post("/sim/faults", {"apikey": apikey, "rate_limit_rate": 1.0})
    with pytest.raises(RateLimited):
        client.funds()


def test_server_error_on_read_is_unavailable(client, sim, apikey):
    sim.post("/sim/faults", {"apikey": apikey, "error_rate": 1.0, "routes": ["funds"]})
    with pytest.raises(BrokerUnavailable) as info:
        client.funds()
    assert info.value.status_code == 500


def test_server_error_on_order_is_outcome_unknown(client, sim, apikey):
    sim.post("/sim/faults", {"apikey": apikey, "error_rate": 1.0, "routes": ["placeorder"]})
    with pytest.raises(OutcomeUnknown):
        client.place_order(**SBIN, action="BUY", quantity=1)


def test_dropped_connection_on_read_is_unavailable(client, sim, apikey):
    sim.post("/sim/faults", {"apikey": apikey, "drop_rate": 1.0, "routes": ["positionbook"]})
    with pytest.raises(BrokerUnavailable):
        client.positions()


def test_lost_response_on_order_is_outcome_unknown_and_order_exists(client, sim, apikey):
    sim.post("/sim/faults", {"apikey": apikey, "lost_response_rate": 1.0, "routes": ["placeorder"]})
    with pytest.raises(OutcomeUnknown):
        client.place_order(**SBIN, action="BUY", quantity=1)
    sim.call("DELETE", "/sim/faults")
    assert [o.status for o in client.orderbook()] == ["complete"]  # reconcile finds it


def test_timeout_on_order_is_outcome_unknown(make_client, sim, apikey):
    slow = make_client(apikey, read_timeout=0.3)
    sim.post("/sim/faults", {"apikey": apikey, "response_delay_ms": 1500, "routes": ["placeorder"]})
    with pytest.raises(OutcomeUnknown):
        slow.place_order(**SBIN, action="BUY", quantity=1)
    sim.call("DELETE", "/sim/faults")
    patient = make_client(apikey)  # the 0.3 s client could time out on the check itself under load
    # The client gave up after 0.3 s; on a loaded machine the broker may record the order later.
    assert len(wait_until(patient.orderbook)) == 1


def test_timeout_on_read_is_unavailable(make_client, sim, apikey):
    slow = make_client(apikey, read_timeout=0.3)
    sim.post("/sim/faults", {"apikey": apikey, "latency_ms": 1500, "routes": ["funds"]})
    with pytest.raises(BrokerUnavailable, match="did not answer in time"):
        slow.funds()


def test_unreachable_host_is_unavailable():
    client = OpenAlgoClient("http://127.0.0.1:9", "key")
    with pytest.raises(BrokerUnavailable, match="Cannot connect"):
        client.ping()
    client.close()


def test_logs_never_contain_the_key(client, apikey, caplog):
    caplog.set_level(logging.DEBUG)
    client.ping()
    with pytest.raises(OrderRejected):
        client.place_order(**SBIN, action="BUY", quantity=1, price_type="LIMIT")
    assert "endpoint=ping" in caplog.text and "outcome=OrderRejected" in caplog.text
    assert apikey not in caplog.text


def test_not_openalgo_html_host(tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Html(BaseHTTPRequestHandler):
        def do_POST(self):
            body = b"<html><body>Welcome to nginx</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Html)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = OpenAlgoClient(f"http://127.0.0.1:{server.server_port}", "key")
    try:
        with pytest.raises(NotOpenAlgo):
            client.ping()
    finally:
        client.close()
        server.shutdown()


def test_client_pacing_queues_a_burst_instead_of_hitting_429():
    """Against a broker enforcing OpenAlgo's 50 reads/s per route, 80 concurrent reads all succeed."""
    from concurrent.futures import ThreadPoolExecutor

    from app.broker.client import ClientSettings
    from tests.support.paperbroker import Admin, start_broker

    limited = start_broker("--api-rate", "50", accounts=1)
    client = OpenAlgoClient(limited.url, limited.keys[0], settings=ClientSettings(reads_per_second=45))
    try:
        with ThreadPoolExecutor(max_workers=20) as pool:
            results = list(pool.map(lambda _: client.funds().available_cash, range(80)))
        assert results == [Decimal("1000000")] * 80
        raw = Admin(limited.url)  # without pacing the same burst is refused
        codes = [raw.http.post("/api/v1/funds", json={"apikey": limited.keys[0]}).status_code for _ in range(60)]
        assert 429 in codes
        raw.http.close()
    finally:
        client.close()
        limited.stop()
