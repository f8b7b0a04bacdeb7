"""Equal sibling orders of one account are never counted twice, and a deposed leader sends nothing.

Over the real paper broker: two children of one leg with the same quantity, both answers lost,
are reconciled to two distinct broker orders; an order id already linked to one intent is never
applied to a second (sender's acknowledgement → UNKNOWN, flagged; reconciliation waits while a
same-shaped sibling is still sending); a sender whose lease is gone applies NOT_SENT.
"""

from __future__ import annotations

import pytest

from app.broker.client import OpenAlgoClient
from app.domain.order_lifecycle import IntentEvent, IntentState
from app.extensions import db
from app.models.execution import OrderIntent
from app.services.execution import reconciliation, sender
from app.services.execution.engine import ExecutionEngine
from app.services.execution.lifecycle import apply, claim
from app.services.execution.reconciliation import Outcome
from tests.helpers import make_user
from tests.support.execution import (
    CE,
    LOT,
    Leg,
    add_paper_account,
    broker_net,
    drive,
    intents,
    make_run,
    recorded_net,
    run_done,
)


@pytest.fixture
def setup(engine_app, broker, apikey):
    user = make_user(engine_app, "alice")
    account_id = add_paper_account(engine_app, user.id, "One", broker.url, apikey)
    client = OpenAlgoClient(broker.url, apikey)
    engine = ExecutionEngine(engine_app, holder="test-engine")
    yield {"user": user, "account": account_id, "key": apikey, "client": client, "engine": engine}
    engine.on_stop()
    client.close()


def _two_equal_children(setup) -> tuple[int, list[OrderIntent]]:
    run_id = make_run(setup["user"].id, [setup["account"]], [Leg(CE, "BUY", lots=2, freeze_qty=LOT)])
    rows = intents(run_id)
    assert [(r.leg_number, r.child, r.quantity) for r in rows] == [(1, 0, LOT), (1, 1, LOT)]
    return run_id, rows


def _row(intent_id: int) -> OrderIntent:
    db.session.expire_all()
    row = db.session.get(OrderIntent, intent_id)
    assert row is not None
    return row


def _state(state: IntentState | None) -> str | None:
    return None if state is None else state.value


def _place(setup) -> str:
    ack = setup["client"].place_order(symbol=CE, exchange="NFO", action="BUY", quantity=LOT, product="MIS")
    return str(ack.order_ids[0])


def test_reconcile_two_equal_children_both_lost_adopts_two_distinct_orders(setup, sim):
    sim.set_faults(setup["key"], lost_response_rate=1.0, routes=["placeorder"])
    run_id, _ = _two_equal_children(setup)
    drive(setup["engine"], run_done(run_id))
    rows = intents(run_id)
    assert [(r.state, r.filled_quantity) for r in rows] == [("filled", LOT), ("filled", LOT)]
    assert [[e.event for e in r.events] for r in rows] == [["claim", "outcome_unknown", "adopt", "fill"]] * 2
    ids = [r.broker_order_id or "" for r in rows]
    assert "" not in ids and len(set(ids)) == 2
    assert sorted(o.order_id for o in setup["client"].orderbook() if o.symbol == CE) == sorted(ids)
    assert broker_net(setup["client"], CE) == 2 * LOT == recorded_net(run_id, setup["account"], CE)


def test_reconcile_sibling_still_sending_waits_then_ack_clash_goes_unknown_and_both_distinct(setup):
    run_id, (first, second) = _two_equal_children(setup)
    first_id, second_id = first.id, second.id
    assert claim(first, "h") and claim(second, "h")
    apply(_row(first_id), "outcome_unknown", detail="answer lost")
    sibling_order = _place(setup)  # the second child's order, its ACCEPTED not applied yet

    # The first child's reconciliation must not adopt the order of a sibling that is still sending.
    assert reconciliation.reconcile(first_id, last_read=True) is Outcome.PENDING
    row = _row(first_id)
    assert (row.state, row.broker_order_id) == ("unknown", None)

    # Say it was adopted anyway (the old defect): the sibling's acknowledgement is then refused.
    apply(row, "adopt", detail="wrongly adopted", broker_order_id=sibling_order)
    own_order = _place(setup)  # the first child's real order
    assert _state(sender.record_accepted(_row(second_id), sibling_order)) == "unknown"
    row = _row(second_id)
    assert (row.state, row.broker_order_id, row.flagged) == ("unknown", None, True)
    assert row.note == (f"broker order {sibling_order} is already linked to intent {first_id}; "
                        "not applied twice, reconciling")
    assert [e.event for e in row.events] == ["claim", "outcome_unknown"]

    # Reconciliation then finds the one unlinked order: each broker order is linked exactly once.
    assert reconciliation.reconcile(second_id, last_read=True) is Outcome.ADOPTED
    db.session.expire_all()
    rows = intents(run_id)
    assert [r.broker_order_id for r in rows] == [sibling_order, own_order]
    assert [r.state for r in rows] == ["accepted", "filled"]


