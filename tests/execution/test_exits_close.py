"""The exit manager over real HTTP against the paper broker: what it closes, how, and when."""

from __future__ import annotations

import logging
from datetime import date

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.models import TradingAccount, User
from app.models.execution import ExitRequest, RunAccount, StrategyRun
from app.services.execution import exits
from app.services.execution.close_caps import LegClose
from app.services.execution.errors import EngineOffline
from app.services.execution.held import held_by_leg
from tests.helpers import make_user
from tests.support.exits import (
    Driver,
    LegSpec,
    add_paper_accounts,
    engine_online,
    filled_entries,
    intents,
    make_run,
    net_positions,
    run_accounts,
)

LONG_SBIN = LegSpec("SBIN", "NSE", "BUY", 25, freeze_qty=10)  # closes as 10 + 10 + 5
SHORT_RELIANCE = LegSpec("RELIANCE", "NSE", "SELL", 12, underlying="RELIANCE")


@pytest.fixture
def setup(alice, broker, sim, apikey):
    engine_online()
    user = db.session.scalar(select(User).where(User.username == "alice"))
    accounts = add_paper_accounts(alice, broker, sim, ["One", "Two"])
    yield user, accounts
    for _, key in accounts:
        sim.call("DELETE", f"/sim/accounts/{key}")


def _entered(user, account_ids, legs=(LONG_SBIN, SHORT_RELIANCE), product="MIS"):
    run_id = make_run(user.id, account_ids, list(legs), product=product)
    driver = Driver()
    filled_entries(driver, run_id)
    return run_id, driver


def _open_limit_entry(user, account_id):
    """A run whose one entry is a BUY LIMIT far below the market: accepted, open at the broker."""
    run_id = make_run(user.id, [account_id], [LegSpec("SBIN", "NSE", "BUY", 5)])
    (entry,) = intents(run_id=run_id)
    entry.price_type, entry.price = "LIMIT", 500
    db.session.commit()
    driver = Driver()
    driver.run_until(lambda: intents(run_id=run_id)[0].state == "accepted")
    return run_id, driver


def _done(request_id):
    row = db.session.get(ExitRequest, request_id)
    return row.status in ("done", "failed") and row


def test_exit_whole_run_closes_exactly_the_held_quantity_shorts_first_split_at_freeze(setup):
    user, accounts = setup
    ids = [a for a, _ in accounts]
    run_id, driver = _entered(user, ids, product="MIS")
    assert [net_positions(a) for a in ids] == [{("SBIN", "NSE", "MIS"): 25, ("RELIANCE", "NSE", "MIS"): -12}] * 2

    request = exits.request_exit(user, db.session.get(StrategyRun, run_id), reason="done for the day")
    assert driver.run_until(lambda: _done(request.id)).status == "done"

    assert [net_positions(a) for a in ids] == [{}, {}]
    for account_id in ids:
        closes = [(i.leg_number, i.child, i.action, i.quantity, i.phase, i.product, i.purpose, i.state)
                  for i in intents(account_id=account_id) if i.purpose != "entry"]
        assert sorted(closes) == [
            (1, 1, "SELL", 10, 1, "MIS", "exit", "filled"), (1, 2, "SELL", 10, 1, "MIS", "exit", "filled"),
            (1, 3, "SELL", 5, 1, "MIS", "exit", "filled"), (2, 1, "BUY", 12, 0, "MIS", "exit", "filled")]
        keys = sorted(i.intent_key for i in intents(account_id=account_id) if i.purpose == "exit")
        assert keys == [f"run:{run_id}/acct:{account_id}/leg:{n}/child:{c}/close/1"
                        for n, c in ((1, 1), (1, 2), (1, 3), (2, 1))]
        short_close = next(i for i in intents(account_id=account_id, purpose="exit") if i.action == "BUY")
        assert all(i.sent_at >= short_close.filled_at for i in intents(account_id=account_id, purpose="exit")
                   if i.action == "SELL")
    assert [ra.status for ra in run_accounts(run_id)] == ["closed", "closed"]
    run = db.session.get(StrategyRun, run_id)
    assert run.status == "closed" and run.closed_at is not None
    assert [held_by_leg(ra) for ra in run_accounts(run_id)] == [{1: 0, 2: 0}, {1: 0, 2: 0}]


