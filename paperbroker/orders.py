"""The matching engine: order checks, fills, modification, cancellation and MIS square-off.

Partial fills (partial.py): an order planned in parts keeps ``parts_left``; each fill takes the next
part once it is due (wall time) and the order stays ``open`` until the last part makes it
``complete``. Every part is one fill: a trade row, a position update and an ``order_update`` frame,
all in one synchronous step, so the order, trade and position books always agree. Cancelling between
parts leaves ``cancelled`` with the filled quantity kept; a partly filled order cannot be modified.
``Engine.schedule`` (set by the server to the event loop's ``call_later``) wakes the engine when a
part is due; without it, due parts fill on the next price move or ``fill_due_parts`` call.

Rejection faults (faults.py): the dispatcher sets ``fault_reject`` for one request; ``place`` then
refuses (``http``) or records a ``rejected`` order (``order``) after the ordinary checks pass.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from paperbroker import nse_calendar as cal
from paperbroker.accounts import (
    CANCELLED,
    COMPLETE,
    OPEN,
    REJECTED,
    TRIGGER_PENDING,
    Account,
    Order,
    Position,
    Trade,
    after_fill,
    position_margin,
)
from paperbroker.faults import RejectFault
from paperbroker.instruments import FO_EXCHANGES, Instrument
from paperbroker.market import Market
from paperbroker.partial import PartialFills
from paperbroker.pricing import round_tick

log = logging.getLogger(__name__)
OrderListener = Callable[[Account, Order], None]
Scheduler = Callable[[float, Callable[[], None]], object]
PART_EARLY_SLACK = 0.002  # seconds: a timer may fire a hair before the wall clock reaches the due time


class Reject(Exception):
    """An order the broker refuses; ``status`` is the HTTP code to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Engine:
    """Owns all accounts and matches their orders against the market model."""

    def __init__(self, market: Market, *, real_hours: bool = False, slippage_ticks: int = 0) -> None:
        self.market = market
        self.master = market.master
        self.clock = market.clock
        self.real_hours = real_hours
        self.slippage_ticks = slippage_ticks
        self.accounts: dict[str, Account] = {}
        self.open_orders: dict[str, tuple[Account, Order]] = {}
        self.listeners: list[OrderListener] = []
        self.dirty: set[str] = set()
        self.order_seq = 0
        self.trade_seq = 0
        self.last_square_off: date | None = None
        self.default_partial: PartialFills | None = None
        self.schedule: Scheduler | None = None
        self.fault_reject: RejectFault | None = None
        market.listeners.append(lambda names: self.match(set(names)))

    # --- helpers -------------------------------------------------------------------------------
    def _next_id(self, trade: bool = False) -> str:
        if trade:
            self.trade_seq += 1
            seq = self.trade_seq
        else:
            self.order_seq += 1
            seq = self.order_seq
        return self.clock.now_ist().strftime("%y%m%d") + f"{seq % 10**8:08d}"

    def _emit(self, acct: Account, order: Order) -> None:
        self.dirty.add(acct.apikey)
        for listener in self.listeners:
            try:
                listener(acct, order)
            except Exception:
                log.exception("order listener failed")

    def instrument(self, exchange: str, symbol: str) -> Instrument:
        inst = self.master.get(exchange, symbol)
        if inst is None:
            raise Reject(f"Symbol {symbol} not found on {exchange}")
        return inst

    def spot(self, inst: Instrument) -> float:
        return self.market.spot[inst.name]

    def margin_used(self, acct: Account) -> float:
        total = sum(o.blocked for a, o in self.open_orders.values() if a is acct)
        for pos in acct.positions.values():
            if pos.quantity:
                inst = self.master.get(pos.exchange, pos.symbol)
                if inst is not None:
                    total += position_margin(inst, pos.quantity, pos.average_price, pos.product, self.spot(inst))
        return total

    def available(self, acct: Account) -> float:
        return acct.funds + acct.realized - self.margin_used(acct)

    def unrealized(self, pos: Position) -> float:
        inst = self.master.get(pos.exchange, pos.symbol)
        if inst is None or pos.quantity == 0:
            return 0.0
        return (self.market.ltp(inst) - pos.average_price) * pos.quantity

    # --- placement -----------------------------------------------------------------------------
    def _check(self, acct: Account, inst: Instrument, action: str, qty_raw: float, pricetype: str,
               product: str, price: float, trigger: float) -> int:
        """Every pre-trade rule; returns the integer quantity or raises Reject."""
        now_ist = self.clock.now_ist()
        if self.real_hours and not cal.in_session(now_ist):
            raise Reject("Market is closed. NSE/BSE trade Monday to Friday 09:15-15:30 IST")
        if not inst.tradable:
            raise Reject(f"Orders are not allowed on index {inst.symbol} ({inst.exchange})")
        if not self.master.is_listed(inst):
            raise Reject(f"Contract {inst.symbol} has expired")
        if qty_raw != int(qty_raw):
            raise Reject(f"Fractional quantity ({qty_raw}) is not allowed for non-crypto exchanges.")
        qty = int(qty_raw)
        if inst.exchange in FO_EXCHANGES and product == "CNC":
            raise Reject(f"CNC product is not allowed on {inst.exchange}; use NRML or MIS")
        if inst.exchange not in FO_EXCHANGES and product == "NRML":
            raise Reject(f"NRML product is not allowed on {inst.exchange}; use CNC or MIS")
        if qty % inst.lot_size:
            raise Reject(f"Quantity {qty} is not a multiple of lot size {inst.lot_size} for {inst.symbol}")
        if inst.exchange in FO_EXCHANGES and qty > inst.freeze_qty:
            raise Reject(
                f"Quantity {qty} exceeds the freeze quantity {inst.freeze_qty} for {inst.symbol}; "
                f"place at most {inst.freeze_qty} per order or use splitorder"
            )
        if pricetype in ("LIMIT", "SL") and price <= 0:
            raise Reject(f"{pricetype} orders require price")
        if pricetype in ("SL", "SL-M") and trigger <= 0:
            raise Reject(f"{pricetype} orders require trigger_price")
        if pricetype == "SL" and (trigger > price if action == "BUY" else trigger < price):
            raise Reject(f"Trigger price must be {'at or below' if action == 'BUY' else 'at or above'} "
                         f"the limit price for a {action} SL order")
        for label, value in (("Price", price), ("Trigger price", trigger)):
            if value and abs(value / inst.tick_size - round(value / inst.tick_size)) > 1e-6:
                raise Reject(f"{label} {value} is not a multiple of tick size {inst.tick_size}")
        pos = acct.positions.get((inst.symbol, inst.exchange, product))
        held = pos.quantity if pos else 0
        reducing = held != 0 and (held > 0) == (action == "SELL") and qty <= abs(held)
        if product == "CNC" and action == "SELL":
            pending = sum(o.pending_quantity for a, o in self.open_orders.values()
                          if a is acct and o.product == "CNC" and o.action == "SELL" and o.symbol == inst.symbol)
            if held - pending < qty:
                raise Reject(f"Insufficient holdings to sell {qty} {inst.symbol} (CNC): holding {max(held, 0)}")
        if (self.real_hours and product == "MIS" and not reducing
                and now_ist.time() >= cal.SQUARE_OFF):
            raise Reject("MIS orders are not allowed after the 15:15 IST square-off")
        return qty

    def _required_margin(self, acct: Account, inst: Instrument, signed: int, price: float, product: str) -> float:
        pos = acct.positions.get((inst.symbol, inst.exchange, product))
        spot = self.spot(inst)
        before = position_margin(inst, pos.quantity, pos.average_price, product, spot) if pos else 0.0
        qty, avg = after_fill(pos, signed, price)
        return max(position_margin(inst, qty, avg, product, spot) - before, 0.0)

    def place(self, acct: Account, req: dict[str, Any]) -> Order:
        """Validate and accept an order; MARKET and marketable LIMIT orders fill at once."""
        inst = self.instrument(req["exchange"], req["symbol"])
        action, pricetype, product = req["action"], req.get("pricetype", "MARKET"), req.get("product", "MIS")
        price, trigger = float(req.get("price") or 0), float(req.get("trigger_price") or 0)
        qty = self._check(acct, inst, action, float(req["quantity"]), pricetype, product, price, trigger)
        bid, ask = self.market.touch(inst)
        estimate = price if pricetype in ("LIMIT", "SL") else (ask if action == "BUY" else bid)
        signed = qty if action == "BUY" else -qty
        required = self._required_margin(acct, inst, signed, estimate, product)
        avail = self.available(acct)
        if required > avail + 1e-6:
            raise Reject(f"Insufficient funds: required margin {required:.2f}, available {avail:.2f}")
        status = TRIGGER_PENDING if pricetype in ("SL", "SL-M") else OPEN
        order = Order(self._next_id(), inst.symbol, inst.exchange, action, qty,
                      price if pricetype != "MARKET" else 0.0, trigger, pricetype, product,
                      str(req.get("strategy") or ""), status, self.clock.epoch(),
                      disclosed_quantity=int(float(req.get("disclosed_quantity") or 0)), blocked=required)
        if self.fault_reject is not None:
            return self._fault_reject(acct, inst, order, required or estimate * qty, avail)
        self._plan_parts(acct, order, inst)
        acct.orders[order.orderid] = order
        self.open_orders[order.orderid] = (acct, order)
        self._emit(acct, order)
        self._try_fill(acct, order, inst)
        return order

    def _fault_reject(self, acct: Account, inst: Instrument, order: Order, required: float,
                      available: float) -> Order:
        """Apply the request's rejection fault: raise (http mode) or record a rejected order."""
        fault = self.fault_reject
        assert fault is not None
        text = fault.text(inst.symbol, inst.exchange, order.product, required, available)
        if fault.mode == "http":
            raise Reject(text)
        order.status, order.rejection_reason, order.blocked = REJECTED, text, 0.0
        acct.orders[order.orderid] = order
        self._emit(acct, order)
        return order

    # --- partial fills -------------------------------------------------------------------------
    def partial_spec(self, acct: Account) -> PartialFills | None:
        """The account's partial-fill spec: its own, none (False), or the broker default (None)."""
        own = acct.options.partial_fills
        if own is False:
            return None
        if isinstance(own, dict):
            return PartialFills.from_dict(own)
        return self.default_partial

    def _plan_parts(self, acct: Account, order: Order, inst: Instrument) -> None:
        """Plan ``order`` in parts when the account's spec applies to it (before any fill)."""
        order.parts_left, order.part_due, order.part_interval = [], 0.0, 0.0
        spec = self.partial_spec(acct)
        if spec is None or not spec.applies(order.quantity, order.pricetype):
            return
        unit = inst.lot_size if inst.exchange in FO_EXCHANGES else 1
        parts = spec.split(order.quantity, unit)
        if len(parts) > 1:
            order.parts_left, order.part_interval = parts, spec.interval_ms / 1000.0

    def _schedule_part(self, acct: Account, order: Order) -> None:
        if self.schedule is not None:
            self.schedule(max(order.part_due - time.time(), 0.0), lambda: self._part_due(acct, order))

    def _part_due(self, acct: Account, order: Order) -> None:
        entry = self.open_orders.get(order.orderid)
        if entry is None or entry[1] is not order or not order.parts_left:
            return  # cancelled, deleted or reset since
        if time.time() < order.part_due - PART_EARLY_SLACK:
            self._schedule_part(acct, order)
            return
        inst = self.master.get(order.exchange, order.symbol)
        if inst is not None:
            self._try_fill(acct, order, inst)

    def resume_parts(self) -> None:
        """Schedule the next part of every open order in parts (after a restore or a new scheduler)."""
        for acct, order in list(self.open_orders.values()):
            if order.parts_left:
                self._schedule_part(acct, order)

    def fill_due_parts(self) -> None:
        """Fill every part that is due now (for callers without a scheduler)."""
        for acct, order in list(self.open_orders.values()):
            if order.parts_left and time.time() >= order.part_due - PART_EARLY_SLACK:
                self._part_due(acct, order)

    # --- matching ------------------------------------------------------------------------------
    def _try_fill(self, acct: Account, order: Order, inst: Instrument) -> None:
        ltp = self.market.ltp(inst)
        bid, ask = self.market.touch(inst)
        buy = order.action == "BUY"
        if order.status == TRIGGER_PENDING:
            if not (ltp >= order.trigger_price if buy else ltp <= order.trigger_price):
                return
            order.status = OPEN
            self._emit(acct, order)
        touch = ask if buy else bid
        if order.pricetype in ("MARKET", "SL-M"):
            slip = self.slippage_ticks * inst.tick_size
            self._fill_next(acct, order, round_tick(touch + slip if buy else max(touch - slip, inst.tick_size)))
        elif (touch <= order.price) if buy else (touch >= order.price):
            self._fill_next(acct, order, touch)

    def _fill_next(self, acct: Account, order: Order, price: float) -> None:
        """Fill the rest of ``order``, or its next part when it fills in parts and the part is due."""
        if order.parts_left:
            if time.time() < order.part_due - PART_EARLY_SLACK:
                return
            qty = order.parts_left.pop(0)
        else:
            qty = order.quantity - order.filled_quantity
        self._fill(acct, order, price, qty)
        if order.parts_left:
            order.part_due = time.time() + order.part_interval
            self._schedule_part(acct, order)

    def _fill(self, acct: Account, order: Order, price: float, qty: int) -> None:
        """One fill of ``qty`` at ``price``: position, order, trade row and one order_update together."""
        pos = acct.position(order.symbol, order.exchange, order.product)
        pos.apply_fill(qty if order.action == "BUY" else -qty, price)
        before = order.quantity - order.filled_quantity
        order.average_price = (order.average_price * order.filled_quantity + price * qty) / (
            order.filled_quantity + qty)
        order.filled_quantity += qty
        left = order.quantity - order.filled_quantity
        acct.trades.append(Trade(self._next_id(trade=True), order.orderid, order.symbol, order.exchange,
                                 order.product, order.action, qty, price, self.clock.epoch(), order.strategy))
        if left <= 0:
            order.status, order.blocked, order.parts_left = COMPLETE, 0.0, []
            self.open_orders.pop(order.orderid, None)
        else:
            order.blocked *= left / before  # the margin held for the part still open
        self._emit(acct, order)

    def match(self, names: set[str] | None = None) -> None:
        """Check every resting order whose underlying moved (all when ``names`` is None)."""
        for acct, order in list(self.open_orders.values()):
            inst = self.master.get(order.exchange, order.symbol)
            if inst is None or (names is not None and inst.name not in names):
                continue
            self._try_fill(acct, order, inst)
        self.check_square_off()

    # --- changes to open orders ---------------------------------------------------------------
    def get_order(self, acct: Account, orderid: str) -> Order:
        order = acct.orders.get(str(orderid))
        if order is None:
            raise Reject(f"Order {orderid} not found", 404)
        return order

    def modify(self, acct: Account, orderid: str, req: dict[str, Any]) -> Order:
        order = self.get_order(acct, orderid)
        if not order.is_live:
            raise Reject(f"Cannot modify order in {order.status} status")
        if order.filled_quantity:
            raise Reject(f"Cannot modify a partially filled order ({order.filled_quantity} of "
                         f"{order.quantity} filled); cancel the rest and place a new order")
        inst = self.instrument(order.exchange, order.symbol)
        pricetype = req["pricetype"]
        price, trigger = float(req["price"] or 0), float(req["trigger_price"] or 0)
        self.open_orders.pop(order.orderid, None)
        saved = order.blocked
        order.blocked = 0.0
        try:
            qty = self._check(acct, inst, order.action, float(req["quantity"]), pricetype, order.product,
                              price, trigger)
            estimate = price if pricetype in ("LIMIT", "SL") else self.market.ltp(inst)
            signed = qty if order.action == "BUY" else -qty
            required = self._required_margin(acct, inst, signed, estimate, order.product)
            if required > self.available(acct) + 1e-6:
                raise Reject(f"Insufficient funds: required margin {required:.2f}")
        except Reject:
            order.blocked = saved
            self.open_orders[order.orderid] = (acct, order)
            raise
        order.quantity, order.pricetype, order.blocked = qty, pricetype, required
        order.price = price if pricetype != "MARKET" else 0.0
        order.trigger_price = trigger
        order.disclosed_quantity = int(float(req.get("disclosed_quantity") or 0))
        order.status = TRIGGER_PENDING if pricetype in ("SL", "SL-M") else OPEN
        self._plan_parts(acct, order, inst)  # new quantity or type: plan again (nothing is filled yet)
        self.open_orders[order.orderid] = (acct, order)
        self._emit(acct, order)
        self._try_fill(acct, order, inst)
        return order

    def cancel(self, acct: Account, orderid: str) -> Order:
        order = self.get_order(acct, orderid)
        if not order.is_live:
            raise Reject(f"Cannot cancel order in {order.status} status")
        order.status, order.blocked, order.parts_left = CANCELLED, 0.0, []
        self.open_orders.pop(order.orderid, None)
        self._emit(acct, order)
        return order

    def cancel_all(self, acct: Account) -> tuple[list[str], list[dict[str, str]]]:
        done: list[str] = []
        failed: list[dict[str, str]] = []
        for order in [o for o in acct.orders.values() if o.is_live]:
            try:
                done.append(self.cancel(acct, order.orderid).orderid)
            except Reject as exc:
                failed.append({"orderid": order.orderid, "message": exc.message})
        return done, failed

    def close_positions(self, acct: Account, strategy: str, product: str | None = None) -> list[str]:
        """Square off open positions with MARKET orders split at the freeze quantity."""
        ids: list[str] = []
        for pos in list(acct.positions.values()):
            if pos.quantity == 0 or (product is not None and pos.product != product):
                continue
            inst = self.master.get(pos.exchange, pos.symbol)
            if inst is None:
                continue
            action = "SELL" if pos.quantity > 0 else "BUY"
            remaining = abs(pos.quantity)
            chunk = inst.freeze_qty if inst.exchange in FO_EXCHANGES else remaining
            while remaining > 0:
                qty = min(chunk, remaining)
                order = self._force_market(acct, inst, action, qty, pos.product, strategy)
                ids.append(order.orderid)
                remaining -= qty
        return ids

    def _force_market(self, acct: Account, inst: Instrument, action: str, qty: int, product: str,
                      strategy: str) -> Order:
        order = Order(self._next_id(), inst.symbol, inst.exchange, action, qty, 0.0, 0.0, "MARKET", product,
                      strategy, OPEN, self.clock.epoch())
        acct.orders[order.orderid] = order
        self.open_orders[order.orderid] = (acct, order)
        self._emit(acct, order)
        self._try_fill(acct, order, inst)
        return order

    def smart(self, acct: Account, req: dict[str, Any]) -> Order | None:
        """placesmartorder: trade toward the signed target ``position_size``; None when already there."""
        inst = self.instrument(req["exchange"], req["symbol"])
        target = int(float(req["position_size"]))
        pos = acct.positions.get((inst.symbol, inst.exchange, req.get("product", "MIS")))
        current = pos.quantity if pos else 0
        if target == 0 and current == 0:
            return self.place(acct, req) if float(req["quantity"]) > 0 else None
        if target == current:
            return None
        delta = target - current
        return self.place(acct, {**req, "action": "BUY" if delta > 0 else "SELL", "quantity": abs(delta)})

    # --- session events ------------------------------------------------------------------------
    def check_square_off(self) -> int:
        """Square off MIS once per day at 15:15 IST on the simulated clock; returns orders placed."""
        now_ist = self.clock.now_ist()
        today = now_ist.date()
        if now_ist.time() < cal.SQUARE_OFF or self.last_square_off == today:
            return 0
        if self.real_hours and not cal.is_trading_day(today):
            return 0
        self.last_square_off = today
        placed = 0
        for acct in list(self.accounts.values()):
            for order in [o for o in acct.orders.values() if o.is_live and o.product == "MIS"]:
                self.cancel(acct, order.orderid)
            placed += len(self.close_positions(acct, "squareoff", product="MIS"))
        if placed:
            log.info("MIS square-off placed %d orders", placed)
        return placed


def split_quantities(total: int, size: int) -> list[int]:
    """Children of ``size`` with the remainder last (OpenAlgo's splitorder rule)."""
    n = math.ceil(total / size)
    return [size] * (n - 1) + [total - size * (n - 1)]
