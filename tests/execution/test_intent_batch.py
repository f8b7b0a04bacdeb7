"""lifecycle.Batch: many intents' events applied with few statements, exactly as one apply each would."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import event, select

from app.domain.order_lifecycle import IllegalTransition, IntentEvent, IntentState
from app.extensions import db
from app.models import OrderIntent, OrderIntentEvent
from app.services.execution.lifecycle import Batch, StaleIntent, apply
from tests.helpers import make_user
from tests.support.strategies import add_account


def _intents(app, count: int, state: IntentState = IntentState.SENDING) -> list[int]:
    user = make_user(app, "batcher")
    account_id = add_account(app, user.id, "A1")
    rows = [OrderIntent(intent_key=f"batch/{n}", user_id=user.id, account_id=account_id, purpose="entry",
                        symbol="NIFTY06JAN2626000CE", exchange="NFO", product="MIS", action="BUY",
                        quantity=65, state=state.value) for n in range(count)]
    db.session.add_all(rows)
    db.session.commit()
    return [r.id for r in rows]


def _history(intent_id: int) -> list[tuple[str, str, str]]:
    return [(e.event, e.from_state, e.to_state) for e in db.session.scalars(
        select(OrderIntentEvent).where(OrderIntentEvent.intent_id == intent_id).order_by(OrderIntentEvent.id))]


class _Statements:
    """The DML statements sent to the database (an executemany, or PostgreSQL's multi-row INSERT,
    counts once)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany) -> None:
        verb = statement.split(None, 1)[0].upper()
        if verb in ("UPDATE", "INSERT"):
            self.seen.append(verb)


def test_a_batch_of_acknowledgements_and_fills_ends_as_separate_applies_would_with_two_statements(app):
    ids = _intents(app, 3)
    intents = list(db.session.scalars(select(OrderIntent).where(OrderIntent.id.in_(ids)).order_by(OrderIntent.id)))
    batch = Batch()
    for n, intent in enumerate(intents):
        assert apply(intent, IntentEvent.ACCEPTED, detail="ack", commit=False, batch=batch,
                     broker_order_id=f"B{n}") is IntentState.ACCEPTED
        assert intent.state == "accepted"  # the object shows it at once (the next event reads it)
        assert apply(intent, IntentEvent.FILL, detail="complete", commit=False, batch=batch,
                     filled_quantity=65, average_price="101.355") is IntentState.FILLED
    statements = _Statements()
    event.listen(db.engine, "before_cursor_execute", statements)
    try:
        batch.flush()
    finally:
        event.remove(db.engine, "before_cursor_execute", statements)
    db.session.commit()
    # One UPDATE for the three rows (accepted, then filled: one change each), one INSERT of the six events.
    assert statements.seen == ["UPDATE", "INSERT"]
    db.session.expire_all()
    for n, intent_id in enumerate(ids):
        row = db.session.get(OrderIntent, intent_id)
        assert (row.state, row.broker_order_id, row.filled_quantity, row.average_price) == (
            "filled", f"B{n}", 65, Decimal("101.36"))
        assert row.acknowledged_at is not None and row.filled_at is not None and row.finished_at is not None
        assert row.acknowledged_at <= row.filled_at
        assert _history(intent_id) == [("accepted", "sending", "accepted"), ("fill", "accepted", "filled")]


def test_a_batch_with_one_row_moved_meanwhile_raises_and_the_rollback_leaves_every_row_as_it_was(app):
    ids = _intents(app, 2)
    intents = list(db.session.scalars(select(OrderIntent).where(OrderIntent.id.in_(ids)).order_by(OrderIntent.id)))
    batch = Batch()
    for n, intent in enumerate(intents):
        apply(intent, IntentEvent.ACCEPTED, commit=False, batch=batch, broker_order_id=f"B{n}")
    with db.engine.begin() as other:  # another process moves the second one first
        other.execute(OrderIntent.__table__.update().where(OrderIntent.id == ids[1]).values(state="unknown"))
    with pytest.raises(StaleIntent):
        batch.flush()
    db.session.rollback()
    db.session.expire_all()
    assert [db.session.get(OrderIntent, i).state for i in ids] == ["sending", "unknown"]
    assert [db.session.get(OrderIntent, i).broker_order_id for i in ids] == [None, None]
    assert _history(ids[0]) == _history(ids[1]) == []


def test_a_batch_never_lowers_a_fill_another_reader_recorded_first(app):
    (intent_id,) = _intents(app, 1, IntentState.PARTIALLY_FILLED)
    intent = db.session.get(OrderIntent, intent_id)
    batch = Batch()
    apply(intent, IntentEvent.PARTIAL_FILL, commit=False, batch=batch, filled_quantity=30)
    with db.engine.begin() as other:  # a newer status read recorded 50 meanwhile (same state)
        other.execute(OrderIntent.__table__.update().where(OrderIntent.id == intent_id).values(filled_quantity=50))
    with pytest.raises(StaleIntent):
        batch.flush()
    db.session.rollback()
    db.session.expire_all()
    assert db.session.get(OrderIntent, intent_id).filled_quantity == 50


def test_an_illegal_pair_in_a_batch_raises_at_once_and_nothing_is_written(app):
    (intent_id,) = _intents(app, 1, IntentState.FILLED)
    intent = db.session.get(OrderIntent, intent_id)
    batch = Batch()
    with pytest.raises(IllegalTransition):
        apply(intent, IntentEvent.ACCEPTED, commit=False, batch=batch, broker_order_id="B1")
    assert len(batch) == 0
    batch.flush()  # nothing to do
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(OrderIntent, intent_id).state == "filled"
    assert _history(intent_id) == []