def test_exit_one_leg_of_one_account_closes_only_that(setup):
    user, accounts = setup
    ids = [a for a, _ in accounts]
    run_id, driver = _entered(user, ids)
    first = run_accounts(run_id)[0]

    request = exits.request_exit(user, db.session.get(StrategyRun, run_id), run_account=first, leg_number=2)
    assert driver.run_until(lambda: _done(request.id)).status == "done"

    assert net_positions(ids[0]) == {("SBIN", "NSE", "MIS"): 25}
    assert net_positions(ids[1]) == {("SBIN", "NSE", "MIS"): 25, ("RELIANCE", "NSE", "MIS"): -12}
    assert [held_by_leg(ra) for ra in run_accounts(run_id)] == [{1: 25, 2: 0}, {1: 25, 2: -12}]
    assert db.session.get(StrategyRun, run_id).status != "closed"
    assert [ra.status for ra in run_accounts(run_id)] != ["closed", "closed"]


def test_exit_one_account_closes_that_account_and_leaves_the_run_open(setup):
    user, accounts = setup
    ids = [a for a, _ in accounts]
    run_id, driver = _entered(user, ids)
    second = run_accounts(run_id)[1]

    request = exits.request_exit(user, db.session.get(StrategyRun, run_id), run_account=second.id)
    assert driver.run_until(lambda: _done(request.id)).status == "done"

    assert net_positions(ids[1]) == {}
    assert net_positions(ids[0]) == {("SBIN", "NSE", "MIS"): 25, ("RELIANCE", "NSE", "MIS"): -12}
    assert run_accounts(run_id)[1].status == "closed"
    assert db.session.get(StrategyRun, run_id).status != "closed"


def test_exit_two_requests_same_leg_racing_make_one_close_order_per_child(setup):
    user, accounts = setup
    ids = [ids for ids, _ in accounts][:1]
    run_id, driver = _entered(user, ids)
    run = db.session.get(StrategyRun, run_id)

    manual = exits.request_exit(user, run, leg_number=1, purpose="manual")
    square = exits.request_exit(user, run, leg_number=1, purpose="square_off")
    driver.run_until(lambda: _done(manual.id) and _done(square.id))

    assert db.session.get(ExitRequest, manual.id).status == "done"
    assert db.session.get(ExitRequest, square.id).status == "done"
    closes = [i for i in intents(run_id=run_id) if i.purpose != "entry"]
    assert sorted((i.child, i.quantity, i.purpose) for i in closes) == [(1, 10, "manual"), (2, 10, "manual"),
                                                                         (3, 5, "manual")]
    assert net_positions(ids[0]) == {("RELIANCE", "NSE", "MIS"): -12}


def test_exit_rejected_close_keeps_held_and_retries_after_a_position_reread(setup, sim):
    user, accounts = setup
    (account_id, key), _ = accounts
    run_id, driver = _entered(user, [account_id], legs=(SHORT_RELIANCE,))
    sim.set_faults(key, reject_rate=1.0, reject_reason="margin", reject_mode="http", routes=["placeorder"])

    request = exits.request_exit(user, db.session.get(StrategyRun, run_id))
    driver.run_until(lambda: any(i.state == "rejected" for i in intents(run_id=run_id, purpose="exit")))
    (ra,) = run_accounts(run_id)
    assert held_by_leg(ra) == {1: -12}
    rejected = intents(run_id=run_id, purpose="exit")[0]
    assert rejected.intent_key.endswith("/close/1") and rejected.rejection_reason
    sim.call("DELETE", "/sim/faults")

    assert driver.run_until(lambda: _done(request.id)).status == "done"
    closes = intents(run_id=run_id, purpose="exit")
    assert [(i.attempt, i.action, i.quantity, i.state) for i in closes] == [
        (1, "BUY", 12, "rejected"), (2, "BUY", 12, "filled")]
    assert closes[1].intent_key == f"run:{run_id}/acct:{account_id}/leg:1/child:1/close/2"
    assert net_positions(account_id) == {}
    assert held_by_leg(ra) == {1: 0}


def test_exit_rejected_every_round_fails_with_the_reason_and_held_unchanged(setup, sim):
    user, accounts = setup
    (account_id, key), _ = accounts
    run_id, driver = _entered(user, [account_id], legs=(SHORT_RELIANCE,))
    sim.set_faults(key, reject_rate=1.0, reject_reason="rms_block", reject_mode="http", routes=["placeorder"])

    request = exits.request_exit(user, db.session.get(StrategyRun, run_id))
    row = driver.run_until(lambda: _done(request.id))

    assert row.status == "failed"
    assert [i.attempt for i in intents(run_id=run_id, purpose="exit")] == [1, 2, 3]
    (failed,) = row.report["failed"]
    assert (failed["leg"], failed["symbol"], failed["held"]) == (1, "RELIANCE", -12)
    assert failed["reason"] == intents(run_id=run_id, purpose="exit")[-1].rejection_reason
    (ra,) = run_accounts(run_id)
    assert held_by_leg(ra) == {1: -12} and ra.flagged and ra.status != "closed"
    assert net_positions(account_id) == {("RELIANCE", "NSE", "MIS"): -12}


