"""Request validation mirroring OpenAlgo's marshmallow schemas, messages and four error styles."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from paperbroker.history import SCHEMA_INTERVALS

EXCHANGES = ("NSE", "NFO", "CDS", "BSE", "BFO", "BCD", "MCX", "NCDEX", "NCO", "NSE_INDEX", "BSE_INDEX",
             "MCX_INDEX", "GLOBAL_INDEX", "CRYPTO")
FO_SUBSET = ("NFO", "BFO", "MCX", "CDS", "NCO", "BCD", "NCDEX", "CRYPTO")
PRODUCTS = ("MIS", "CNC", "NRML")
PRICETYPES = ("MARKET", "LIMIT", "SL", "SL-M")
ACTIONS = ("BUY", "SELL")
MISSING_MSG = "Missing data for required field."
OFFSET_RE = re.compile(r"^(ATM|ITM([1-9]|[1-4][0-9]|50)|OTM([1-9]|[1-4][0-9]|50))$")
_TRUE = {True, "true", "True", "TRUE", "1", "yes", "Yes", "on", "On", "t", "T", "y", "Y"}
_FALSE = {False, "false", "False", "FALSE", "0", "no", "No", "off", "Off", "f", "F", "n", "N"}


@dataclass(frozen=True, slots=True)
class Field:
    kind: str  # str | num | int | bool | list
    required: bool = False
    choices: tuple[str, ...] | None = None
    upper: bool = False
    length: tuple[int | None, int | None] | None = None
    min: float | None = None
    min_exclusive: bool = False
    max: float | None = None
    regex: tuple[re.Pattern[str], str] | None = None
    item: dict[str, Field] | None = None
    allow_none: bool = False


Schema = dict[str, Field]


def _range_error(f: Field, v: float) -> str | None:
    lo_ok = f.min is None or (v > f.min if f.min_exclusive else v >= f.min)
    hi_ok = f.max is None or v <= f.max
    if lo_ok and hi_ok:
        return None
    lo_txt = f"greater than {_num(f.min)}" if f.min_exclusive else f"greater than or equal to {_num(f.min)}"
    if f.min is not None and f.max is not None:
        return f"Must be {lo_txt} and less than or equal to {_num(f.max)}."
    return f"Must be {lo_txt}." if f.min is not None else f"Must be less than or equal to {_num(f.max)}."


def _num(x: float | None) -> str:
    return str(int(x)) if x is not None and float(x).is_integer() else str(x)


def _length_error(f: Field, n: int) -> str | None:
    if f.length is None:
        return None
    lo, hi = f.length
    if (lo is None or n >= lo) and (hi is None or n <= hi):
        return None
    if lo is not None and hi is not None:
        return f"Length must be between {lo} and {hi}."
    return f"Shorter than minimum length {lo}." if lo is not None else f"Longer than maximum length {hi}."


def _convert(f: Field, value: Any) -> tuple[Any, Any]:
    """(clean value, error) for one field; error is a list of messages or a nested dict."""
    if value is None:
        return (None, None) if f.allow_none else (None, ["Field may not be null."])
    if f.kind == "str":
        if not isinstance(value, str):
            return None, ["Not a valid string."]
        out = value.upper() if f.upper else value
        if f.choices is not None and out not in f.choices:
            return None, [f"Must be one of: {', '.join(f.choices)}."]
        if f.regex is not None and not f.regex[0].match(out):
            return None, [f.regex[1]]
        err = _length_error(f, len(out))
        return (None, [err]) if err else (out, None)
    if f.kind in ("num", "int"):
        bad = ["Not a valid number."] if f.kind == "num" else ["Not a valid integer."]
        if isinstance(value, bool):
            return None, bad
        try:
            num = float(value) if isinstance(value, str | int | float) else None
        except ValueError:
            num = None
        if num is None:
            return None, bad
        if math.isnan(num) or math.isinf(num):
            return None, ["Special numeric values (nan or infinity) are not permitted."]
        if f.kind == "int":
            if not num.is_integer():
                return None, bad
            num = int(num)
        err = _range_error(f, num)
        return (None, [err]) if err else (num, None)
    if f.kind == "bool":
        try:
            if value in _TRUE:
                return True, None
            if value in _FALSE:
                return False, None
        except TypeError:
            pass
        return None, ["Not a valid boolean."]
    if f.kind == "list":
        if not isinstance(value, list):
            return None, ["Not a valid list."]
        err = _length_error(f, len(value))
        if err:
            return None, [err]
        if f.item is None:
            return value, None
        out_items, errors = [], {}
        for i, item in enumerate(value):
            clean, item_errors = validate(f.item, item)
            if item_errors:
                errors[i] = item_errors
            out_items.append(clean)
        return (None, errors) if errors else (out_items, None)
    return value, None


def validate(schema: Schema, data: Any, reject_unknown: bool = True) -> tuple[dict[str, Any], dict[Any, Any]]:
    """Check ``data`` against ``schema``; returns (clean data, marshmallow-style errors)."""
    if not isinstance(data, dict):
        return {}, {"_schema": ["Invalid input type."]}
    clean: dict[str, Any] = {}
    errors: dict[Any, Any] = {}
    for name, f in schema.items():
        if name not in data:
            if f.required:
                errors[name] = [MISSING_MSG]
            continue
        value, err = _convert(f, data[name])
        if err:
            errors[name] = err
        else:
            clean[name] = value
    if reject_unknown:
        for name in data:
            if name not in schema:
                errors[name] = ["Unknown field."]
    return clean, errors


def error_body(style: str, errors: dict[Any, Any]) -> dict[str, Any]:
    """The 400 body in OpenAlgo's style A (dict), B (stringified dict), C or D."""
    if style == "A":
        return {"status": "error", "message": errors}
    if style == "B":
        return {"status": "error", "message": str(errors)}
    if style == "C":
        return {"status": "error", "message": "Validation error", "errors": errors}
    return {"status": "error", "message": "Validation failed", "errors": errors}


