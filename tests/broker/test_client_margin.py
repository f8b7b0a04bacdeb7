"""Basket margin, contract look-ups and option resolution calls of OpenAlgoClient, over real HTTP.

Figures come from the paper broker's margin model at NIFTY 26,000 (the `apikey` fixture's spot):
a short option holds 15 % of the spot's notional (0.15 × 26,000 × 65 = 2,53,500, of which 75 %
is SPAN), a long option its premium. Numbers-as-strings runs go through a proxy that writes
every number of every answer as a string, as some brokers do.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from app.broker.client import ClientSettings, MarginNotSupported, MarginPosition, OpenAlgoClient
from app.broker.errors import BrokerRequestError, BrokerUnavailable, NotOpenAlgo
from app.broker.parsing import BasketMargin, SymbolInfo
from tests.support.broker_proxy import BrokerProxy
from tests.support.paperbroker import BrokerProc

NIFTY_LOT = 65


@pytest.fixture
def rewriting(broker: BrokerProc) -> Iterator[BrokerProxy]:
    with BrokerProxy(broker.url) as proxy:
        yield proxy


@pytest.fixture
def proxied(rewriting: BrokerProxy, apikey: str) -> Iterator[OpenAlgoClient]:
    client = OpenAlgoClient(rewriting.url, apikey, account_label="test", settings=ClientSettings())
    yield client
    client.close()


def _atm_call(client: OpenAlgoClient) -> str:
    expiry = client.expiries("NIFTY", "NFO")[0]
    return client.option_symbol("NIFTY", "NFO", expiry, "ATM", "CE").symbol


def test_basket_margin_of_short_option_is_the_brokers_figure(client):
    symbol = _atm_call(client)
    margin = client.basket_margin([MarginPosition(symbol, "NFO", "SELL", NIFTY_LOT, "NRML")])
    assert margin == BasketMargin(total=Decimal("253500.0"), span=Decimal("190125.0"),
                                  exposure=Decimal("63375.0"), margin_benefit=None)


def test_basket_margin_adds_a_limit_priced_long_leg_at_its_premium(client):
    symbol = _atm_call(client)
    margin = client.basket_margin([
        MarginPosition(symbol, "NFO", "SELL", NIFTY_LOT, "NRML"),
        MarginPosition(symbol.replace("26000CE", "26200CE"), "NFO", "BUY", NIFTY_LOT, "NRML",
                       price_type="LIMIT", price=Decimal("120")),
    ])
    assert margin.total == Decimal("261300.0")  # 2,53,500 + 65 × 120
    assert margin.span == Decimal("190125.0") and margin.exposure == Decimal("71175.0")


@pytest.mark.parametrize("positions", [0, 51])
def test_basket_margin_outside_1_to_50_positions_is_refused_before_sending(broker, apikey, positions):
    with BrokerProxy(broker.url) as counting:
        client = OpenAlgoClient(counting.url, apikey, settings=ClientSettings())
        leg = MarginPosition("NIFTY06JAN2626000CE", "NFO", "SELL", NIFTY_LOT, "NRML")
        with pytest.raises(ValueError, match="1 to 50"):
            client.basket_margin([leg] * positions)
        client.close()
        assert counting.count("margin") == 0


def test_basket_margin_with_numbers_as_strings_parses_the_same(rewriting, proxied):
    rewriting.stringify = True
    symbol = _atm_call(proxied)
    margin = proxied.basket_margin([MarginPosition(symbol, "NFO", "SELL", NIFTY_LOT, "NRML")])
    assert margin.total == Decimal("253500.0") and margin.span == Decimal("190125.0")
    assert isinstance(margin.exposure, Decimal) and margin.exposure == Decimal("63375.0")


@pytest.mark.parametrize("status", [501, 404])
def test_broker_without_margin_api_raises_margin_not_supported(rewriting, proxied, status):
    rewriting.answer("margin", status, {"status": "error", "message": "Margin calculation not supported"})
    with pytest.raises(MarginNotSupported) as info:
        proxied.basket_margin([MarginPosition("NIFTY06JAN2626000CE", "NFO", "SELL", NIFTY_LOT, "NRML")])
    assert info.value.status_code == status and info.value.endpoint == "margin"


def test_broker_failure_on_margin_is_unavailable_not_unsupported(client, sim, apikey):
    sim.post("/sim/faults", {"apikey": apikey, "error_rate": 1.0, "routes": ["margin"]})
    with pytest.raises(BrokerUnavailable) as info:
        client.basket_margin([MarginPosition("NIFTY06JAN2626000CE", "NFO", "SELL", NIFTY_LOT, "NRML")])
    assert not isinstance(info.value, MarginNotSupported) and info.value.status_code == 500


def test_margin_for_an_unknown_symbol_is_a_request_error(client):
    with pytest.raises(BrokerRequestError, match="NOPE") as info:
        client.basket_margin([MarginPosition("NOPE", "NFO", "SELL", NIFTY_LOT, "NRML")])
    assert not isinstance(info.value, MarginNotSupported)


def test_margin_answer_without_a_total_is_not_openalgo(rewriting, proxied):
    rewriting.answer("margin", 200, {"status": "success", "data": {}})
    with pytest.raises(NotOpenAlgo, match="total_margin_required"):
        proxied.basket_margin([MarginPosition("NIFTY06JAN2626000CE", "NFO", "SELL", NIFTY_LOT, "NRML")])


@pytest.mark.parametrize("stringify", [False, True])
def test_symbol_info_is_typed_for_futures_and_options(rewriting, proxied, stringify):
    rewriting.stringify = stringify
    future = proxied.expiries("NIFTY", "NFO", "futures")[0]
    info = proxied.symbol_info(f"NIFTY{future.replace('-', '')}FUT", "NFO")
    assert info == SymbolInfo(symbol="NIFTY27JAN26FUT", exchange="NFO", name="NIFTY", expiry="27-JAN-26",
                              strike=None, lot_size=65, tick_size=Decimal("0.05"), freeze_qty=1755,
                              instrument_type="FUT")
    option = proxied.symbol_info("NIFTY06JAN2626000CE", "NFO")
    assert option.strike == Decimal("26000") and option.lot_size == 65 and option.instrument_type == "CE"


def test_symbol_info_of_an_unknown_contract_is_a_404_request_error(client):
    with pytest.raises(BrokerRequestError) as info:
        client.symbol_info("NIFTY01JAN20FUT", "NFO")
    assert info.value.status_code == 404


@pytest.mark.parametrize("stringify", [False, True])
def test_option_symbol_walks_the_listed_strikes(rewriting, proxied, stringify):
    rewriting.stringify = stringify
    expiry = proxied.expiries("NIFTY", "NFO")[0]
    call = proxied.option_symbol("NIFTY", "NFO", expiry, "OTM2", "CE")
    put = proxied.option_symbol("NIFTY", "NFO", expiry.replace("-", ""), "otm2", "pe")
    assert (call.symbol, put.symbol) == ("NIFTY06JAN2626100CE", "NIFTY06JAN2625900PE")
    assert call.exchange == "NFO" and call.lot_size == 65 and call.freeze_qty == 1755
    assert call.tick_size == Decimal("0.05") and call.underlying_ltp == Decimal("26000.0")


def test_option_symbol_offset_beyond_openalgos_range_is_a_request_error(client):
    expiry = client.expiries("NIFTY", "NFO")[0]
    with pytest.raises(BrokerRequestError) as info:
        client.option_symbol("NIFTY", "NFO", expiry, "OTM51", "CE")
    assert info.value.status_code == 400 and "offset" in str(info.value).lower()


def test_option_chain_and_multiquotes_with_numbers_as_strings_parse_the_same(rewriting, proxied):
    expiry = proxied.expiries("NIFTY", "NFO")[0]
    plain = proxied.option_chain("NIFTY", "NSE_INDEX", expiry, strike_count=3)
    plain_quotes = proxied.multiquotes([(plain.rows[3].ce.symbol, "NFO"), ("NIFTY", "NSE_INDEX")])
    rewriting.stringify = True
    strings = proxied.option_chain("NIFTY", "NSE_INDEX", expiry, strike_count=3)
    string_quotes = proxied.multiquotes([(plain.rows[3].ce.symbol, "NFO"), ("NIFTY", "NSE_INDEX")])
    assert strings == plain  # the paper broker's clock is frozen: same prices, same server time
    assert strings.server_ts is not None and strings.quotes_included is True
    atm = strings.rows[3]
    assert atm.strike == Decimal("26000") and atm.ce is not None and atm.ce.tick_size == Decimal("0.05")
    assert isinstance(atm.ce.gamma, Decimal) and atm.ce.lot_size == 65
    assert string_quotes == plain_quotes and string_quotes[("NIFTY", "NSE_INDEX")].ltp == Decimal("26000")


def test_basket_margin_takes_openalgo_keyed_mappings_too(client):
    symbol = _atm_call(client)
    margin = client.basket_margin([{"symbol": symbol, "exchange": "NFO", "action": "SELL", "quantity": 65,
                                    "product": "NRML", "pricetype": "MARKET"}])
    assert margin.total == Decimal("253500.0")
    with pytest.raises(ValueError, match="'product'"):
        client.basket_margin([{"symbol": symbol, "exchange": "NFO", "action": "SELL", "quantity": 65}])
