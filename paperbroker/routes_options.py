"""Option endpoints: symbol resolution (OPENALGO_API.md §2), chain, Greeks, synthetic future, option orders."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from paperbroker import nse_calendar as cal
from paperbroker.accounts import Account
from paperbroker.api import Result, endpoint
from paperbroker.core import Broker
from paperbroker.instruments import UNDERLYINGS, Instrument, option_symbol
from paperbroker.orders import Reject
from paperbroker.pricing import greeks, implied_vol, smile_vol
from paperbroker.routes_orders import run_split

UNDERLYING_RE = re.compile(r"^([A-Z]+)(\d{2}[A-Z]{3}\d{2})(?:FUT)?$")
NSE_INDICES = {"NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "NIFTYNXT50", "INDIAVIX"}
BSE_INDICES = {"SENSEX", "BANKEX", "SENSEX50"}
OPTION_EXCHANGE = {"NSE": "NFO", "NSE_INDEX": "NFO", "BSE": "BFO", "BSE_INDEX": "BFO"}


@dataclass(frozen=True, slots=True)
class Base:
    name: str
    expiry: date
    exchange: str  # the options exchange
    ltp: float
    spot: Instrument


def resolve_base(b: Broker, underlying: str, exchange: str, expiry_date: str | None) -> Base:
    """Parse the underlying, pick the expiry (explicit wins over embedded) and fetch the spot LTP."""
    m = UNDERLYING_RE.match(underlying.upper())
    name, embedded = (m.group(1), m.group(2)) if m else (underlying.upper(), None)
    text = expiry_date or embedded
    if not text:
        raise Reject("expiry_date is required (DDMMMYY, e.g. 30DEC25) unless the underlying embeds it")
    expiry = cal.parse_symbol_date(text)
    if expiry is None:
        raise Reject(f"Invalid expiry date format '{text}'. Use DDMMMYY (e.g. 30DEC25)")
    src = ("NSE_INDEX" if name in NSE_INDICES else "BSE_INDEX" if name in BSE_INDICES
           else "BSE" if exchange in ("BSE", "BFO") else "NSE")
    spot = b.master.get(src, name)
    if spot is None:
        raise Reject(f"Failed to fetch LTP for {name}. Underlying not found on {src}", 500)
    return Base(name, expiry, OPTION_EXCHANGE.get(exchange, exchange), b.market.ltp(spot), spot)


def strikes_for(b: Broker, base: Base) -> list[float]:
    u = UNDERLYINGS.get(base.name)
    strikes = b.master.strikes(base.name, base.expiry) if u and u.fo_exchange == base.exchange else []
    if not strikes:
        raise Reject(f"No strikes found for {base.name} expiring {cal.fmt_symbol_date(base.expiry)} "
                     f"in {base.exchange}", 404)
    return strikes


def atm_index(strikes: list[float], ltp: float) -> int:
    """Index of the strike nearest the LTP; a tie goes to the lower strike."""
    return min(range(len(strikes)), key=lambda i: (abs(strikes[i] - ltp), strikes[i]))


def resolve_option(b: Broker, base: Base, offset: str, option_type: str,
                   strike_int: float | None = None) -> Instrument:
    """The option ``offset`` strikes from ATM, walking the real strike list (or legacy strike_int)."""
    n = 0 if offset == "ATM" else int(offset[3:])
    away = 0 if offset == "ATM" else (-n if offset.startswith("ITM") else n)
    if option_type == "PE":
        away = -away
    if strike_int:
        atm = round(base.ltp / strike_int) * strike_int
        strike = float(atm + away * strike_int)
    else:
        strikes = strikes_for(b, base)
        i = atm_index(strikes, base.ltp) + away
        if not 0 <= i < len(strikes):
            raise Reject(f"Offset {offset} is out of range for {base.name} {cal.fmt_symbol_date(base.expiry)}: "
                         f"{len(strikes)} strikes are listed")
        strike = strikes[i]
    sym = option_symbol(base.name, base.expiry, strike, option_type)
    inst = b.master.get(base.exchange, sym)
    if inst is None:
        raise Reject(f"Option symbol {sym} not found in {base.exchange}. "
                     "Please verify the symbol exists in master contract.", 404)
    return inst


@endpoint("optionsymbol", "C")
def optionsymbol(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    base = resolve_base(b, data["underlying"], data["exchange"], data.get("expiry_date"))
    inst = resolve_option(b, base, data["offset"], data["option_type"], data.get("strike_int"))
    return {"status": "success", "symbol": inst.symbol, "exchange": inst.exchange, "lotsize": inst.lot_size,
            "tick_size": inst.tick_size, "freeze_qty": inst.freeze_qty, "underlying_ltp": base.ltp}


def _order_req(data: dict[str, Any], inst: Instrument, strategy: str) -> dict[str, Any]:
    keys = ("action", "quantity", "pricetype", "product", "price", "trigger_price", "disclosed_quantity")
    req = {k: data[k] for k in keys if k in data}
    req.setdefault("product", "MIS")
    return {**req, "symbol": inst.symbol, "exchange": inst.exchange, "strategy": strategy}


@endpoint("optionsorder", "C", limit="order", analyze_key=True)
def optionsorder(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    base = resolve_base(b, data["underlying"], data["exchange"], data.get("expiry_date"))
    inst = resolve_option(b, base, data["offset"], data["option_type"], data.get("strike_int"))
    req = _order_req(data, inst, data["strategy"])
    head = {"status": "success", "symbol": inst.symbol, "exchange": inst.exchange,
            "underlying": data["underlying"], "underlying_ltp": base.ltp, "offset": data["offset"],
            "option_type": data["option_type"]}
    if data.get("splitsize"):
        split = run_split(b, acct, req, data["quantity"], data["splitsize"])
        return {**head, **{k: split[k] for k in ("total_quantity", "split_size", "results")}}
    order = b.engine.place(acct, req)
    return {"status": "success", "orderid": order.orderid, **{k: v for k, v in head.items() if k != "status"}}


@endpoint("optionsmultiorder", "C", limit="order", analyze_key=True)
def optionsmultiorder(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    base = resolve_base(b, data["underlying"], data["exchange"], data.get("expiry_date")
                        or data["legs"][0].get("expiry_date"))
    mode = "analyze" if acct.options.analyzer else "live"
    legs = list(enumerate(data["legs"], start=1))
    legs.sort(key=lambda pair: pair[1]["action"] != "BUY")  # hedges (BUY legs) go first
    results: list[dict[str, Any]] = []
    for n, leg in legs:
        row: dict[str, Any] = {"leg": n, "offset": leg["offset"], "option_type": leg["option_type"],
                               "action": leg["action"]}
        try:
            leg_base = base
            if leg.get("expiry_date"):
                expiry = cal.parse_symbol_date(leg["expiry_date"])
                if expiry is None:
                    raise Reject(f"Invalid expiry date format '{leg['expiry_date']}'")
                leg_base = Base(base.name, expiry, base.exchange, base.ltp, base.spot)
            inst = resolve_option(b, leg_base, leg["offset"], leg["option_type"], data.get("strike_int"))
            row.update({"symbol": inst.symbol, "exchange": inst.exchange, "product": leg.get("product", "MIS")})
            req = _order_req(leg, inst, data["strategy"])
            if leg.get("splitsize"):
                split = run_split(b, acct, req, leg["quantity"], leg["splitsize"])
                row.update({"status": "success", "total_quantity": split["total_quantity"],
                            "split_size": split["split_size"], "split_results": split["results"], "mode": mode})
            else:
                row.update({"status": "success", "orderid": b.engine.place(acct, req).orderid, "mode": mode})
        except Reject as exc:
            row.update({"status": "error", "message": exc.message})
        results.append(row)
    results.sort(key=lambda r: r["leg"])
    return {"status": "success", "underlying": data["underlying"], "underlying_ltp": base.ltp, "results": results}


def _leg(b: Broker, inst: Instrument | None, label: str, with_greeks: bool, rate: float) -> dict[str, Any] | None:
    if inst is None:
        return None
    q = b.market.quote(inst)
    bids, asks = b.market.depth_levels(inst)
    leg: dict[str, Any] = {
        "symbol": inst.symbol, "label": label, "ltp": q["ltp"], "bid": q["bid"], "ask": q["ask"],
        "bid_qty": bids[0]["quantity"] if bids else 0, "ask_qty": asks[0]["quantity"] if asks else 0,
        "open": q["open"], "high": q["high"], "low": q["low"], "prev_close": q["prev_close"],
        "volume": q["volume"], "oi": q["oi"], "lotsize": inst.lot_size, "tick_size": inst.tick_size,
    }
    if with_greeks and inst.expiry is not None and inst.strike is not None:
        t = max(b.market.years_to_expiry(inst.expiry), 1e-6)
        fwd = b.market.spot[inst.name] * math.exp(rate * t)
        is_call = inst.instrumenttype == "CE"
        iv = implied_vol(float(q["ltp"]), fwd, inst.strike, t, rate, is_call) or smile_vol(
            b.market.atm_vol[inst.name], fwd, inst.strike, t)
        g = greeks(fwd, inst.strike, t, iv, rate, is_call).as_dict()
        leg.update({"implied_volatility": round(iv * 100, 2), "delta": g["delta"], "gamma": g["gamma"],
                    "theta": g["theta"], "vega": g["vega"]})
    return leg


@endpoint("optionchain", "C")
def optionchain(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    base = resolve_base(b, data["underlying"], data["exchange"], data.get("expiry_date"))
    strikes = strikes_for(b, base)
    atm = atm_index(strikes, base.ltp)
    count = data.get("strike_count")
    lo, hi = (max(atm - count, 0), min(atm + count + 1, len(strikes))) if count else (0, len(strikes))
    with_greeks = bool(data.get("with_greeks"))
    rate = float(data.get("interest_rate") or 0) / 100.0
    chain = []
    for i in range(lo, hi):
        k, d = strikes[i], i - atm
        ce_label = "ATM" if d == 0 else (f"ITM{-d}" if d < 0 else f"OTM{d}")
        pe_label = "ATM" if d == 0 else (f"OTM{-d}" if d < 0 else f"ITM{d}")
        ce = b.master.get(base.exchange, option_symbol(base.name, base.expiry, k, "CE"))
        pe = b.master.get(base.exchange, option_symbol(base.name, base.expiry, k, "PE"))
        chain.append({"strike": float(k), "ce": _leg(b, ce, ce_label, with_greeks, rate),
                      "pe": _leg(b, pe, pe_label, with_greeks, rate)})
    t = b.market.years_to_expiry(base.expiry)
    expiry_ts = int(datetime.combine(base.expiry, cal.EXPIRY_CUTOFF, cal.IST).timestamp())
    prev = b.market.quote(base.spot)["prev_close"]
    return {"status": "success", "underlying": base.name, "underlying_symbol": base.spot.symbol,
            "underlying_exchange": base.spot.exchange, "underlying_ltp": base.ltp, "underlying_prev_close": prev,
            "expiry_date": cal.fmt_symbol_date(base.expiry), "expiry_ts": expiry_ts,
            "server_ts": int(b.clock.epoch()), "atm_strike": float(strikes[atm]), "quotes_included": True,
            "greeks_included": with_greeks,
            "forward_price": round(base.ltp * math.exp(rate * t), 2) if with_greeks else None, "chain": chain}


@endpoint("syntheticfuture", "C")
def syntheticfuture(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    base = resolve_base(b, data["underlying"], data["exchange"], data["expiry_date"])
    strikes = strikes_for(b, base)
    k = strikes[atm_index(strikes, base.ltp)]
    ce = b.master.get(base.exchange, option_symbol(base.name, base.expiry, k, "CE"))
    pe = b.master.get(base.exchange, option_symbol(base.name, base.expiry, k, "PE"))
    if ce is None or pe is None:
        raise Reject(f"ATM options for {base.name} at {k} not found", 404)
    synthetic = k + b.market.ltp(ce) - b.market.ltp(pe)
    return {"status": "success", "underlying": base.name, "underlying_ltp": base.ltp,
            "expiry": cal.fmt_symbol_date(base.expiry), "atm_strike": float(k),
            "synthetic_future_price": round(synthetic, 2)}


@endpoint("optiongreeks", "D", limit="greeks", auth_status=401)
def optiongreeks(b: Broker, acct: Account, data: dict[str, Any]) -> Result:
    inst = b.master.get(data["exchange"], data["symbol"])
    if inst is None or not inst.is_option or inst.expiry is None or inst.strike is None:
        return 404, {"status": "error", "message": f"Option symbol {data['symbol']} not found in {data['exchange']}"}
    spot_inst = b.master.underlying_of(inst)
    if data.get("underlying_symbol"):
        spot_inst = b.master.get(data.get("underlying_exchange") or spot_inst.exchange,
                                 data["underlying_symbol"]) or spot_inst
    try:
        hh, mm = (int(x) for x in str(data.get("expiry_time") or "15:30").split(":"))
        cutoff = datetime.combine(inst.expiry, time(hh, mm), cal.IST)
    except ValueError as exc:
        raise Reject("expiry_time must be HH:MM") from exc
    t = (cutoff.timestamp() - b.clock.epoch()) / (365 * 86400)
    if t <= 0:
        raise Reject(f"Option {inst.symbol} has expired")
    rate = float(data.get("interest_rate") or 0) / 100.0
    spot = b.market.ltp(spot_inst)
    fwd = float(data.get("forward_price") or spot * math.exp(rate * t))
    price = b.market.ltp(inst)
    is_call = inst.instrumenttype == "CE"
    iv = implied_vol(price, fwd, inst.strike, t, rate, is_call)
    g = greeks(fwd, inst.strike, t, max(iv, 1e-4), rate, is_call)
    return {"status": "success", "symbol": inst.symbol, "exchange": inst.exchange, "underlying": inst.name,
            "strike": float(inst.strike), "option_type": inst.instrumenttype,
            "expiry_date": inst.expiry.strftime("%d-%b-%Y"), "days_to_expiry": round(t * 365, 4),
            "spot_price": spot, "option_price": price, "interest_rate": rate * 100,
            "implied_volatility": round(iv * 100, 2), "greeks": g.as_dict()}