def test_exit_right_after_entry_accepted_cancels_open_entry_and_closes_what_filled(setup):
    user, accounts = setup
    (account_id, _), _ = accounts
    run_id, driver = _open_limit_entry(user, account_id)

    request = exits.request_exit(user, db.session.get(StrategyRun, run_id))
    assert driver.run_until(lambda: _done(request.id)).status == "done"

    assert intents(run_id=run_id)[0].state == "cancelled"
    assert intents(run_id=run_id, purpose="exit") == []
    assert net_positions(account_id) == {}


def test_exit_withdraws_planned_entries_before_they_are_sent(setup):
    user, accounts = setup
    (account_id, _), _ = accounts
    run_id = make_run(user.id, [account_id], [LONG_SBIN])
    request = exits.request_exit(user, db.session.get(StrategyRun, run_id))
    exits.step_all()
    assert [i.state for i in intents(run_id=run_id)] == ["not_placed"]
    assert Driver().run_until(lambda: _done(request.id)).status == "done"
    assert net_positions(account_id) == {}


def test_request_exit_of_another_users_run_account_or_leg_raises_lookup_error(setup, paper_app):
    user, accounts = setup
    ids = [a for a, _ in accounts]
    run_id = make_run(user.id, ids[:1], [LONG_SBIN])
    other_run_id = make_run(user.id, ids[1:], [LONG_SBIN])
    mallory = make_user(paper_app, "mallory")
    run = db.session.get(StrategyRun, run_id)
    foreign_ra = db.session.scalar(select(RunAccount).where(RunAccount.run_id == other_run_id))
    with pytest.raises(LookupError):
        exits.request_exit(mallory, run)
    with pytest.raises(LookupError):
        exits.request_exit(user, run, run_account=foreign_ra)
    with pytest.raises(LookupError):
        exits.request_exit(user, run, leg_number=2)
    assert db.session.scalars(select(ExitRequest)).all() == []


def test_request_exit_with_engine_offline_raises_and_queues_nothing(app):
    user = make_user(app, "olga")
    run = StrategyRun(user_id=user.id, strategy_name="x", idempotency_key="k", product="MIS",
                      trading_day=date(2026, 1, 5))
    db.session.add(run)
    db.session.commit()
    with pytest.raises(EngineOffline):
        exits.request_exit(user, run)
    assert db.session.scalars(select(ExitRequest)).all() == []