# --- field building blocks ---------------------------------------------------------------------
APIKEY = Field("str", required=True, length=(1, 256))
STRATEGY = Field("str", required=True)
REQ_STR = Field("str", required=True)
EXCHANGE = Field("str", required=True, choices=EXCHANGES)
ACTION = Field("str", required=True, upper=True, choices=ACTIONS)
PRICE = Field("num", min=0)
ORDER_ITEM: Schema = {
    "exchange": EXCHANGE, "symbol": REQ_STR, "action": ACTION,
    "quantity": Field("num", required=True, min=0, min_exclusive=True),
    "pricetype": Field("str", choices=PRICETYPES), "product": Field("str", choices=PRODUCTS),
    "price": PRICE, "trigger_price": PRICE, "disclosed_quantity": Field("int", min=0),
    "underlying_ltp": Field("num", allow_none=True),
}
OFFSET = Field("str", required=True, regex=(OFFSET_RE, "Offset must be ATM, ITM1-ITM50, or OTM1-OTM50"))
OPTION_TYPE = Field("str", required=True, upper=True, choices=("CE", "PE"))
OPT_EXCHANGE = Field("str", required=True, choices=("NSE_INDEX", "NSE", "NFO", "BSE_INDEX", "BSE", "BFO",
                                                    "MCX", "CDS", "NCO", "BCD", "NCDEX", "CRYPTO"))
OPT_PRODUCT = Field("str", choices=("MIS", "NRML"))
LEG: Schema = {
    "offset": OFFSET, "option_type": OPTION_TYPE, "action": ACTION,
    "quantity": Field("int", required=True, min=1), "splitsize": Field("int", min=0),
    "expiry_date": Field("str"), "pricetype": Field("str", choices=PRICETYPES), "product": OPT_PRODUCT,
    "price": PRICE, "trigger_price": PRICE, "disclosed_quantity": Field("int", min=0),
}
OPTION_BASE: Schema = {
    "apikey": APIKEY, "underlying": REQ_STR, "exchange": OPT_EXCHANGE, "expiry_date": Field("str"),
    "strike_int": Field("num", min=0, min_exclusive=True),
}
ONLY_KEY: Schema = {"apikey": APIKEY}
SYMBOL_EX: Schema = {"apikey": APIKEY, "symbol": REQ_STR, "exchange": EXCHANGE}
ORDER_REF: Schema = {"apikey": APIKEY, "strategy": STRATEGY, "orderid": REQ_STR}

