"""Every exit path writes one risk event (issue 10, point 5): a manual exit, the scheduled
square-off and the kill switch; the event names its exit intents and their outcome once settled."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import User
from app.models.execution import ExitRequest, KillSwitch, RunAccount, StrategyRun
from app.models.risk import RiskEvent
from app.services.execution import exits
from app.services.execution.killswitch import press_kill_switch
from tests.support.exits import Driver, LegSpec, add_paper_accounts, engine_online, filled_entries, intents, make_run

LONG = LegSpec("SBIN", "NSE", "BUY", 10)
SHORT = LegSpec("RELIANCE", "NSE", "SELL", 5, underlying="RELIANCE")


@pytest.fixture
def setup(alice, broker, sim, apikey):
    engine_online()
    user = db.session.scalar(select(User).where(User.username == "alice"))
    accounts = add_paper_accounts(alice, broker, sim, ["One", "Two"])
    yield user, [a for a, _ in accounts]
    for _, key in accounts:
        sim.call("DELETE", f"/sim/accounts/{key}")


def _events():
    db.session.expire_all()
    return list(db.session.scalars(select(RiskEvent).order_by(RiskEvent.id)))


def test_manual_exit_of_one_account_writes_one_manual_exit_event_naming_its_close_intents(setup):
    user, ids = setup
    run_id = make_run(user.id, ids, [LONG, SHORT])
    driver = Driver()
    filled_entries(driver, run_id)
    run = db.session.get(StrategyRun, run_id)
    part = db.session.scalar(select(RunAccount).where(RunAccount.run_id == run_id, RunAccount.account_id == ids[1]))

    request = exits.request_exit(user, run, run_account=part, reason="closed from the run page")
    [event] = _events()
    assert (event.event_type, event.action, event.outcome, event.exit_request_id, event.account_id, event.run_id) == \
        ("manual_exit", "close_all", None, request.id, ids[1], run_id)
    assert event.intent_ids == [] and "closed from the run page" in event.detail
    assert event.user_id == user.id and event.strategy_name == run.strategy_name

    driver.run_until(lambda: db.session.get(ExitRequest, request.id).status == "done")
    [event] = _events()
    closes = [i.id for i in intents(run_id=run_id) if i.purpose == "exit"]
    assert len(closes) == 2 and event.intent_ids == closes and event.outcome == "filled"
    assert all(i.account_id == ids[1] for i in intents(run_id=run_id) if i.purpose == "exit")


def test_square_off_purpose_writes_a_square_off_event(setup):
    user, ids = setup
    run_id = make_run(user.id, ids[:1], [LONG])
    driver = Driver()
    filled_entries(driver, run_id)
    request = exits.request_exit(user, db.session.get(StrategyRun, run_id), purpose="square_off",
                                 reason="scheduled square-off at 15:15 IST")
    driver.run_until(lambda: db.session.get(ExitRequest, request.id).status == "done")
    [event] = _events()
    assert (event.event_type, event.account_id, event.outcome) == ("square_off", None, "filled")
    assert event.intent_ids == [i.id for i in intents(run_id=run_id) if i.purpose == "square_off"]


def test_risk_purpose_exit_is_not_doubled_by_the_exit_manager(setup):
    user, ids = setup
    run_id = make_run(user.id, ids[:1], [LONG])
    filled_entries(Driver(), run_id)
    exits.request_exit(user, db.session.get(StrategyRun, run_id), purpose="risk", reason="max loss")
    assert _events() == []  # the risk monitor writes the event of its own decision


def test_kill_switch_writes_one_event_settled_with_its_intents(setup):
    user, ids = setup
    run_id = make_run(user.id, ids, [LONG, SHORT])
    filled_entries(Driver(), run_id)
    press = press_kill_switch(user)
    assert press_kill_switch(user).id == press.id  # a second press is the same kill switch: one event
    [event] = _events()
    assert (event.event_type, event.action, event.outcome) == ("kill_switch", "close_all", None)

    Driver(kill=True).run_until(lambda: db.session.get(KillSwitch, press.id).status == "done")
    [event] = _events()
    closes = [i.id for i in intents(kill_switch_id=press.id)]
    assert len(closes) == 4 and event.intent_ids == closes and event.outcome == "filled"