def test_exit_two_requests_stepped_at_once_in_two_sessions_plan_each_child_once(setup, paper_app):
    import threading

    user, accounts = setup
    ids = [a for a, _ in accounts][:1]
    run_id, driver = _entered(user, ids)
    run = db.session.get(StrategyRun, run_id)
    requests = [exits.request_exit(user, run, leg_number=1, purpose=p).id for p in ("manual", "square_off")]
    barrier = threading.Barrier(2)

    def contender(request_id: int) -> None:
        with paper_app.app_context():
            row = db.session.get(ExitRequest, request_id)
            barrier.wait()
            try:
                exits.step(row)
            except Exception:  # SQLite "database is locked": the next pass retries
                db.session.rollback()
            db.session.remove()

    threads = [threading.Thread(target=contender, args=(rid,)) for rid in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    driver.run_until(lambda: all(_done(rid) for rid in requests))

    closes = [i for i in intents(run_id=run_id) if i.purpose != "entry"]
    assert sorted((i.attempt, i.child, i.quantity) for i in closes) == [(1, 1, 10), (1, 2, 10), (1, 3, 5)]
    assert net_positions(ids[0]) == {("RELIANCE", "NSE", "MIS"): -12}
    assert [db.session.get(ExitRequest, rid).status for rid in requests] == ["done", "done"]


def test_a_round_someone_else_planned_for_one_leg_keeps_theirs_and_plans_only_the_other_leg(setup):
    """Two planners, one round: the second writes the legs the first did not plan, never a child
    more of the leg the first planned (one savepoint for all legs, then leg by leg on a collision)."""
    from app.services.execution.held import LegLedger, leg_ledgers

    user, accounts = setup
    run_id, _ = _entered(user, [accounts[0][0]])
    [ra] = run_accounts(run_id)
    legs = {leg.number: leg for leg in db.session.get(StrategyRun, run_id).legs}
    assert leg_ledgers(ra) == {1: LegLedger(held=25, entry_product="MIS"), 2: LegLedger(held=-12, entry_product="MIS")}
    assert exits.plan_leg_closes([LegClose(ra, legs[2], -12, "MIS", 1)], "exit") == (1, 0)
    both = [LegClose(ra, legs[1], 25, "MIS", 1), LegClose(ra, legs[2], -12, "MIS", 1)]
    assert exits.plan_leg_closes(both, "exit") == (3, 1)
    closes = intents(run_id=run_id, purpose="exit")
    assert sorted((i.leg_number, i.child, i.action, i.quantity) for i in closes) == [
        (1, 1, "SELL", 10), (1, 2, "SELL", 10), (1, 3, "SELL", 5), (2, 1, "BUY", 12)]
    # What is held comes from fills only; the planned closes are in flight and name the next round.
    assert leg_ledgers(ra) == {
        1: LegLedger(held=25, next_round=2, closing=True, in_flight=True, entry_product="MIS"),
        2: LegLedger(held=-12, next_round=2, closing=True, in_flight=True, entry_product="MIS")}


def test_a_leg_whose_entry_is_still_planned_is_in_flight_but_not_being_closed(setup):
    from app.services.execution.held import LegLedger, leg_ledgers

    user, accounts = setup
    run_id = make_run(user.id, [accounts[0][0]], [LONG_SBIN, SHORT_RELIANCE], product="NRML")
    [ra] = run_accounts(run_id)
    assert leg_ledgers(ra) == {1: LegLedger(in_flight=True, entering=True, entry_product="NRML"),
                               2: LegLedger(in_flight=True, entering=True, entry_product="NRML")}


def test_a_request_on_a_still_run_plans_its_first_round_in_its_own_transaction(setup):
    """A risk exit with nothing in flight: the request comes with its round-1 closes of the shorts
    (the leader only sends them); the longs are planned by the engine's step once each account's
    position book confirms them (read at once here: no engine pool), in the same round."""
    user, accounts = setup
    ids = [a for a, _ in accounts]
    run_id, driver = _entered(user, ids)
    ra_ids = [ra.id for ra in run_accounts(run_id)]

    request = exits.request_exit(user, db.session.get(StrategyRun, run_id), purpose="risk", reason="now")
    db.session.expire_all()

    row = db.session.get(ExitRequest, request.id)
    assert (row.status, row.report) == ("working", {"rounds": 1, "confirm": ra_ids})
    assert db.session.get(StrategyRun, run_id).status == "closing"
    assert [ra.status for ra in run_accounts(run_id)] == ["closing", "closing"]
    for account_id in ids:
        planned = sorted((i.leg_number, i.child, i.action, i.quantity, i.phase, i.state, i.exit_request_id)
                         for i in intents(account_id=account_id, purpose="risk"))
        assert planned == [(2, 1, "BUY", 12, 0, "planned", row.id)]
    exits.step_all()
    for account_id in ids:
        planned = sorted((i.leg_number, i.child, i.action, i.quantity, i.phase, i.state, i.exit_request_id)
                         for i in intents(account_id=account_id, purpose="risk"))
        assert planned == [(1, 1, "SELL", 10, 1, "planned", row.id), (1, 2, "SELL", 10, 1, "planned", row.id),
                           (1, 3, "SELL", 5, 1, "planned", row.id), (2, 1, "BUY", 12, 0, "planned", row.id)]
    assert db.session.get(ExitRequest, request.id).report == {"rounds": 1}
    exits.step_all()
    assert len(intents(run_id=run_id, purpose="risk")) == 8

    assert driver.run_until(lambda: _done(request.id)).status == "done"
    assert [net_positions(a) for a in ids] == [{}, {}]
    assert len(intents(run_id=run_id, purpose="risk")) == 8


def test_a_request_while_an_entry_is_moving_leaves_the_planning_to_the_engine(setup):
    """The long leg is filled and held, the short leg's entry is still planned: the request plans
    nothing itself (the engine first withdraws the entry, then closes what filled)."""
    user, accounts = setup
    (account_id, _), _ = accounts
    run_id = make_run(user.id, [account_id], [LONG_SBIN, SHORT_RELIANCE])
    Driver(hold=lambda i: i.action == "SELL").run_until(
        lambda: [i.state for i in intents(run_id=run_id, purpose="entry")] == ["filled", "planned"])

    request = exits.request_exit(user, db.session.get(StrategyRun, run_id))
    db.session.expire_all()

    assert db.session.get(ExitRequest, request.id).status == "pending"
    assert intents(run_id=run_id, purpose="exit") == []
    assert Driver().run_until(lambda: _done(request.id)).status == "done"
    assert [i.state for i in intents(run_id=run_id, purpose="entry")] == ["filled", "not_placed"]
    assert net_positions(account_id) == {}


def test_a_request_after_a_failed_round_plans_nothing_itself_the_engine_rereads_the_book(setup, sim):
    user, accounts = setup
    (account_id, key), _ = accounts
    run_id, driver = _entered(user, [account_id], legs=(SHORT_RELIANCE,))
    sim.set_faults(key, reject_rate=1.0, reject_reason="margin", reject_mode="http", routes=["placeorder"])
    first = exits.request_exit(user, db.session.get(StrategyRun, run_id), leg_number=1)
    driver.run_until(lambda: any(i.state == "rejected" for i in intents(run_id=run_id, purpose="exit")))
    db.session.get(ExitRequest, first.id).status = "failed"  # as if it had given up
    db.session.commit()
    sim.call("DELETE", "/sim/faults")

    again = exits.request_exit(user, db.session.get(StrategyRun, run_id), purpose="manual")
    db.session.expire_all()

    assert db.session.get(ExitRequest, again.id).status == "pending"
    assert [i.attempt for i in intents(run_id=run_id, purpose="exit")] == [1]
    assert driver.run_until(lambda: _done(again.id)).status == "done"
    assert [(i.attempt, i.state) for i in intents(run_id=run_id) if i.purpose != "entry"] == [
        (1, "rejected"), (2, "filled")]
    assert net_positions(account_id) == {}


def test_what_is_moving_in_a_requests_scope_is_one_query_that_agrees_with_the_ledgers(setup):
    from app.services.execution.held import leg_ledgers

    user, accounts = setup
    ids = [a for a, _ in accounts]
    run_id = make_run(user.id, ids, [LONG_SBIN, SHORT_RELIANCE])
    run = db.session.get(StrategyRun, run_id)
    first, second = run_accounts(run_id)

    def request(**scope):
        return ExitRequest(user_id=user.id, run_id=run_id, purpose="exit", status="working", **scope)

    assert exits.moving_in_scope(request()) == (True, True)  # every entry is still planned
    filled_entries(Driver(), run_id)
    assert exits.moving_in_scope(request()) == (False, False)
    legs = {leg.number: leg for leg in run.legs}
    exits.plan_leg_closes([LegClose(first, legs[2], -12, "MIS", 1)], "exit")
    assert exits.moving_in_scope(request()) == (True, False)
    assert exits.moving_in_scope(request(run_account_id=first.id, leg_number=2)) == (True, False)
    assert exits.moving_in_scope(request(run_account_id=first.id, leg_number=1)) == (False, False)
    assert exits.moving_in_scope(request(run_account_id=second.id)) == (False, False)
    ledgers = leg_ledgers(first)
    assert (ledgers[2].in_flight, ledgers[2].entering, ledgers[1].in_flight) == (True, False, False)


def test_a_working_request_still_cancels_an_entry_that_is_open_at_the_broker(setup):
    """The one-query shortcut of a working request waits only while closes alone are moving."""
    user, accounts = setup
    (account_id, _), _ = accounts
    run_id, driver = _open_limit_entry(user, account_id)
    request = exits.request_exit(user, db.session.get(StrategyRun, run_id))
    db.session.get(ExitRequest, request.id).status = "working"  # as after an earlier pass
    db.session.commit()

    assert driver.run_until(lambda: _done(request.id), timeout=20).status == "done"
    assert intents(run_id=run_id)[0].state == "cancelled"


def test_a_cancel_that_cannot_be_sent_never_fails_the_exit_step(setup, caplog):
    """The account's key no longer decrypts (a botched key rotation): the open entry's cancel
    cannot be sent. The step notes the attempt (tried again after CANCEL_AGAIN_SECONDS) instead of
    raising on every pass."""
    user, accounts = setup
    (account_id, _), _ = accounts
    run_id, _driver = _open_limit_entry(user, account_id)
    order_id = intents(run_id=run_id)[0].broker_order_id
    request = exits.request_exit(user, db.session.get(StrategyRun, run_id))
    db.session.execute(update(TradingAccount).where(TradingAccount.id == account_id)
                       .values(api_key_encrypted="not a Fernet token"))
    db.session.commit()

    with caplog.at_level(logging.INFO):
        assert exits.step_all() is True
    assert not [r for r in caplog.records if "step failed" in r.getMessage()]
    assert [r.levelname for r in caplog.records if "not sent" in r.getMessage()] == ["ERROR"]
    db.session.expire_all()
    row = db.session.get(ExitRequest, request.id)
    assert (row.status, list(row.report["cancel_sent"])) == ("working", [order_id])
    assert intents(run_id=run_id)[0].state == "accepted"