SCHEMAS: dict[str, Schema] = {
    "ping": ONLY_KEY, "funds": ONLY_KEY, "orderbook": ONLY_KEY, "tradebook": ONLY_KEY,
    "positionbook": ONLY_KEY, "holdings": ONLY_KEY, "intervals": ONLY_KEY, "analyzer": ONLY_KEY,
    "analyzer/toggle": {"apikey": APIKEY, "mode": Field("bool", required=True)},
    "margin": {"apikey": APIKEY, "positions": Field("list", required=True, length=(1, 50), item={
        "symbol": Field("str", required=True, length=(1, 50)), "exchange": EXCHANGE, "action": ACTION,
        "quantity": REQ_STR, "product": Field("str", required=True, choices=PRODUCTS),
        "pricetype": Field("str", required=True, choices=PRICETYPES), "price": Field("str"),
        "trigger_price": Field("str")})},
    "placeorder": {"apikey": APIKEY, "strategy": STRATEGY, **ORDER_ITEM},
    "placesmartorder": {"apikey": APIKEY, "strategy": STRATEGY, **ORDER_ITEM,
                        "quantity": Field("num", required=True, min=0),  # 0 is normal with position_size
                        "position_size": Field("num", required=True)},
    "basketorder": {"apikey": APIKEY, "strategy": STRATEGY,
                    "orders": Field("list", required=True, item=ORDER_ITEM)},
    "splitorder": {"apikey": APIKEY, "strategy": STRATEGY, **ORDER_ITEM,
                   "splitsize": Field("int", required=True, min=1)},
    "modifyorder": {
        "apikey": APIKEY, "strategy": STRATEGY, "orderid": REQ_STR, "exchange": EXCHANGE, "symbol": REQ_STR,
        "action": ACTION, "product": Field("str", required=True, choices=PRODUCTS),
        "pricetype": Field("str", required=True, choices=PRICETYPES), "price": Field("num", required=True, min=0),
        "quantity": Field("num", required=True, min=0, min_exclusive=True),
        "disclosed_quantity": Field("int", required=True, min=0),
        "trigger_price": Field("num", required=True, min=0)},
    "cancelorder": ORDER_REF, "orderstatus": ORDER_REF,
    "cancelallorder": {"apikey": APIKEY, "strategy": STRATEGY},
    "closeposition": {"apikey": APIKEY, "strategy": STRATEGY},
    "openposition": {"apikey": APIKEY, "strategy": STRATEGY, "symbol": REQ_STR, "exchange": REQ_STR,
                     "product": Field("str", required=True, choices=PRODUCTS)},
    "quotes": SYMBOL_EX, "depth": SYMBOL_EX, "symbol": SYMBOL_EX,
    "multiquotes": {"apikey": APIKEY, "symbols": Field("list", required=True, length=(1, None),
                                                       item={"symbol": REQ_STR, "exchange": EXCHANGE})},
    "history": {"apikey": APIKEY, "symbol": REQ_STR, "exchange": EXCHANGE,
                "interval": Field("str", required=True, choices=tuple(SCHEMA_INTERVALS)),
                "start_date": REQ_STR, "end_date": REQ_STR, "source": Field("str", choices=("api", "db"))},
    "search": {"apikey": APIKEY, "query": REQ_STR, "exchange": Field("str", choices=EXCHANGES)},
    "expiry": {"apikey": APIKEY, "symbol": REQ_STR, "exchange": Field("str", required=True, choices=FO_SUBSET),
               "instrumenttype": Field("str", required=True, choices=("futures", "options"))},
    "instruments": {"apikey": APIKEY, "exchange": Field("str", choices=EXCHANGES),
                    "format": Field("str", choices=("json", "csv"))},
    "optionsorder": {**OPTION_BASE, "strategy": STRATEGY, "offset": OFFSET, "option_type": OPTION_TYPE,
                     "action": ACTION, "quantity": Field("int", required=True, min=1),
                     "splitsize": Field("int", min=0), "pricetype": Field("str", choices=PRICETYPES),
                     "product": OPT_PRODUCT, "price": PRICE, "trigger_price": PRICE,
                     "disclosed_quantity": Field("int", min=0)},
    "optionsmultiorder": {**OPTION_BASE, "strategy": STRATEGY,
                          "legs": Field("list", required=True, length=(1, 20), item=LEG)},
    "optionsymbol": {**OPTION_BASE, "strategy": Field("str", allow_none=True), "offset": OFFSET,
                     "option_type": OPTION_TYPE},
    "optionchain": {**OPTION_BASE, "strike_count": Field("int", min=1, max=100),
                    "with_greeks": Field("bool"), "interest_rate": Field("num", min=0, max=100)},
    "syntheticfuture": {"apikey": APIKEY, "underlying": REQ_STR, "exchange": OPT_EXCHANGE,
                        "expiry_date": REQ_STR},
    "optiongreeks": {"apikey": APIKEY, "symbol": REQ_STR,
                     "exchange": Field("str", required=True, choices=FO_SUBSET),
                     "interest_rate": Field("num", min=0, max=100), "forward_price": Field("num", min=0),
                     "underlying_symbol": Field("str"), "underlying_exchange": Field("str", choices=EXCHANGES),
                     "expiry_time": Field("str")},
}
