"""The risk event log and the account entry blocks (app/services/risk/events.py): what an event
records, who it belongs to, how its outcome is updated, and one block per account and day."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.domain.risk_settings import RiskEventType
from app.extensions import db
from app.models import AccountRiskBlock, RiskEvent, RunAccount, Strategy, StrategyRun
from app.services.risk.events import (
    DEFAULT_BLOCK_REASON,
    block_account_entries,
    blocked_accounts,
    entries_blocked,
    record_risk_event,
    update_outcome,
)
from tests.helpers import make_user
from tests.support.risk_events import owned_world

AT = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)


@pytest.fixture
def alice(app):
    user = make_user(app, "alice")
    return owned_world(app, user.id, "A")


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_record_event_for_a_run_account_takes_run_strategy_and_account_from_it(alice):
    run_account = db.session.get(RunAccount, alice.run_account_ids[1])

    event = record_risk_event(user_id=alice.user_id, event_type=RiskEventType.MAX_LOSS, run_account=run_account,
                              threshold=Decimal("-5000"), current_value=Decimal("-5012.345"), action="close_all",
                              exit_request_id=None, intent_ids=[7, 8, 7], detail="P&L at or below -max loss",
                              at=AT, commit=True)

    stored = db.session.get(RiskEvent, event.id)
    assert (stored.user_id, stored.strategy_id, stored.strategy_name, stored.run_id, stored.run_account_id,
            stored.account_id) == (alice.user_id, alice.strategy_id, "A strategy", alice.run_id,
                                   alice.run_account_ids[1], alice.account_ids[1])
    assert (stored.event_type, stored.action, stored.threshold, stored.current_value) == (
        "max_loss", "close_all", Decimal("-5000.00"), Decimal("-5012.35"))  # half-up to the paisa
    assert stored.intent_ids == [7, 8] and stored.outcome == "pending"  # intents named: pending until they settle
    assert stored.created_at == AT and stored.detail == "P&L at or below -max loss"


def test_record_combined_event_has_no_account_and_no_outcome_without_intents(alice):
    run = db.session.get(StrategyRun, alice.run_id)

    event = record_risk_event(user_id=alice.user_id, event_type="prices_unreliable", run=run, action="held",
                              current_value=12, detail="NIFTY06JAN2626100CE last price 12 s old", commit=True)

    stored = db.session.get(RiskEvent, event.id)
    assert (stored.account_id, stored.run_account_id, stored.outcome, stored.intent_ids) == (None, None, None, [])
    assert stored.current_value == Decimal("12.00") and stored.threshold is None
    assert stored.kind() is RiskEventType.PRICES_UNRELIABLE


def test_record_event_without_run_is_allowed_for_the_kill_switch(app, alice):
    event = record_risk_event(user_id=alice.user_id, event_type="kill_switch", action="close_all",
                              account_id=alice.account_ids[0], intent_ids=[1], commit=True)

    assert (event.run_id, event.strategy_id, event.strategy_name, event.account_id) == (
        None, None, "", alice.account_ids[0])


@pytest.mark.parametrize(("changes", "message"), [
    ({"event_type": "max_drawdown"}, "max_drawdown"),
    ({"action": "close_some"}, "close_some"),
    ({"outcome": "maybe"}, "maybe"),
    ({"threshold": Decimal("NaN")}, "finite"),
    ({"current_value": 1.5}, "Decimal"),
    ({"intent_ids": ["12"]}, "intent ids"),
])
def test_record_event_refuses_bad_values_and_adds_nothing(alice, changes, message):
    values = {"user_id": alice.user_id, "event_type": "max_loss", "action": "close_all", **changes}

    with pytest.raises(ValueError, match=message):
        record_risk_event(**values)

    db.session.rollback()
    assert _count(RiskEvent) == 0


def test_record_event_refuses_another_users_run_and_strategy(app, alice):
    bob = make_user(app, "bob")
    run = db.session.get(StrategyRun, alice.run_id)
    strategy = db.session.get(Strategy, alice.strategy_id)

    with pytest.raises(ValueError, match="does not belong"):
        record_risk_event(user_id=bob.id, event_type="max_loss", action="close_all", run=run)
    with pytest.raises(ValueError, match="does not belong"):
        record_risk_event(user_id=bob.id, event_type="max_loss", action="close_all", strategy=strategy)


def test_record_event_refuses_a_run_account_of_another_run(app, alice):
    carol = make_user(app, "carol")
    other = owned_world(app, carol.id, "C", accounts=1)
    run = db.session.get(StrategyRun, alice.run_id)
    foreign_row = db.session.get(RunAccount, other.run_account_ids[0])

    with pytest.raises(ValueError, match="not part of run"):
        record_risk_event(user_id=alice.user_id, event_type="leg_sl", action="close_all", run=run,
                          run_account=foreign_row)


def test_event_stays_readable_after_its_strategy_is_deleted(alice):
    run = db.session.get(StrategyRun, alice.run_id)
    event_id = record_risk_event(user_id=alice.user_id, event_type="max_profit", run=run, action="alert_only",
                                 commit=True).id

    db.session.delete(db.session.get(Strategy, alice.strategy_id))
    db.session.commit()

    db.session.expire_all()
    stored = db.session.get(RiskEvent, event_id)
    assert (stored.strategy_name, stored.run_id) == ("A strategy", alice.run_id)
    # ON DELETE SET NULL needs enforced foreign keys; the app's SQLite connections do not turn them on.
    assert stored.strategy_id == (alice.strategy_id if db.engine.dialect.name == "sqlite" else None)


def test_database_refuses_an_unknown_event_type(alice):
    db.session.add(RiskEvent(user_id=alice.user_id, event_type="max_drawdown", action="close_all", intent_ids=[]))

    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_update_outcome_sets_it_and_adds_new_intents_after_the_known_ones(alice):
    event_id = record_risk_event(user_id=alice.user_id, event_type="trailing_sl", action="close_all",
                                 intent_ids=[5, 6], commit=True).id

    updated = update_outcome(event_id, "partial", [6, 9], commit=True)

    db.session.expire_all()
    stored = db.session.get(RiskEvent, event_id)
    assert updated is not None
    assert (stored.outcome, stored.intent_ids) == ("partial", [5, 6, 9])


def test_update_outcome_without_intents_keeps_them(alice):
    event_id = record_risk_event(user_id=alice.user_id, event_type="supertrend", action="close_all",
                                 intent_ids=[3], commit=True).id

    update_outcome(event_id, "filled", commit=True)

    db.session.expire_all()
    assert (db.session.get(RiskEvent, event_id).outcome, db.session.get(RiskEvent, event_id).intent_ids) == (
        "filled", [3])


def test_update_outcome_of_a_missing_event_gives_none(app):
    assert update_outcome(424242, "failed") is None


def test_update_outcome_refuses_an_unknown_outcome(alice):
    event_id = record_risk_event(user_id=alice.user_id, event_type="max_loss", action="close_all", commit=True).id

    with pytest.raises(ValueError):
        update_outcome(event_id, "done")


def test_block_account_entries_is_idempotent_and_keeps_the_first_reason(alice):
    account = alice.account_ids[0]
    day = date(2026, 1, 5)

    first = block_account_entries(account, day, "Daily loss ₹-20,000 reached the limit ₹20,000", commit=True)
    second = block_account_entries(account, day, "a later breach", commit=True)

    assert (first, second) == (True, False)
    assert _count(AccountRiskBlock) == 1
    assert entries_blocked(account, day) == "Daily loss ₹-20,000 reached the limit ₹20,000"


def test_block_lasts_one_trading_day_and_one_account(alice):
    account, other = alice.account_ids
    block_account_entries(account, date(2026, 1, 5), "limit", commit=True)

    assert entries_blocked(account, date(2026, 1, 6)) is None
    assert entries_blocked(other, date(2026, 1, 5)) is None
    assert blocked_accounts([account, other], date(2026, 1, 5)) == {account: "limit"}
    assert blocked_accounts([], date(2026, 1, 5)) == {}


def test_block_with_a_blank_reason_gets_the_default(alice):
    block_account_entries(alice.account_ids[0], date(2026, 1, 5), "  ", commit=True)

    assert entries_blocked(alice.account_ids[0], date(2026, 1, 5)) == DEFAULT_BLOCK_REASON


def test_block_row_written_concurrently_is_not_a_second_block(alice, monkeypatch):
    """Two leaders' checks both see no block; the unique key lets one row in, the other call says False."""
    from app.services.risk import events

    account, day = alice.account_ids[0], date(2026, 1, 5)
    db.session.add(AccountRiskBlock(account_id=account, trading_day=day, reason="other process"))
    db.session.commit()
    monkeypatch.setattr(events, "entries_blocked", lambda *_: None)  # the check ran before the other commit

    assert block_account_entries(account, day, "this process", commit=True) is False
    assert _count(AccountRiskBlock) == 1
