"""Entry failure policies over real HTTP against the paper broker: a SELL leg rejected after its
BUY filled (report / retry / unwind), a freeze split with one child rejected, request_retry."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.domain.order_lifecycle import IntentState
from app.extensions import db
from app.models.execution import ExitRequest, RunAccount, StrategyRun
from app.services.execution import sender, tracker
from app.services.execution.held import held_by_leg
from app.services.execution.policy import request_retry
from tests.helpers import make_user, wait_until
from tests.support.execution import (
    CE,
    PE,
    Leg,
    broker_net,
    drive,
    hold_lease,
    intents,
    make_run,
    recorded_net,
    run_checked,
    run_done,
)


def _reject_sells(sim, key, mode):
    # The BUY goes first and fills; the fault then rejects every later placement (the SELL).
    sim.set_faults(key, reject_rate=1.0, reject_reason="margin", reject_mode=mode, routes=["placeorder"])


def _fill_buy_first(run_id):
    # The BUY goes through the engine's own sender and tracker, without a pass, so no pass can
    # schedule the SELL before the test injects its fault.
    buy = intents(run_id)[0]
    assert (buy.action == "BUY" and sender.send(buy.id, "test") == IntentState.ACCEPTED) or buy.state == "filled"
    wait_until(lambda: tracker.track(buy.id) is IntentState.FILLED or intents(run_id)[0].state == "filled")


def _run_buy_then_rejected_sell(one, sim, mode, **policy):
    run_id = make_run(one["user"].id, [one["account"]], [Leg(CE, "BUY"), Leg(PE, "SELL")], **policy)
    _fill_buy_first(run_id)
    _reject_sells(sim, one["key"], mode)
    drive(one["engine"], run_done(run_id))
    return run_id


def _books_match(one, run_id):
    for symbol in (CE, PE):
        assert broker_net(one["client"], symbol) == recorded_net(run_id, one["account"], symbol)


@pytest.mark.parametrize("mode", ["order", "http"])
def test_policy_report_sell_rejected_after_buy_filled_flags_partial(one, sim, mode):
    run_id = _run_buy_then_rejected_sell(one, sim, mode, failure_policy="report")
    drive(one["engine"], run_checked(run_id))
    rows = intents(run_id)
    assert [(r.action, r.state, r.filled_quantity) for r in rows] == [("BUY", "filled", 65), ("SELL", "rejected", 0)]
    assert rows[1].rejection_reason.startswith("RMS:Margin Exceeds")
    ra = db.session.get(RunAccount, rows[0].run_account_id)
    assert (ra.status, ra.flagged, ra.position_check["ok"]) == ("partial", True, True)
    assert db.session.get(StrategyRun, run_id).status == "open"
    _books_match(one, run_id)


def test_policy_retry_transient_rejection_resent_retry_limit_times(one, sim):
    run_id = make_run(one["user"].id, [one["account"]], [Leg(CE, "BUY"), Leg(PE, "SELL")],
                      failure_policy="retry", retry_limit=2)
    _fill_buy_first(run_id)
    sim.set_faults(one["key"], reject_rate=1.0, reject_message="Exchange not connected, try again",
                   reject_mode="order", routes=["placeorder"])
    drive(one["engine"], run_done(run_id))
    rows = intents(run_id)
    assert [(r.action, r.attempt, r.state) for r in rows] == [
        ("BUY", 1, "filled"), ("SELL", 1, "rejected"), ("SELL", 2, "rejected"), ("SELL", 3, "rejected")]
    assert [r.replaces_intent_id for r in rows] == [None, None, rows[1].id, rows[2].id]
    assert db.session.get(RunAccount, rows[0].run_account_id).status == "partial"
    _books_match(one, run_id)


def test_policy_retry_final_rejection_is_not_resent(one, sim):
    run_id = _run_buy_then_rejected_sell(one, sim, "order", failure_policy="retry", retry_limit=3)
    rows = intents(run_id)
    assert [(r.action, r.attempt, r.state) for r in rows] == [("BUY", 1, "filled"), ("SELL", 1, "rejected")]
    assert db.session.get(RunAccount, rows[0].run_account_id).status == "partial"
    _books_match(one, run_id)


def test_policy_unwind_sell_rejected_creates_unwind_request(one, sim):
    run_id = _run_buy_then_rejected_sell(one, sim, "http", failure_policy="unwind")
    rows = intents(run_id)
    (request,) = db.session.scalars(select(ExitRequest).where(ExitRequest.run_id == run_id))
    assert (request.purpose, request.run_account_id) == ("unwind", rows[0].run_account_id)
    assert request.status in ("pending", "working", "done")
    # The exit manager closes what this account filled in this run: the BUY is sold back (once the
    # broker takes orders again: the rejection fault covered every order of the account).
    sim.call("DELETE", "/sim/faults")
    drive(one["engine"], lambda: db.session.get(ExitRequest, request.id).status == "done")
    closes = [r for r in intents(run_id) if r.purpose == "unwind"]
    # A close round sent before the fault was cleared is rejected; the next round (after a position
    # re-read) fills. Exactly one unwind close fills, whatever the timing.
    assert [(r.action, r.quantity) for r in closes] == [("SELL", rows[0].quantity)] * len(closes)
    assert [r.state for r in closes] == ["rejected"] * (len(closes) - 1) + ["filled"]
    assert held_by_leg(rows[0].run_account_id) == {1: 0, 2: 0}
    _books_match(one, run_id)


def test_policy_failed_buy_withdraws_sell(one, sim):
    sim.set_faults(one["key"], reject_rate=1.0, reject_reason="rms_block", routes=["placeorder"])
    run_id = make_run(one["user"].id, [one["account"]], [Leg(CE, "BUY"), Leg(PE, "SELL")])
    drive(one["engine"], run_done(run_id))
    rows = intents(run_id)
    assert [(r.action, r.state) for r in rows] == [("BUY", "rejected"), ("SELL", "not_placed")]
    assert [e.event for e in rows[1].events] == ["withdraw"]
    assert db.session.get(StrategyRun, run_id).status == "failed"
    assert one["client"].orderbook() == []
    _books_match(one, run_id)


def test_freeze_split_three_children_one_rejected_leg_partly_filled(one, sim):
    # 3 lots at a freeze of one lot: three children; funds for about two of them.
    quote = one["client"].quote(CE, "NFO")
    sim.post(f"/sim/accounts/{one['key']}/funds", {"funds": float(quote.ltp) * 65 * 2.5})
    run_id = make_run(one["user"].id, [one["account"]], [Leg(CE, "BUY", lots=3, freeze_qty=65)])
    drive(one["engine"], run_done(run_id))
    rows = intents(run_id)
    assert sorted(r.state for r in rows) == ["filled", "filled", "rejected"]
    assert [r.child for r in rows] == [0, 1, 2] and all(r.quantity == 65 for r in rows)
    assert db.session.get(RunAccount, rows[0].run_account_id).status == "partial"
    assert broker_net(one["client"], CE) == 130 == recorded_net(run_id, one["account"], CE)


def test_request_retry_replans_failed_legs_and_other_user_gets_lookup_error(one, sim):
    sim.set_faults(one["key"], reject_rate=1.0, reject_reason="margin", routes=["placeorder"])
    run_id = make_run(one["user"].id, [one["account"]], [Leg(CE, "BUY"), Leg(PE, "SELL")])
    drive(one["engine"], run_done(run_id))
    ra_id = intents(run_id)[0].run_account_id
    stranger = make_user(one["app"], "mallory")
    with pytest.raises(LookupError):
        request_retry(stranger, ra_id)
    sim.call("DELETE", "/sim/faults")
    hold_lease()  # a retry needs the engine online, like Execute
    created = request_retry(one["user"], ra_id)
    assert len(created) == 2
    # The account rolls up in its own commit, the run in the next one (a policy job's thread):
    # wait for both.
    drive(one["engine"], lambda: (db.session.get(RunAccount, ra_id).status,
                                  db.session.get(StrategyRun, run_id).status) == ("open", "open"))
    rows = intents(run_id)
    assert [(r.action, r.attempt, r.state) for r in rows] == [
        ("BUY", 1, "rejected"), ("SELL", 1, "not_placed"), ("BUY", 2, "filled"), ("SELL", 2, "filled")]
    _books_match(one, run_id)


def test_a_halt_set_mid_entry_stops_the_orders_not_yet_sent(one, sim):
    """The BUY filled, then an admin halts trading: the SELL is withdrawn, never sent (also after
    the halt is lifted); the BUY's fill stays and the account is flagged."""
    from app.services.execution import halt

    admin = make_user(one["app"], "root", role="admin")
    run_id = make_run(one["user"].id, [one["account"]], [Leg(CE, "BUY"), Leg(PE, "SELL")], failure_policy="report")
    _fill_buy_first(run_id)
    halt.halt_trading(db.session.merge(admin), "exchange glitch")
    drive(one["engine"], run_done(run_id))
    buy, sell = intents(run_id)
    assert (buy.state, sell.state) == ("filled", "not_placed")
    assert "trading halted by root: exchange glitch" in sell.note and sell.broker_order_id is None
    halt.lift_halt(db.session.merge(admin))
    drive(one["engine"], run_checked(run_id))
    assert [i.state for i in intents(run_id)] == ["filled", "not_placed"]  # nothing sent after the lift
    assert [o.action for o in one["client"].orderbook()] == ["BUY"]
    ra = db.session.scalar(select(RunAccount).where(RunAccount.run_id == run_id))
    assert ra.flagged and held_by_leg(ra.id) == {1: 65, 2: 0}
    _books_match(one, run_id)


