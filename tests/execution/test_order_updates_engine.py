"""The engine takes an order's first status from the account's order-update stream (subscribe_orders
over the paper broker's WebSocket) instead of a status read, and falls back to the read when no
report comes: over real HTTP and WebSocket, no mocks of the broker."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models import TradingAccount
from app.models.execution import OrderIntentEvent
from app.services.accounts import client_for
from app.services.execution.engine import ExecutionEngine
from tests import helpers
from tests.support.execution import CE, PE, Leg, broker_net, drive, intents, make_run, recorded_net, run_done


def _fill_details(run_id: int) -> list[str]:
    ids = [i.id for i in intents(run_id)]
    return list(db.session.scalars(select(OrderIntentEvent.detail).where(
        OrderIntentEvent.intent_id.in_(ids), OrderIntentEvent.event == "fill").order_by(OrderIntentEvent.intent_id)))


def _with_stream(one, broker, engine: ExecutionEngine) -> None:
    account = db.session.get(TradingAccount, one["account"])
    account.websocket_url = broker.ws_url
    db.session.commit()
    assert engine.updates is not None
    engine.updates.ensure(account.id, client_for(account))
    helpers.wait_until(lambda: engine.updates.live_since(account.id), message="order updates confirmed")


def _enter_hedged_pair(one) -> list[str]:
    """A BUY and a SELL entered on the account by the engine; both filled, the books agree.
    Returns the fill events' details (each names where its status came from)."""
    run_id = make_run(one["user"].id, [one["account"]], [Leg(CE, "BUY"), Leg(PE, "SELL")])
    drive(one["engine"], run_done(run_id))
    assert [(r.action, r.state) for r in intents(run_id)] == [("BUY", "filled"), ("SELL", "filled")]
    for symbol in (CE, PE):
        assert broker_net(one["client"], symbol) == recorded_net(run_id, one["account"], symbol)
    details = _fill_details(run_id)
    assert len(details) == 2, details
    return details


def test_first_status_comes_from_the_order_update_stream(one, broker):
    _with_stream(one, broker, one["engine"])
    details = _enter_hedged_pair(one)
    assert all(d.endswith("(via order update)") for d in details), details


def test_fills_are_recorded_from_the_stream_while_status_reads_fail(one, sim, broker):
    _with_stream(one, broker, one["engine"])
    sim.set_faults(one["key"], error_rate=1.0, routes=["orderstatus"])
    try:
        details = _enter_hedged_pair(one)
    finally:
        sim.call("DELETE", "/sim/faults")
    assert all(d.endswith("(via order update)") for d in details), details


def test_without_a_stream_the_first_status_is_read(one):
    # The account has no WebSocket URL: no stream, the status is read as before.
    details = _enter_hedged_pair(one)
    assert all(d.endswith("(via status read)") for d in details), details


def test_order_updates_switched_off_read_the_status(app_factory, one, broker):
    app = app_factory(EXECUTION_ORDER_UPDATES=False)
    assert ExecutionEngine(app, holder="off").updates is None


def test_a_market_order_filling_in_parts_takes_the_first_part_from_the_stream(one, sim, broker):
    _with_stream(one, broker, one["engine"])
    sim.partial_fills(one["key"], {"min_quantity": 1, "parts": 3, "interval_ms": 1500})
    run_id = make_run(one["user"].id, [one["account"]], [Leg(CE, "BUY", lots=3)])
    drive(one["engine"], run_done(run_id))
    (row,) = intents(run_id)
    assert (row.state, row.filled_quantity) == ("filled", 195)
    parts = [e.detail for e in row.events if e.event in ("partial_fill", "fill")]
    assert parts[0] == "open filled 65/195 (via order update)", parts
    assert broker_net(one["client"], CE) == 195 == recorded_net(run_id, one["account"], CE)
