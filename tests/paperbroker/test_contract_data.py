"""Contract tests through the openalgo SDK: market data, symbols, expiries and option analytics."""

from __future__ import annotations

from typing import Any

import openalgo
import pandas as pd
import pytest

NIFTY_OPTION_EXPIRIES = ["06-JAN-26", "13-JAN-26", "20-JAN-26", "27-JAN-26", "03-FEB-26", "10-FEB-26",
                         "24-FEB-26", "30-MAR-26"]  # 31-MAR-26 is a holiday: the monthly moves to the 30th


def _ok(resp: dict) -> dict:
    assert resp.get("status") == "success", resp
    return resp


@pytest.mark.parametrize(("symbol", "exchange", "kind", "expected"), [
    ("NIFTY", "NFO", "options", NIFTY_OPTION_EXPIRIES),
    ("NIFTY", "NFO", "futures", ["27-JAN-26", "24-FEB-26", "30-MAR-26"]),
    ("BANKNIFTY", "NFO", "options", ["27-JAN-26", "24-FEB-26", "30-MAR-26"]),
    ("FINNIFTY", "NFO", "options", ["27-JAN-26", "24-FEB-26", "30-MAR-26"]),
    ("SENSEX", "BFO", "options", ["08-JAN-26", "15-JAN-26", "22-JAN-26", "29-JAN-26", "05-FEB-26", "12-FEB-26",
                                  "26-FEB-26", "25-MAR-26"]),
    ("SENSEX", "NFO", "options", []),
])
def test_expiry_lists_match_the_calendar(client: openalgo.api, symbol: str, exchange: str, kind: str,
                                         expected: list[str]) -> None:
    resp = _ok(client.expiry(symbol=symbol, exchange=exchange, instrumenttype=kind))
    assert resp["data"] == expected
    assert resp["message"] == f"Found {len(expected)} expiry dates for {symbol} {kind} in {exchange}"


@pytest.mark.parametrize(("spot", "offset", "option_type", "strike"), [
    (26012, "ATM", "CE", 26000), (26012, "ITM2", "CE", 25900), (26012, "OTM3", "CE", 26150),
    (26012, "ITM2", "PE", 26100), (26012, "OTM3", "PE", 25850),
    (26025, "ATM", "CE", 26000),  # a tie goes to the lower strike
])
def test_optionsymbol_resolves_offsets_along_the_strike_list(client: openalgo.api, admin: Any, spot: float,
                                                             offset: str, option_type: str, strike: int) -> None:
    admin.set_spot(NIFTY=spot)
    resp = _ok(client.optionsymbol(underlying="NIFTY", exchange="NSE_INDEX", expiry_date="06JAN26", offset=offset,
                                   option_type=option_type))
    assert resp["symbol"] == f"NIFTY06JAN26{strike}{option_type}"
    assert (resp["exchange"], resp["lotsize"], resp["freeze_qty"], resp["underlying_ltp"]) == (
        "NFO", 65, 1755, spot)


def test_optionsymbol_with_embedded_expiry_and_errors(client: openalgo.api) -> None:
    emb = _ok(client.optionsymbol(underlying="NIFTY27JAN26FUT", exchange="NFO", offset="ATM", option_type="pe"))
    assert emb["symbol"] == "NIFTY27JAN2626000PE"
    bad = client.optionsymbol(underlying="NIFTY", exchange="NSE_INDEX", expiry_date="06JAN26", offset="ITM51",
                              option_type="CE")
    assert bad["code"] == 400 and "Offset must be ATM, ITM1-ITM50, or OTM1-OTM50" in bad["message"]
    none = client.optionsymbol(underlying="NIFTY", exchange="NSE_INDEX", expiry_date="07JAN26", offset="ATM",
                               option_type="CE")
    assert none["code"] == 404


def test_quotes_depth_and_multiquotes(client: openalgo.api) -> None:
    q = _ok(client.quotes(symbol="NIFTY", exchange="NSE_INDEX"))["data"]
    assert set(q) == {"open", "high", "low", "ltp", "ask", "bid", "prev_close", "volume", "oi"}
    assert q["ltp"] == 26000.0
    d = _ok(client.depth(symbol="SBIN", exchange="NSE"))["data"]
    assert len(d["bids"]) == 5 and len(d["asks"]) == 5
    assert d["bids"][0]["price"] < d["ltp"] < d["asks"][0]["price"]
    m = _ok(client.multiquotes(symbols=[{"symbol": "SBIN", "exchange": "NSE"}, {"symbol": "NOPE", "exchange": "NSE"}]))
    assert m["results"][0]["data"]["ltp"] == 800.0 and "error" in m["results"][1]
    bad = client.quotes(symbol="NOPE", exchange="NSE")
    assert bad["code"] == 400 and "Symbol 'NOPE' not found" in bad["message"]


