"""Order types and fill shapes over real HTTP against the paper broker: a LIMIT entry that times
out (cancel / MARKET fallback), partial fills, a partial fill then a cancel, and an account that
answers numbers as strings. Every test ends by checking the broker's net position equals the
signed fills the intents record."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

import httpx
import pytest

from app.broker.client import OpenAlgoClient
from app.extensions import db
from app.models.execution import RunAccount, StrategyRun
from app.services.execution.engine import ExecutionEngine
from app.services.execution.held import held_by_leg
from tests.helpers import make_user
from tests.support.execution import (
    CE,
    PE,
    SKEW,
    Leg,
    add_paper_account,
    broker_net,
    drive,
    intents,
    make_run,
    recorded_net,
    run_done,
)

TICK = Decimal("0.05")
FAR_BELOW = Decimal("1.00")  # a BUY LIMIT here never trades against an ATM NIFTY option


def _books_match(one, run_id, symbols=(CE,)):
    for symbol in symbols:
        assert broker_net(one["client"], symbol) == recorded_net(run_id, one["account"], symbol)


def _run_account(run_account_id: int | None) -> RunAccount:
    row = db.session.get(RunAccount, run_account_id)
    assert row is not None
    return row


def _run(run_id: int) -> StrategyRun:
    row = db.session.get(StrategyRun, run_id)
    assert row is not None
    return row


def _events(row):
    return [e.event for e in row.events]


def _marketable_buy_price(client, symbol):
    """A BUY LIMIT price on the tick, comfortably above the ask (fills at once)."""
    quote = client.quote(symbol, "NFO")
    raw = max(quote.ask, quote.ltp) + Decimal("10")
    return (raw / TICK).to_integral_value(rounding=ROUND_CEILING) * TICK


def test_limit_entry_unfilled_fallback_cancel_cancelled_and_reported(one):
    run_id = make_run(one["user"].id, [one["account"]], [Leg(CE, "BUY", order_type="LIMIT", price=FAR_BELOW)],
                      limit_timeout_seconds=1, limit_fallback="cancel", failure_policy="report")
    drive(one["engine"], run_done(run_id))
    (row,) = intents(run_id)
    assert (row.state, row.filled_quantity, row.price_type, row.price) == ("cancelled", 0, "LIMIT", FAR_BELOW)
    assert _events(row) == ["claim", "accepted", "cancel"]
    ra = _run_account(row.run_account_id)
    assert (ra.status, ra.flagged) == ("failed", True)
    assert _run(run_id).status == "failed"
    book = one["client"].orderbook()
    assert [(o.order_id, o.status, o.price_type) for o in book] == [(row.broker_order_id, "cancelled", "LIMIT")]
    assert broker_net(one["client"], CE) == 0
    _books_match(one, run_id)


def test_limit_entry_unfilled_fallback_market_rest_sent_as_market_and_filled(one):
    run_id = make_run(one["user"].id, [one["account"]], [Leg(CE, "BUY", order_type="LIMIT", price=FAR_BELOW)],
                      limit_timeout_seconds=1, limit_fallback="market", failure_policy="report")
    drive(one["engine"], run_done(run_id))
    first, second = intents(run_id)
    assert (first.attempt, first.state, first.filled_quantity, first.price_type) == (1, "cancelled", 0, "LIMIT")
    assert (second.attempt, second.replaces_intent_id, second.price_type, second.price) == (2, first.id, "MARKET", None)
    assert (second.state, second.quantity, second.filled_quantity) == ("filled", 65, 65)
    assert _events(second) == ["claim", "accepted", "fill"]
    ra = _run_account(first.run_account_id)
    assert (ra.status, ra.flagged) == ("open", False)
    assert _run(run_id).status == "open"
    book = sorted(one["client"].orderbook(), key=lambda o: o.order_id == second.broker_order_id)
    assert [(o.order_id, o.status, o.price_type, o.quantity) for o in book] == [
        (first.broker_order_id, "cancelled", "LIMIT", 65), (second.broker_order_id, "complete", "MARKET", 65)]
    assert second.average_price == one["client"].order_status(second.broker_order_id).average_price
    assert broker_net(one["client"], CE) == 65
    _books_match(one, run_id)


def test_partial_fills_three_parts_events_in_order_and_volume_weighted_price(one, sim):
    # Parts 1.5 s apart: the engine's status reads (at most 1 s apart) see every part.
    sim.partial_fills(one["key"], {"min_quantity": 1, "parts": 3, "interval_ms": 1500})
    run_id = make_run(one["user"].id, [one["account"]], [Leg(CE, "BUY", lots=3)])
    drive(one["engine"], run_done(run_id))
    (row,) = intents(run_id)
    assert (row.state, row.quantity, row.filled_quantity) == ("filled", 195, 195)
    assert [(e.event, e.to_state) for e in row.events] == [
        ("claim", "sending"), ("accepted", "accepted"), ("partial_fill", "partially_filled"),
        ("partial_fill", "partially_filled"), ("fill", "filled")]
    assert [e.detail for e in row.events[2:]] == ["open filled 65/195 (via status read)",
                                                  "open filled 130/195 (via status read)",
                                                  "complete filled 195/195 (via status read)"]
    trades = [t for t in one["client"].tradebook() if t.order_id == row.broker_order_id]
    assert [t.quantity for t in trades] == [65, 65, 65]
    weighted = sum(t.average_price * t.quantity for t in trades) / 195
    broker_average = one["client"].order_status(row.broker_order_id).average_price
    assert row.average_price == broker_average
    assert abs(broker_average - weighted) < Decimal("0.01")
    assert broker_net(one["client"], CE) == 195
    _books_match(one, run_id)


def _traded(client, order_id: str) -> tuple[int, Decimal | None]:
    """An order's filled quantity and average price from the tradebook (what a live server's order
    rows do not say)."""
    trades = [t for t in client.tradebook() if t.order_id == order_id]
    filled = sum(t.quantity for t in trades)
    return filled, (sum(t.average_price * t.quantity for t in trades) / filled) if filled else None


# fill_progress False: the order rows are a live OpenAlgo server's, with no filled quantity at all.
ROWS = pytest.mark.parametrize("fill_progress", [True, False], ids=["sandbox-rows", "live-rows"])


@ROWS
def test_limit_partial_fill_then_timeout_cancelled_keeps_fill_and_held(one, sim, fill_progress):
    # The first part fills at once (marketable LIMIT); the next one is a minute away, so the
    # 1 s LIMIT timeout cancels the order between parts.
    sim.partial_fills(one["key"], {"min_quantity": 1, "parts": 3, "interval_ms": 60000, "limit_orders": True})
    sim.post(f"/sim/accounts/{one['key']}/options", {"fill_progress": fill_progress})
    price = _marketable_buy_price(one["client"], CE)
    run_id = make_run(one["user"].id, [one["account"]], [Leg(CE, "BUY", lots=3, order_type="LIMIT", price=price)],
                      limit_timeout_seconds=1, limit_fallback="cancel", failure_policy="report")
    drive(one["engine"], run_done(run_id))
    (row,) = intents(run_id)
    assert (row.state, row.quantity, row.filled_quantity) == ("cancelled", 195, 65)
    assert _events(row) == ["claim", "accepted", "partial_fill", "cancel"]
    assert (row.filled_quantity, row.average_price) == _traded(one["client"], row.broker_order_id)
    ra = _run_account(row.run_account_id)
    assert (ra.status, ra.flagged) == ("partial", True)
    assert held_by_leg(ra.id) == {1: 65}
    (order,) = one["client"].orderbook()
    assert (order.status, order.filled_quantity) == ("cancelled", 65 if fill_progress else None)
    assert broker_net(one["client"], CE) == 65
    _books_match(one, run_id)


@ROWS
def test_limit_partial_fill_then_timeout_fallback_market_sends_only_the_rest(one, sim, fill_progress):
    # LIMIT orders fill in parts (one part now, the next a minute away); the MARKET rest is below
    # min_quantity, so it fills at once. With a live server's rows (no filled quantity) the part
    # that filled is read from the tradebook: counted as nothing, the whole 195 would go again.
    sim.partial_fills(one["key"], {"min_quantity": 10000, "parts": 3, "interval_ms": 60000, "limit_orders": True})
    sim.post(f"/sim/accounts/{one['key']}/options", {"fill_progress": fill_progress})
    price = _marketable_buy_price(one["client"], CE)
    run_id = make_run(one["user"].id, [one["account"]], [Leg(CE, "BUY", lots=3, order_type="LIMIT", price=price)],
                      limit_timeout_seconds=1, limit_fallback="market", failure_policy="report")
    drive(one["engine"], run_done(run_id))
    first, second = intents(run_id)
    assert (first.state, first.filled_quantity) == ("cancelled", 65)
    assert (second.attempt, second.replaces_intent_id, second.price_type) == (2, first.id, "MARKET")
    assert (second.state, second.quantity, second.filled_quantity) == ("filled", 130, 130)
    ra = _run_account(first.run_account_id)
    assert ra.status == "open" and held_by_leg(ra.id) == {1: 195}
    assert sorted((o.status, _traded(one["client"], o.order_id)[0]) for o in one["client"].orderbook()) == [
        ("cancelled", 65), ("complete", 130)]
    assert broker_net(one["client"], CE) == 195
    _books_match(one, run_id)


@pytest.fixture
def strings(app_factory, broker, sim):
    """An account whose every number comes back as a string ("123.45"), like Zerodha's."""
    sim.set_spot(NIFTY=26000)
    key = sim.new_account(numbers_as_strings=True)
    app = app_factory(BROKER_READ_TIMEOUT=3.0, EXECUTION_CLOCK_SKEW_SECONDS=SKEW)
    with app.app_context():
        user = make_user(app, "alice")
        account_id = add_paper_account(app, user.id, "Strings", broker.url, key)
        client = OpenAlgoClient(broker.url, key)
        engine = ExecutionEngine(app, holder="test-engine")
        yield {"user": user, "account": account_id, "key": key, "client": client, "engine": engine,
               "broker_url": broker.url}
        engine.on_stop()
        client.close()
    sim.call("DELETE", f"/sim/accounts/{key}")


