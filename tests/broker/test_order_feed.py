"""Order updates: the order_update frame parser, the feed client's subscribe_orders against the
paper broker (also after a reconnect), and the engine's OrderUpdates store (its waits and keeps)."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any

import pytest

from app.broker import parsing
from app.broker.client import OpenAlgoClient
from app.broker.feed_frames import parse_order_update
from app.services.execution.order_updates import OrderUpdates
from tests import helpers

FRAME = {"type": "order_update", "user_id": "tester", "mode": "live", "broker": "paper", "orderid": "26112417848566",
         "symbol": "SBIN", "exchange": "NSE", "action": "buy", "quantity": 10, "price": 0.0, "trigger_price": 0.0,
         "pricetype": "MARKET", "product": "MIS", "order_status": "COMPLETE", "filled_quantity": 10,
         "pending_quantity": 0, "average_price": 800.35, "rejection_reason": ""}


def test_parse_order_update_reads_the_frame_as_an_order_status():
    order = parse_order_update(FRAME)
    assert order == parsing.Order(order_id="26112417848566", symbol="SBIN", exchange="NSE", action="BUY", quantity=10,
                                  price=Decimal("0.0"), trigger_price=Decimal("0.0"), price_type="MARKET",
                                  product="MIS", status="complete", timestamp="", filled_quantity=10,
                                  average_price=Decimal("800.35"), rejection_reason="")


@pytest.mark.parametrize("frame", [{"type": "market_data", "symbol": "SBIN"}, {**FRAME, "orderid": ""},
                                   {"type": "subscribe_orders", "status": "success"}])
def test_parse_order_update_ignores_other_frames(frame):
    assert parse_order_update(frame) is None


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.orders: list[parsing.Order] = []

    def __call__(self, order: parsing.Order) -> None:
        with self.lock:
            self.orders.append(order)

    def final(self, order_id: str) -> parsing.Order | None:
        with self.lock:
            return next((o for o in self.orders if o.order_id == order_id and o.status == "complete"), None)


def _buy(client: OpenAlgoClient) -> str:
    return client.place_order(symbol="SBIN", exchange="NSE", action="BUY", quantity=1, product="MIS").order_ids[0]


def test_feed_subscribes_to_order_updates_and_again_after_a_reconnect(broker, sim, apikey):
    client = OpenAlgoClient(broker.url, apikey, ws_url=broker.ws_url)
    seen = Recorder()
    feed = client.order_feed(seen)
    try:
        feed._backoff = (0.1, 0.2)
        feed.start()
        first_live = helpers.wait_until(lambda: feed.orders_live_since, message="order updates confirmed")
        order_id = _buy(client)
        order = helpers.wait_until(lambda: seen.final(order_id), message="the fill pushed")
        assert (order.symbol, order.action, order.quantity, order.filled_quantity) == ("SBIN", "BUY", 1, 1)
        assert order.average_price is not None and order.average_price > 0

        assert sim.post("/sim/ws/disconnect", {"apikey": apikey})["closed"] >= 1
        helpers.wait_until(lambda: (feed.orders_live_since or 0) > first_live, message="subscribed again")
        again = _buy(client)
        assert helpers.wait_until(lambda: seen.final(again), message="the next fill pushed").filled_quantity == 1
    finally:
        feed.close()
        client.close()


def test_account_without_websocket_url_has_no_order_feed(broker, apikey):
    client = OpenAlgoClient(broker.url, apikey)
    try:
        assert client.order_feed(lambda order: None) is None
    finally:
        client.close()


# --- the store, with a stand-in stream (its live time is what the store reads) ----------------------

class Stream:
    def __init__(self, live_since: float | None) -> None:
        self.orders_live_since = live_since
        self.started = self.closed = False

    def start(self) -> None:
        self.started = True

    def close(self, timeout: float = 0.0) -> None:
        self.closed = True


class Account:
    """What OrderUpdates.ensure reads of a client: its URL and identity, and the stream it makes."""

    def __init__(self, stream: Stream | None, ws_url: str | None = "ws://x", identity: str = "id-1") -> None:
        self.ws_url, self.identity, self.stream = ws_url, identity, stream
        self.on_order: Any = None

    def order_feed(self, on_order: Any) -> Stream | None:
        self.on_order = on_order
        return self.stream


def _order(status: str, filled: int = 0, order_id: str = "A1", average: str | None = None) -> parsing.Order:
    price = Decimal(average) if average is not None else (Decimal("801.25") if filled else Decimal(0))
    return parsing.Order(order_id=order_id, symbol="SBIN", exchange="NSE", action="BUY", quantity=10,
                         price=Decimal(0), trigger_price=Decimal(0), price_type="MARKET", product="MIS",
                         status=status, timestamp="", filled_quantity=filled, average_price=price)


def test_store_returns_a_final_report_pushed_before_the_wait_and_keeps_it_over_a_later_open_one():
    updates = OrderUpdates(wait_seconds=0.05)
    account = Account(Stream(live_since=10.0))
    updates.ensure(7, account)
    account.on_order(_order("complete", 10))
    account.on_order(_order("open", 0))  # out of order: a final report is never replaced
    report = updates.first_status(7, "A1", placed_at=11.0, final_only=True)
    assert (report.status, report.filled_quantity) == ("complete", 10)


def test_store_market_order_waits_for_the_final_report_and_gives_up_after_the_wait():
    updates = OrderUpdates(wait_seconds=0.3)
    account = Account(Stream(live_since=10.0))
    updates.ensure(7, account)
    account.on_order(_order("open"))
    threading.Timer(0.05, lambda: account.on_order(_order("complete", 10))).start()
    assert updates.first_status(7, "A1", placed_at=11.0, final_only=True).status == "complete"
    # Only an open report for another order: a MARKET order's wait ends empty (a status read follows).
    account.on_order(_order("open", order_id="B2"))
    started = time.monotonic()
    assert updates.first_status(7, "B2", placed_at=11.0, final_only=True) is None
    assert time.monotonic() - started >= 0.29
    # A LIMIT order takes the first report, open or not.
    assert updates.first_status(7, "B2", placed_at=11.0, final_only=False).status == "open"


def test_store_never_waits_for_an_order_placed_before_the_stream_was_live_or_without_a_stream():
    updates = OrderUpdates(wait_seconds=5.0)
    account = Account(Stream(live_since=20.0))
    updates.ensure(7, account)
    account.on_order(_order("complete", 10))
    started = time.monotonic()
    assert updates.first_status(7, "A1", placed_at=19.0, final_only=True) is None  # placed before it was live
    account.stream.orders_live_since = None  # the socket dropped
    assert updates.first_status(7, "A1", placed_at=25.0, final_only=True) is None
    assert updates.first_status(8, "A1", placed_at=25.0, final_only=True) is None  # no stream for account 8
    updates.ensure(9, Account(None, ws_url=None))  # no WebSocket URL: no stream
    assert updates.first_status(9, "A1", placed_at=25.0, final_only=True) is None
    assert time.monotonic() - started < 1.0


def test_store_restarts_a_stream_whose_credentials_changed_and_closes_idle_ones():
    now = [100.0]

    def clock() -> float:  # every reading moves it on a little, so that a wait ends
        now[0] += 0.01
        return now[0]

    updates = OrderUpdates(idle_seconds=60.0, clock=clock)
    first = Stream(live_since=1.0)
    first_account = Account(first, identity="key-1")
    updates.ensure(7, first_account)
    first_account.on_order(_order("complete", 10))
    updates.ensure(7, Account(Stream(live_since=2.0), identity="key-1"))  # same credentials: kept
    assert first.started and not first.closed
    assert updates.first_status(7, "A1", placed_at=5.0, final_only=True).status == "complete"
    second = Stream(live_since=3.0)
    updates.ensure(7, Account(second, identity="key-2"))
    assert second.started
    helpers.wait_until(lambda: first.closed, message="the old stream closed")
    # The old key's reports are gone (another key may be another broker account with the same
    # ids), and a frame the old stream still delivers is dropped.
    assert updates.first_status(7, "A1", placed_at=5.0, final_only=False) is None
    first_account.on_order(_order("complete", 10))
    assert updates.first_status(7, "A1", placed_at=5.0, final_only=False) is None
    now[0] += 61.0
    assert updates.close_idle() == 1
    helpers.wait_until(lambda: second.closed, message="the idle stream closed")
    assert updates.live_since(7) is None


def test_store_ignores_a_report_older_than_the_request_and_an_unpriced_complete():
    updates = OrderUpdates(wait_seconds=0.05)
    account = Account(Stream(live_since=1.0))
    updates.ensure(7, account)
    account.on_order(_order("complete", 10))  # stored now, before the request below went out
    assert updates.first_status(7, "A1", placed_at=time.monotonic() + 1.0, final_only=True) is None
    # "complete" without a price, or without its whole quantity, is no final report: the status is read.
    account.on_order(_order("complete", 10, order_id="B2", average="0"))
    account.on_order(_order("complete", 4, order_id="C3"))
    assert updates.first_status(7, "B2", placed_at=2.0, final_only=True) is None
    assert updates.first_status(7, "C3", placed_at=2.0, final_only=True) is None
    # A MARKET order filling in parts takes the part at once (the tracker follows the rest).
    account.on_order(_order("open", 4, order_id="E5"))
    started = time.monotonic()
    assert updates.first_status(7, "E5", placed_at=2.0, final_only=True).filled_quantity == 4
    assert time.monotonic() - started < 0.04
    account.on_order(_order("rejected", order_id="D4"))
    assert updates.first_status(7, "D4", placed_at=2.0, final_only=True).status == "rejected"


def test_store_forget_closes_the_stream_and_drops_its_reports():
    updates = OrderUpdates(wait_seconds=0.05)
    stream = Stream(live_since=1.0)
    account = Account(stream)
    updates.ensure(7, account)
    account.on_order(_order("complete", 10))
    updates.forget(7)
    helpers.wait_until(lambda: stream.closed, message="the stream closed")
    assert updates.live_since(7) is None
    assert updates.first_status(7, "A1", placed_at=2.0, final_only=False) is None
