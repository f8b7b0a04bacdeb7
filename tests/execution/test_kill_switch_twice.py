"""The kill switch pressed twice, pressed while an exit is closing, and a close group whose lower
phase fails: never a position closed twice, never a kill switch waiting forever."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.broker.client import OpenAlgoClient
from app.domain.order_lifecycle import IntentEvent
from app.extensions import db
from app.models import User
from app.models.execution import ExitRequest, KillSwitch, StrategyRun
from app.services.execution import exits, killswitch
from app.services.execution.killswitch import press_kill_switch
from app.services.execution.lifecycle import apply, claim
from tests.support.exits import (
    Driver,
    LegSpec,
    add_paper_accounts,
    engine_online,
    filled_entries,
    intents,
    make_run,
    net_positions,
)


@pytest.fixture
def one(alice, broker, sim, apikey):
    engine_online()
    user = db.session.scalar(select(User).where(User.username == "alice"))
    ((account_id, key),) = add_paper_accounts(alice, broker, sim, ["One"])
    client = OpenAlgoClient(broker.url, key)
    yield user, account_id, key, client
    client.close()
    sim.call("DELETE", "/sim/faults")
    sim.call("DELETE", f"/sim/accounts/{key}")


def _kill_switches(user_id: int) -> list[int]:
    db.session.expire_all()
    return list(db.session.scalars(select(KillSwitch.id).where(KillSwitch.user_id == user_id)
                                   .order_by(KillSwitch.id)))


def test_press_kill_switch_twice_returns_the_active_one_and_closes_once(one):
    user, account_id, _, client = one
    client.place_order(symbol="SBIN", exchange="NSE", action="BUY", quantity=5, product="MIS")

    first = press_kill_switch(user)
    second = press_kill_switch(user)

    assert second.id == first.id
    assert _kill_switches(user.id) == [first.id]
    Driver(kill=True).run_until(lambda: db.session.get(KillSwitch, first.id).status == "done")
    assert [(i.symbol, i.action, i.quantity, i.state) for i in intents(account_id=account_id)] == [
        ("SBIN", "SELL", 5, "filled")]
    assert net_positions(account_id) == {}
    third = press_kill_switch(user)  # the first is done: a new press is a new kill switch
    assert third.id != first.id and _kill_switches(user.id) == [first.id, third.id]


def test_kill_switch_while_an_exit_close_is_in_flight_closes_the_position_once(one, monkeypatch):
    user, account_id, _, _ = one
    run_id = make_run(user.id, [account_id], [LegSpec("SBIN", "NSE", "BUY", 5)])
    driver = Driver(kill=True)
    filled_entries(driver, run_id)
    request = exits.request_exit(user, db.session.get(StrategyRun, run_id))
    exits.step_all()
    (close,) = intents(run_id=run_id, purpose="exit")
    assert claim(close, "slow-sender")  # the exit's close is being sent: in flight
    monkeypatch.setattr(killswitch, "WAIT_LIMIT_SECONDS", 0.0)  # the kill switch does not wait for it

    ks = press_kill_switch(user)
    for _ in range(3):  # cancel → wait (waited out) → plan
        killswitch.step_all()
    db.session.expire_all()
    row = db.session.get(KillSwitch, ks.id)
    assert row.report["stage"] == "closing"
    assert intents(kill_switch_id=ks.id) == []  # neither a run close nor a sweep of the SBIN position
    driver.place(intents(id=close.id)[0])  # the slow sender's order goes out now

    driver.run_until(lambda: db.session.get(KillSwitch, ks.id).status == "done"
                     and db.session.get(ExitRequest, request.id).status == "done")
    assert net_positions(account_id) == {}
    sells = [(i.purpose, i.quantity, i.state) for i in intents(account_id=account_id) if i.action == "SELL"]
    assert sells == [("exit", 5, "filled")]
    (entry,) = db.session.get(KillSwitch, ks.id).report["accounts"].values()
    assert entry["failed"] == [{"symbol": "SBIN", "reason": f"run {run_id}: a close of leg 1 is in flight"}]
    assert entry["still_open"] == []


def test_kill_switch_close_group_with_failed_short_close_finishes_and_reports(one, sim):
    user, account_id, key, client = one
    client.place_order(symbol="SBIN", exchange="NSE", action="SELL", quantity=4, product="MIS")
    client.place_order(symbol="RELIANCE", exchange="NSE", action="BUY", quantity=7, product="MIS")
    sim.set_faults(key, reject_rate=1.0, reject_reason="margin", reject_mode="http", routes=["placeorder"])

    ks = press_kill_switch(user)
    row = Driver(kill=True).run_until(lambda: (r := db.session.get(KillSwitch, ks.id)).status == "done" and r,
                                      timeout=60)

    kills = intents(kill_switch_id=ks.id)
    assert [(i.symbol, i.action, i.phase, i.state) for i in kills] == [
        ("RELIANCE", "SELL", 1, "not_placed"), ("SBIN", "BUY", 0, "rejected")]
    assert kills[0].note.startswith("withdrawn")  # blocked by the rejected short close, never sent
    (entry,) = row.report["accounts"].values()
    assert [f["symbol"] for f in entry["failed"]] == ["RELIANCE", "SBIN"]
    assert entry["failed"][0]["reason"].startswith("withdrawn")
    assert entry["failed"][1]["reason"] == kills[1].rejection_reason
    assert entry["still_open"] == [{"symbol": "RELIANCE", "exchange": "NSE", "product": "MIS", "quantity": 7},
                                   {"symbol": "SBIN", "exchange": "NSE", "product": "MIS", "quantity": -4}]
    sim.call("DELETE", "/sim/faults")
    assert net_positions(account_id) == {("RELIANCE", "NSE", "MIS"): 7, ("SBIN", "NSE", "MIS"): -4}


def test_a_cancel_the_broker_refuses_in_the_wait_stage_is_asked_again_only_after_a_pause(one, monkeypatch):
    # The app believes an order is open (the status read has not seen its fill yet); the broker
    # refuses to cancel a filled order. Passes come many times a second: asking on every one
    # would spend the account's order rate limit that the kill switch's closes need next.
    user, account_id, _, client = one
    run_id = make_run(user.id, [account_id], [LegSpec("SBIN", "NSE", "BUY", 5)])
    (entry,) = intents(run_id=run_id)
    (order_id,) = client.place_order(symbol="SBIN", exchange="NSE", action="BUY", quantity=5, product="MIS").order_ids
    assert claim(entry, "test-sender")
    apply(entry, IntentEvent.ACCEPTED, broker_order_id=order_id)  # filled at the broker, not known here
    asked: list[str] = []
    real_cancel = OpenAlgoClient.cancel_order

    def counting(self, broker_order_id, *args, **kwargs):
        asked.append(broker_order_id)
        return real_cancel(self, broker_order_id, *args, **kwargs)

    monkeypatch.setattr(OpenAlgoClient, "cancel_order", counting)
    monkeypatch.setattr(killswitch, "CANCEL_RETRY_SECONDS", 3600.0)
    ks = press_kill_switch(user)
    killswitch.step_all()  # cancel stage: the book shows nothing open
    assert db.session.get(KillSwitch, ks.id).report["stage"] == "wait"
    for _ in range(5):
        killswitch.step_all()
    assert asked == [order_id]  # refused once, not asked again within the pause
    db.session.expire_all()
    report = db.session.get(KillSwitch, ks.id).report
    assert list(report["cancel_refused_at"]) == [order_id] and report["stage"] == "wait"
    monkeypatch.setattr(killswitch, "CANCEL_RETRY_SECONDS", 0.0)
    killswitch.step_all()
    assert asked == [order_id, order_id]  # after the pause it is asked again