@pytest.mark.parametrize("gate", ["disconnected", "expired", "market_closed", "daily_limit"])
def test_request_retry_applies_executes_gates_and_plans_nothing(one, sim, monkeypatch, gate):
    from datetime import UTC, datetime, timedelta

    from app.domain.expiries import ist_today
    from app.models import TradingAccount
    from app.models.execution import RunLeg
    from app.services.execution.errors import ExecutionRefused
    from app.services.risk.events import block_account_entries

    sim.set_faults(one["key"], reject_rate=1.0, reject_reason="margin", routes=["placeorder"])
    run_id = make_run(one["user"].id, [one["account"]], [Leg(CE, "BUY"), Leg(PE, "SELL")])
    drive(one["engine"], run_done(run_id))
    sim.call("DELETE", "/sim/faults")
    hold_lease()
    ra_id = intents(run_id)[0].run_account_id
    account = db.session.get(TradingAccount, one["account"])
    if gate == "disconnected":
        account.connection_status = "disconnected"
    elif gate == "expired":
        for leg in db.session.scalars(select(RunLeg).where(RunLeg.run_id == run_id)):
            leg.expiry = datetime.now(UTC).date() - timedelta(days=1)
    elif gate == "market_closed":
        account.is_paper = False  # a real account trades in market hours only
        monkeypatch.setattr("app.services.calendar.market_is_open", lambda *a, **k: False)
    else:
        block_account_entries(account.id, ist_today(datetime.now(UTC)), "Daily loss limit breached")
    db.session.commit()
    before = len(intents(run_id))
    with pytest.raises(ExecutionRefused):
        request_retry(one["user"], ra_id)
    assert len(intents(run_id)) == before
