"""Lenient parsing of OpenAlgo payloads into typed values.

Brokers differ: numbers may arrive as strings ("320.66", "1,234.50"), fields may be missing
or null, and sandbox responses carry extra keys. Everything that leaves this module is typed:
money and prices as Decimal, quantities as int, order ids as str.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from app.broker.errors import NotOpenAlgo

ZERO = Decimal("0")


def to_decimal(value: Any, default: Decimal = ZERO) -> Decimal:
    """Parse a number that may be a string, int, float or missing."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return default
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    text = str(value).strip().replace(",", "")
    try:
        return Decimal(text)
    except InvalidOperation:
        return default


def to_int(value: Any, default: int = 0) -> int:
    number = to_decimal(value, Decimal(default))
    return int(number.to_integral_value())


def to_str(value: Any) -> str:
    return "" if value is None else str(value)


def normalize_status(value: Any) -> str:
    """Canonical order status: open, complete, cancelled, rejected, trigger pending (lower case)."""
    status = to_str(value).strip().lower().replace("_", " ")
    return {"canceled": "cancelled", "completed": "complete", "filled": "complete"}.get(status, status)


@dataclass(frozen=True)
class Funds:
    available_cash: Decimal
    collateral: Decimal
    utilised_debits: Decimal
    m2m_realized: Decimal
    m2m_unrealized: Decimal

    def as_json(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Position:
    symbol: str
    exchange: str
    product: str
    quantity: int
    average_price: Decimal
    ltp: Decimal
    pnl: Decimal

    def as_json(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "exchange": self.exchange, "product": self.product,
                "quantity": self.quantity, "average_price": str(self.average_price), "ltp": str(self.ltp),
                "pnl": str(self.pnl)}


@dataclass(frozen=True)
class Order:
    order_id: str
    symbol: str
    exchange: str
    action: str
    quantity: int
    price: Decimal
    trigger_price: Decimal
    price_type: str
    product: str
    status: str
    timestamp: str
    filled_quantity: int | None = None
    average_price: Decimal | None = None
    rejection_reason: str = ""


@dataclass(frozen=True)
class Trade:
    order_id: str
    symbol: str
    exchange: str
    product: str
    action: str
    quantity: int
    average_price: Decimal
    trade_value: Decimal
    timestamp: str


@dataclass(frozen=True)
class Holding:
    symbol: str
    exchange: str
    product: str
    quantity: int
    average_price: Decimal
    pnl: Decimal
    pnl_percent: Decimal
    ltp: Decimal | None = None


@dataclass(frozen=True)
class Holdings:
    items: list[Holding]
    total_holding_value: Decimal
    total_investment: Decimal
    total_pnl: Decimal
    total_pnl_percent: Decimal


@dataclass(frozen=True)
class Quote:
    ltp: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    prev_close: Decimal
    bid: Decimal
    ask: Decimal
    volume: int
    oi: int


@dataclass(frozen=True)
class OrderAck:
    """The broker accepted an order request. `order_ids` has one id per (split) child order."""

    order_ids: list[str]
    pending_order_id: str | None = None  # semi-auto mode: queued for approval, no broker order yet
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _require_dict(payload: Any, what: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise NotOpenAlgo(f"Unexpected {what} response: expected an object")
    return payload


def _require_list(payload: Any, what: str) -> list[Any]:
    if not isinstance(payload, list):
        raise NotOpenAlgo(f"Unexpected {what} response: expected a list")
    return payload


def parse_funds(body: dict[str, Any]) -> Funds:
    data = _require_dict(body.get("data"), "funds")
    if data and "availablecash" not in data:
        raise NotOpenAlgo("Unexpected funds response: no availablecash field")
    return Funds(
        available_cash=to_decimal(data.get("availablecash")),
        collateral=to_decimal(data.get("collateral")),
        utilised_debits=to_decimal(data.get("utiliseddebits")),
        m2m_realized=to_decimal(data.get("m2mrealized")),
        m2m_unrealized=to_decimal(data.get("m2munrealized")),
    )


def parse_positions(body: dict[str, Any]) -> list[Position]:
    rows = body.get("data") or []
    return [
        Position(
            symbol=to_str(r.get("symbol")), exchange=to_str(r.get("exchange")), product=to_str(r.get("product")),
            quantity=to_int(r.get("quantity")), average_price=to_decimal(r.get("average_price")),
            ltp=to_decimal(r.get("ltp")), pnl=to_decimal(r.get("pnl")),
        )
        for r in _require_list(rows, "positionbook")
        if isinstance(r, dict)
    ]


def parse_order(r: dict[str, Any]) -> Order:
    filled = r.get("filled_quantity")
    average = r.get("average_price")
    return Order(
        order_id=to_str(r.get("orderid")), symbol=to_str(r.get("symbol")), exchange=to_str(r.get("exchange")),
        action=to_str(r.get("action")).upper(), quantity=to_int(r.get("quantity")),
        price=to_decimal(r.get("price")), trigger_price=to_decimal(r.get("trigger_price")),
        price_type=to_str(r.get("pricetype") or r.get("price_type")), product=to_str(r.get("product")),
        status=normalize_status(r.get("order_status")), timestamp=to_str(r.get("timestamp")),
        filled_quantity=None if filled is None else to_int(filled),
        average_price=None if average is None else to_decimal(average),
        rejection_reason=to_str(r.get("rejection_reason")),
    )


def parse_orderbook(body: dict[str, Any]) -> list[Order]:
    data = body.get("data") or {}
    orders = data.get("orders") if isinstance(data, dict) else data
    return [parse_order(r) for r in _require_list(orders or [], "orderbook") if isinstance(r, dict)]


def parse_tradebook(body: dict[str, Any]) -> list[Trade]:
    rows = body.get("data") or []
    return [
        Trade(
            order_id=to_str(r.get("orderid")), symbol=to_str(r.get("symbol")), exchange=to_str(r.get("exchange")),
            product=to_str(r.get("product")), action=to_str(r.get("action")).upper(),
            quantity=to_int(r.get("quantity")), average_price=to_decimal(r.get("average_price")),
            trade_value=to_decimal(r.get("trade_value")), timestamp=to_str(r.get("timestamp")),
        )
        for r in _require_list(rows, "tradebook")
        if isinstance(r, dict)
    ]


def parse_holdings(body: dict[str, Any]) -> Holdings:
    data = _require_dict(body.get("data") or {}, "holdings")
    stats = data.get("statistics") or {}
    items = [
        Holding(
            symbol=to_str(r.get("symbol")), exchange=to_str(r.get("exchange")), product=to_str(r.get("product")),
            quantity=to_int(r.get("quantity")), average_price=to_decimal(r.get("average_price")),
            pnl=to_decimal(r.get("pnl")), pnl_percent=to_decimal(r.get("pnlpercent")),
            ltp=None if r.get("ltp") is None else to_decimal(r.get("ltp")),
        )
        for r in _require_list(data.get("holdings") or [], "holdings")
        if isinstance(r, dict)
    ]
    return Holdings(
        items=items,
        total_holding_value=to_decimal(stats.get("totalholdingvalue")),
        total_investment=to_decimal(stats.get("totalinvvalue")),
        total_pnl=to_decimal(stats.get("totalprofitandloss")),
        total_pnl_percent=to_decimal(stats.get("totalpnlpercentage")),
    )


def parse_quote(data: dict[str, Any]) -> Quote:
    return Quote(
        ltp=to_decimal(data.get("ltp")), open=to_decimal(data.get("open")), high=to_decimal(data.get("high")),
        low=to_decimal(data.get("low")), prev_close=to_decimal(data.get("prev_close")),
        bid=to_decimal(data.get("bid")), ask=to_decimal(data.get("ask")), volume=to_int(data.get("volume")),
        oi=to_int(data.get("oi")),
    )


def parse_order_ack(body: dict[str, Any]) -> OrderAck:
    if body.get("pending_order_id") is not None:
        return OrderAck([], pending_order_id=to_str(body["pending_order_id"]), message=to_str(body.get("message")))
    if body.get("orderid") is not None:
        return OrderAck([to_str(body["orderid"])], message=to_str(body.get("message")))
    results = body.get("results")
    if isinstance(results, list):
        ids = [to_str(r["orderid"]) for r in results if isinstance(r, dict) and r.get("orderid")]
        return OrderAck(ids, message=to_str(body.get("message")), extra={"results": results})
    return OrderAck([], message=to_str(body.get("message")))


@dataclass(frozen=True)
class OptionLeg:
    symbol: str
    label: str
    ltp: Decimal
    prev_close: Decimal
    volume: int
    oi: int
    iv: Decimal | None
    delta: Decimal | None
    gamma: Decimal | None
    theta: Decimal | None
    vega: Decimal | None
    lot_size: int
    tick_size: Decimal = ZERO

    @property
    def change(self) -> Decimal:
        return self.ltp - self.prev_close


@dataclass(frozen=True)
class OptionChainRow:
    strike: Decimal
    ce: OptionLeg | None
    pe: OptionLeg | None


@dataclass(frozen=True)
class OptionChain:
    underlying: str
    underlying_ltp: Decimal
    expiry: str
    atm_strike: Decimal
    rows: list[OptionChainRow]
    quotes_included: bool = True  # False: the legs carry no live prices (LTPs are not quotes)
    server_ts: int | None = None  # the broker's clock when it built the answer (epoch seconds)


def _optional_decimal(value: Any) -> Decimal | None:
    return None if value is None else to_decimal(value)


def parse_option_leg(raw: Any) -> OptionLeg | None:
    if not isinstance(raw, dict):
        return None
    return OptionLeg(
        symbol=to_str(raw.get("symbol")), label=to_str(raw.get("label")), ltp=to_decimal(raw.get("ltp")),
        prev_close=to_decimal(raw.get("prev_close")), volume=to_int(raw.get("volume")), oi=to_int(raw.get("oi")),
        iv=_optional_decimal(raw.get("implied_volatility")), delta=_optional_decimal(raw.get("delta")),
        gamma=_optional_decimal(raw.get("gamma")), theta=_optional_decimal(raw.get("theta")),
        vega=_optional_decimal(raw.get("vega")), lot_size=to_int(raw.get("lotsize")),
        tick_size=to_decimal(raw.get("tick_size")),
    )


def parse_option_chain(body: dict[str, Any]) -> OptionChain:
    rows = [
        OptionChainRow(strike=to_decimal(r.get("strike")), ce=parse_option_leg(r.get("ce")),
                       pe=parse_option_leg(r.get("pe")))
        for r in _require_list(body.get("chain") or [], "optionchain")
        if isinstance(r, dict)
    ]
    return OptionChain(underlying=to_str(body.get("underlying")), underlying_ltp=to_decimal(body.get("underlying_ltp")),
                       expiry=to_str(body.get("expiry_date")), atm_strike=to_decimal(body.get("atm_strike")), rows=rows,
                       quotes_included=_flag(body.get("quotes_included"), default=True),
                       server_ts=None if body.get("server_ts") in (None, "") else to_int(body.get("server_ts")))


def _flag(value: Any, *, default: bool) -> bool:
    """A boolean that may arrive as true/false, "true"/"false" or 1/0."""
    if value is None or value == "":
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def expiry_to_request_format(expiry: str) -> str:
    """'30-DEC-25' (from /expiry) → '30DEC25' (what option requests take)."""
    return expiry.replace("-", "").upper()


@dataclass(frozen=True)
class BasketMargin:
    """What the broker's `/margin` asks for a basket; `total` includes any hedge benefit it grants."""

    total: Decimal
    span: Decimal
    exposure: Decimal
    margin_benefit: Decimal | None = None  # only some brokers report it


def parse_basket_margin(body: dict[str, Any]) -> BasketMargin:
    data = _require_dict(body.get("data"), "margin")
    if data.get("total_margin_required") is None:
        raise NotOpenAlgo("Unexpected margin response: no total_margin_required field")
    total = to_decimal(data.get("total_margin_required"))
    span = to_decimal(data.get("span_margin"))
    return BasketMargin(total=total, span=span,
                        exposure=to_decimal(data.get("exposure_margin"), default=total - span),
                        margin_benefit=_optional_decimal(data.get("margin_benefit")))


@dataclass(frozen=True)
class SymbolInfo:
    """One contract of the broker's master contract (`/symbol`)."""

    symbol: str
    exchange: str
    name: str
    expiry: str  # as the master lists it ("30-DEC-25"), "" for cash and indices
    strike: Decimal | None  # None for futures, cash and indices (OpenAlgo writes -0.01)
    lot_size: int
    tick_size: Decimal
    freeze_qty: int | None  # None when the broker does not report one
    instrument_type: str


def parse_symbol_info(data: Any) -> SymbolInfo:
    row = _require_dict(data, "symbol")
    if not row.get("symbol"):
        raise NotOpenAlgo("Unexpected symbol response: no symbol field")
    strike = _optional_decimal(row.get("strike"))
    freeze = row.get("freeze_qty")
    return SymbolInfo(
        symbol=to_str(row.get("symbol")), exchange=to_str(row.get("exchange")), name=to_str(row.get("name")),
        expiry=to_str(row.get("expiry")), strike=strike if strike is not None and strike > 0 else None,
        lot_size=to_int(row.get("lotsize")), tick_size=to_decimal(row.get("tick_size")),
        freeze_qty=None if freeze in (None, "") else to_int(freeze),
        instrument_type=to_str(row.get("instrumenttype")))


@dataclass(frozen=True)
class OptionSymbol:
    """The broker's own resolution of an (underlying, expiry, offset, type) to a contract (`/optionsymbol`)."""

    symbol: str
    exchange: str
    lot_size: int
    tick_size: Decimal
    freeze_qty: int | None
    underlying_ltp: Decimal


def parse_option_symbol(body: dict[str, Any]) -> OptionSymbol:
    if not body.get("symbol"):
        raise NotOpenAlgo("Unexpected optionsymbol response: no symbol field")
    freeze = body.get("freeze_qty")
    return OptionSymbol(symbol=to_str(body.get("symbol")), exchange=to_str(body.get("exchange")),
                        lot_size=to_int(body.get("lotsize")), tick_size=to_decimal(body.get("tick_size")),
                        freeze_qty=None if freeze in (None, "") else to_int(freeze),
                        underlying_ltp=to_decimal(body.get("underlying_ltp")))


@dataclass(frozen=True)
class HistoryCandle:
    """One candle of /history; `start` is an aware UTC instant (OpenAlgo sends epoch seconds)."""

    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


def parse_history(body: dict[str, Any]) -> list[HistoryCandle]:
    """/history's candles in time order; rows without a timestamp or a positive close are left out."""
    out = []
    for row in _require_list(body.get("data"), "history"):
        if not isinstance(row, dict):
            continue
        try:
            start = datetime.fromtimestamp(int(row["timestamp"]), tz=UTC)
        except (KeyError, TypeError, ValueError, OverflowError):
            continue
        close = to_decimal(row.get("close"))
        if close <= 0:
            continue
        out.append(HistoryCandle(start, to_decimal(row.get("open"), close), to_decimal(row.get("high"), close),
                                 to_decimal(row.get("low"), close), close))
    return sorted(out, key=lambda c: c.start)