def test_history_candles_cover_backfill_and_agree_across_intervals(client: openalgo.api, admin: Any) -> None:
    admin.post("/sim/clock", {"advance_seconds": 60})
    admin.set_spot(NIFTY=26100)
    one = client.history(symbol="NIFTY", exchange="NSE_INDEX", interval="1m", start_date="2026-01-05",
                         end_date="2026-01-05")
    five = client.history(symbol="NIFTY", exchange="NSE_INDEX", interval="5m", start_date="2026-01-05",
                          end_date="2026-01-05")
    daily = client.history(symbol="NIFTY", exchange="NSE_INDEX", interval="D", start_date="2025-12-01",
                           end_date="2026-01-05")
    assert isinstance(one, pd.DataFrame) and isinstance(daily, pd.DataFrame)
    assert list(one.columns) == ["open", "high", "low", "close", "volume", "oi"]
    assert one["close"].iloc[-1] == 26100.0  # the last tick is the last close
    assert one.index[0].strftime("%H:%M") == "09:15"
    assert five["high"].max() == one["high"].max() and five["low"].min() == one["low"].min()
    assert daily["close"].iloc[-1] == 26100.0 and len(daily) >= 20
    assert daily["high"].iloc[-1] == one["high"].max()
    raw = client.history(symbol="NIFTY", exchange="NSE_INDEX", interval="1s", start_date="2026-01-05",
                         end_date="2026-01-05")
    assert raw["status"] == "error" and "not supported" in raw["message"]


def test_intervals_symbol_search_instruments(client: openalgo.api) -> None:
    iv = _ok(client.intervals())["data"]
    assert "1m" in iv["minutes"] and iv["days"] == ["D"]
    sym = _ok(client.symbol(symbol="NIFTY06JAN2626000CE", exchange="NFO"))["data"]
    assert (sym["lotsize"], sym["freeze_qty"], sym["expiry"], sym["strike"], sym["instrumenttype"]) == (
        65, 1755, "06-JAN-26", 26000, "CE")
    missing = client.symbol(symbol="NOPE", exchange="NSE")
    assert missing["code"] == 404
    found = _ok(client.search(query="NIFTY 06JAN26 26000", exchange="NFO"))
    assert {r["symbol"] for r in found["data"]} == {"NIFTY06JAN2626000CE", "NIFTY06JAN2626000PE"}
    eq = client.instruments(exchange="NSE")
    assert isinstance(eq, pd.DataFrame) and len(eq) == 12 and "SBIN" in set(eq["symbol"])


def test_optionchain_labels_and_greeks(client: openalgo.api) -> None:
    resp = _ok(client.optionchain(underlying="NIFTY", exchange="NSE_INDEX", expiry_date="27JAN26", strike_count=2,
                                  with_greeks=True))
    assert resp["atm_strike"] == 26000.0 and resp["expiry_date"] == "27JAN26"
    assert [row["strike"] for row in resp["chain"]] == [25900.0, 25950.0, 26000.0, 26050.0, 26100.0]
    assert [row["ce"]["label"] for row in resp["chain"]] == ["ITM2", "ITM1", "ATM", "OTM1", "OTM2"]
    assert [row["pe"]["label"] for row in resp["chain"]] == ["OTM2", "OTM1", "ATM", "ITM1", "ITM2"]
    atm = resp["chain"][2]
    assert 0.4 < atm["ce"]["delta"] < 0.65 and -0.6 < atm["pe"]["delta"] < -0.35
    assert atm["ce"]["bid"] < atm["ce"]["ltp"] < atm["ce"]["ask"]
    assert resp["greeks_included"] is True and resp["forward_price"] is not None


def test_optiongreeks_and_syntheticfuture(client: openalgo.api) -> None:
    g = _ok(client.optiongreeks(symbol="NIFTY27JAN2626000CE", exchange="NFO", interest_rate=0))
    assert g["expiry_date"] == "27-Jan-2026" and g["strike"] == 26000.0
    assert 5 < g["implied_volatility"] < 30 and 0.4 < g["greeks"]["delta"] < 0.65
    assert g["days_to_expiry"] == pytest.approx(22.23, abs=0.01)
    s = _ok(client.syntheticfuture(underlying="NIFTY", exchange="NSE_INDEX", expiry_date="27JAN26"))
    assert s["atm_strike"] == 26000.0 and s["expiry"] == "27JAN26"
    assert 26000 < s["synthetic_future_price"] < 26300  # carry puts the forward above spot


def test_optionsorder_and_multiorder_place_hedges_first(client: openalgo.api) -> None:
    one = _ok(client.optionsorder(underlying="NIFTY", exchange="NSE_INDEX", expiry_date="27JAN26", offset="OTM2",
                                  option_type="CE", action="BUY", quantity=65))
    assert one["symbol"] == "NIFTY27JAN2626100CE" and one["underlying"] == "NIFTY" and one["orderid"]
    split = _ok(client.optionsorder(underlying="NIFTY", exchange="NSE_INDEX", expiry_date="27JAN26", offset="ATM",
                                    option_type="PE", action="BUY", quantity=130, splitsize=65))
    assert [r["quantity"] for r in split["results"]] == [65, 65]
    multi = _ok(client.optionsmultiorder(strategy="ic", underlying="NIFTY", exchange="NSE_INDEX",
                                         expiry_date="27JAN26", legs=[
        {"offset": "OTM2", "option_type": "CE", "action": "SELL", "quantity": 65},
        {"offset": "OTM6", "option_type": "CE", "action": "BUY", "quantity": 65},
    ]))
    assert [(r["leg"], r["symbol"], r["status"], r["mode"]) for r in multi["results"]] == [
        (1, "NIFTY27JAN2626100CE", "success", "live"), (2, "NIFTY27JAN2626300CE", "success", "live")]
    ids = [r["orderid"] for r in multi["results"]]
    assert ids[1] < ids[0]  # the BUY (hedge) leg was placed first