def _raw_order_status(url, key, order_id):
    resp = httpx.post(f"{url}/api/v1/orderstatus",
                      json={"apikey": key, "orderid": order_id, "strategy": "AlgoMirror"}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


def test_numbers_as_strings_buy_and_sell_filled_prices_exact(strings, sim):
    run_id = make_run(strings["user"].id, [strings["account"]], [Leg(CE, "BUY"), Leg(PE, "SELL")])
    drive(strings["engine"], run_done(run_id))
    buy, sell = intents(run_id)
    assert [(r.action, r.state, r.filled_quantity) for r in (buy, sell)] == [("BUY", "filled", 65),
                                                                           ("SELL", "filled", 65)]
    for row in (buy, sell):
        raw = _raw_order_status(strings["broker_url"], strings["key"], row.broker_order_id)
        assert isinstance(raw["average_price"], str)  # the account really answers strings
        assert row.average_price == Decimal(raw["average_price"]) > 0
        assert row.average_price == strings["client"].order_status(row.broker_order_id).average_price
    assert _run(run_id).status == "open"
    assert broker_net(strings["client"], CE) == 65 and broker_net(strings["client"], PE) == -65
    for symbol in (CE, PE):
        assert broker_net(strings["client"], symbol) == recorded_net(run_id, strings["account"], symbol)
