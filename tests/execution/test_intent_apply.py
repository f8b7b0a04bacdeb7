"""apply(event) on stored intents: the row, the event history, refusals, and the exactly-once claim."""

from __future__ import annotations

import itertools
import threading

import pytest
from sqlalchemy import func, select

from app.domain.order_lifecycle import IllegalTransition, IntentEvent, IntentState, transition
from app.extensions import db
from app.models import OrderIntent, OrderIntentEvent
from app.services.execution.lifecycle import StaleIntent, apply, claim
from tests.helpers import make_user
from tests.support.strategies import add_account

ALL_PAIRS = list(itertools.product(IntentState, IntentEvent))


def _intent(app, state: IntentState = IntentState.PLANNED, key: str = "test/1") -> int:
    user = make_user(app, f"u{abs(hash(key)) % 10_000_000}")
    account_id = add_account(app, user.id, "A1")
    row = OrderIntent(intent_key=key, user_id=user.id, account_id=account_id, purpose="entry",
                      symbol="NIFTY06JAN2626000CE",
                      exchange="NFO", product="MIS", action="SELL", quantity=65, state=state.value)
    db.session.add(row)
    db.session.commit()
    return row.id


def _events(intent_id: int) -> list[OrderIntentEvent]:
    return list(db.session.scalars(select(OrderIntentEvent).where(OrderIntentEvent.intent_id == intent_id)))


@pytest.mark.parametrize(("state", "event"), ALL_PAIRS, ids=[f"{s.value}-{e.value}" for s, e in ALL_PAIRS])
def test_apply_every_pair_allowed_changes_row_and_appends_one_event_else_changes_nothing(app, state, event):
    intent_id = _intent(app, state)
    intent = db.session.get(OrderIntent, intent_id)
    try:
        expected = transition(state, event)
    except IllegalTransition:
        expected = None
    if expected is None:
        with pytest.raises(IllegalTransition):
            apply(intent, event)
        db.session.expire_all()
        assert db.session.get(OrderIntent, intent_id).state == state.value
        assert _events(intent_id) == []
    else:
        assert apply(intent, event, detail={"status": "x"}) is expected
        db.session.expire_all()
        assert db.session.get(OrderIntent, intent_id).state == expected.value
        (only,) = _events(intent_id)
        assert (only.event, only.from_state, only.to_state) == (event.value, state.value, expected.value)
        assert only.at.tzinfo is not None


def test_apply_fill_records_facts_and_times(app):
    intent = db.session.get(OrderIntent, _intent(app, IntentState.ACCEPTED))
    apply(intent, IntentEvent.FILL, filled_quantity=65, average_price="101.35", detail="complete")
    assert (intent.state, intent.filled_quantity, str(intent.average_price)) == ("filled", 65, "101.35")
    assert intent.filled_at is not None and intent.finished_at is not None and intent.acknowledged_at is not None


def test_apply_with_a_stale_state_raises_and_changes_nothing(app):
    intent_id = _intent(app, IntentState.PLANNED)
    stale = db.session.get(OrderIntent, intent_id)
    assert stale.state == "planned"
    # Another process moves it first, on its own connection; this session still holds "planned".
    with db.engine.begin() as other:
        other.execute(OrderIntent.__table__.update().where(OrderIntent.id == intent_id).values(state="sending"))
    with pytest.raises(StaleIntent):
        apply(stale, IntentEvent.WITHDRAW)
    db.session.expire_all()
    assert db.session.get(OrderIntent, intent_id).state == "sending"
    assert _events(intent_id) == []


def test_apply_unknown_fact_is_refused(app):
    intent = db.session.get(OrderIntent, _intent(app))
    with pytest.raises(ValueError):
        apply(intent, IntentEvent.CLAIM, status="complete")


def test_claim_ten_threads_race_exactly_one_wins(app):
    intent_id = _intent(app)
    barrier = threading.Barrier(10)
    wins: list[bool] = []
    lock = threading.Lock()

    def contender(n: int) -> None:
        with app.app_context():
            row = db.session.get(OrderIntent, intent_id)
            barrier.wait()
            try:
                won = claim(row, f"sender-{n}")
            except Exception:  # SQLite "database is locked" counts as a loss, never as a second send
                db.session.rollback()
                won = False
            with lock:
                wins.append(won)
            db.session.remove()

    threads = [threading.Thread(target=contender, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(wins) == [False] * 9 + [True]
    db.session.expire_all()
    assert db.session.get(OrderIntent, intent_id).state == "sending"
    assert db.session.scalar(select(func.count()).select_from(OrderIntentEvent)
                             .where(OrderIntentEvent.intent_id == intent_id)) == 1


def test_claim_not_planned_returns_false_without_event(app):
    intent_id = _intent(app, IntentState.ACCEPTED)
    assert claim(db.session.get(OrderIntent, intent_id), "me") is False
    assert _events(intent_id) == []