def test_reconcile_sibling_recorded_after_wait_is_not_adopted_not_found(setup):
    run_id, (first, second) = _two_equal_children(setup)
    first_id, second_id = first.id, second.id
    assert claim(first, "h") and claim(second, "h")
    apply(_row(first_id), "outcome_unknown", detail="answer lost")
    sibling_order = _place(setup)
    assert reconciliation.reconcile(first_id, last_read=True) is Outcome.PENDING
    assert _state(sender.record_accepted(_row(second_id), sibling_order)) == "accepted"
    assert reconciliation.reconcile(first_id, last_read=True) is Outcome.NOT_FOUND
    rows = intents(run_id)
    assert [(r.state, r.broker_order_id) for r in rows] == [("not_placed", None), ("accepted", sibling_order)]


def test_send_lease_lost_before_request_not_placed_nothing_at_broker(setup):
    run_id = make_run(setup["user"].id, [setup["account"]], [Leg(CE, "BUY")])
    (row,) = intents(run_id)
    assert _state(sender.send(row.id, "deposed", still_leading=lambda: False)) == "not_placed"
    (row,) = intents(run_id)
    assert [e.event for e in row.events] == ["claim", "not_sent"]
    assert (row.note, row.rejection_reason) == ("lease lost before sending", "Not sent: lease lost before sending")
    assert setup["client"].orderbook() == []


def test_send_still_leading_default_sends_once(setup):
    run_id = make_run(setup["user"].id, [setup["account"]], [Leg(CE, "BUY")])
    (row,) = intents(run_id)
    assert _state(sender.send(row.id, "leader", still_leading=lambda: True)) in ("accepted", "filled")
    (row,) = intents(run_id)
    assert [o.order_id for o in setup["client"].orderbook()] == [row.broker_order_id]


def test_batch_of_acknowledgements_never_links_one_order_to_two_intents(setup):
    # The recorder's batch (record_many) checks every order id in one query: an id already linked
    # to another intent, or twice in the batch, is recorded alone and goes unknown, flagged.
    run_id, (first, second) = _two_equal_children(setup)
    first_id, second_id = first.id, second.id
    assert claim(first, "h") and claim(second, "h")
    order = _place(setup)
    accepted = [sender.Outcome(i, IntentEvent.ACCEPTED, f"order id {order}", {"broker_order_id": order})
                for i in (first_id, second_id)]
    states = sender.record_many(accepted)
    assert {i: _state(s) for i, s in states.items()} == {first_id: "accepted", second_id: "unknown"}
    assert (_row(first_id).broker_order_id, _row(second_id).broker_order_id) == (order, None)
    assert _row(second_id).flagged and f"already linked to intent {first_id}" in _row(second_id).note

    # Already linked in the database: a later batch acknowledging the same id again changes nothing linked.
    third = _place(setup)
    apply(_row(second_id), "adopt", detail="adopted", broker_order_id=third)
    run2 = make_run(setup["user"].id, [setup["account"]], [Leg(CE, "BUY")], key="run-2")
    (other,) = intents(run2)
    assert claim(other, "h")
    states = sender.record_many([sender.Outcome(other.id, IntentEvent.ACCEPTED, "x", {"broker_order_id": third})])
    assert _state(states[other.id]) == "unknown" and _row(other.id).broker_order_id is None
    assert [r.broker_order_id for r in intents(run_id)] == [order, third]
