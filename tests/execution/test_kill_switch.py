"""The kill switch on three paper accounts: open orders, app runs and positions placed straight
at the broker → everything cancelled, everything flat, the report says exactly that."""

from __future__ import annotations

import pytest
from flask import current_app
from sqlalchemy import select

from app.broker.client import OpenAlgoClient
from app.extensions import db
from app.models import User
from app.models.execution import KillSwitch, StrategyRun
from app.services.execution import killswitch
from app.services.execution.engine import ExecutionEngine
from app.services.execution.errors import EngineOffline
from app.services.execution.held import held_by_leg
from app.services.execution.killswitch import press_kill_switch
from tests.helpers import make_user
from tests.support.execution import drive
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


@pytest.fixture
def three(alice, broker, sim, apikey):
    engine_online()
    user = db.session.scalar(select(User).where(User.username == "alice"))
    accounts = add_paper_accounts(alice, broker, sim, ["One", "Two", "Three"])
    clients = [OpenAlgoClient(broker.url, key) for _, key in accounts]
    yield user, accounts, clients
    for c in clients:
        c.close()
    for _, key in accounts:
        sim.call("DELETE", f"/sim/accounts/{key}")


def _nifty_option(client: OpenAlgoClient) -> str:
    expiry = client.expiries("NIFTY", "NFO")[0]
    return client.option_symbol("NIFTY", "NFO", expiry, "OTM10", "CE").symbol


@pytest.mark.parametrize("sender", ["engine", "test-driver"])
def test_kill_switch_three_accounts_cancels_everything_closes_everything_and_reports(three, sender):
    """Through the real ExecutionEngine (its passes run the kill switch's stages and send its
    orders), and through the tests' own driver of the same steps."""
    user, accounts, clients = three
    ids = [a for a, _ in accounts]
    run_id = make_run(user.id, ids[:2], [LegSpec("SBIN", "NSE", "BUY", 25, freeze_qty=10),
                                         LegSpec("RELIANCE", "NSE", "SELL", 12, underlying="RELIANCE")])
    filled_entries(Driver(), run_id)
    open_ids = [c.place_order(symbol="SBIN", exchange="NSE", action="BUY", quantity=5, product="MIS",
                              price_type="LIMIT", price="500").order_ids[0] for c in clients]
    trigger_id = clients[2].place_order(symbol="SBIN", exchange="NSE", action="SELL", quantity=3, product="MIS",
                                        price_type="SL-M", trigger_price="700").order_ids[0]
    clients[1].place_order(symbol="RELIANCE", exchange="NSE", action="BUY", quantity=7, product="CNC")
    option = _nifty_option(clients[2])
    for quantity in (1755, 65):  # one position of 1820, more than the freeze quantity
        clients[2].place_order(symbol=option, exchange="NFO", action="BUY", quantity=quantity, product="NRML")
    clients[2].place_order(symbol="SBIN", exchange="NSE", action="SELL", quantity=4, product="MIS")
    assert net_positions(ids[2]) == {(option, "NFO", "NRML"): 1820, ("SBIN", "NSE", "MIS"): -4}

    ks = press_kill_switch(user)
    finished = lambda: (r := db.session.get(KillSwitch, ks.id)).status == "done" and r  # noqa: E731
    if sender == "engine":
        engine = ExecutionEngine(current_app._get_current_object(), holder="test-engine")
        try:
            row = drive(engine, finished)
        finally:
            engine.on_stop()
    else:
        row = Driver(kill=True).run_until(finished)

    assert [net_positions(a) for a in ids] == [{}, {}, {}]
    assert [[o.order_id for o in c.orderbook() if o.status in ("open", "trigger pending")] for c in clients] \
        == [[], [], []]
    by_name = {e["name"]: e for e in row.report["accounts"].values()}
    assert sorted(by_name) == ["One", "Three", "Two"]
    assert by_name["One"]["cancelled"] == [open_ids[0]]
    assert by_name["Two"]["cancelled"] == [open_ids[1]]
    assert sorted(by_name["Three"]["cancelled"]) == sorted([open_ids[2], trigger_id])
    assert by_name["One"]["closed"] == [
        {"symbol": "RELIANCE", "exchange": "NSE", "product": "MIS", "quantity": -12},
        {"symbol": "SBIN", "exchange": "NSE", "product": "MIS", "quantity": 25}]
    assert by_name["Two"]["closed"] == [
        {"symbol": "RELIANCE", "exchange": "NSE", "product": "CNC", "quantity": 7},
        {"symbol": "RELIANCE", "exchange": "NSE", "product": "MIS", "quantity": -12},
        {"symbol": "SBIN", "exchange": "NSE", "product": "MIS", "quantity": 25}]
    assert by_name["Three"]["closed"] == [
        {"symbol": option, "exchange": "NFO", "product": "NRML", "quantity": 1820},
        {"symbol": "SBIN", "exchange": "NSE", "product": "MIS", "quantity": -4}]
    for entry in by_name.values():
        assert (entry["failed"], entry["still_open"], entry["open_orders_left"]) == ([], [], [])
    assert row.done_at is not None

    run_closes = [i for i in intents(run_id=run_id) if i.purpose == "kill_switch"]
    assert sorted((i.account_id, i.leg_number, i.child, i.action, i.quantity) for i in run_closes) == sorted(
        [(a, 1, c, "SELL", q) for a in ids[:2] for c, q in ((1, 10), (2, 10), (3, 5))]
        + [(a, 2, 1, "BUY", 12) for a in ids[:2]])
    assert all(i.intent_key.startswith(f"run:{run_id}/acct:") and i.intent_key.endswith("/close/1")
               for i in run_closes)
    option_kills = [i for i in intents(account_id=ids[2], kill_switch_id=ks.id) if i.symbol == option]
    assert [(i.intent_key, i.quantity, i.action) for i in option_kills] == [
        (f"kill:{ks.id}/acct:{ids[2]}/{option}:NFO:NRML/child:1", 1755, "SELL"),
        (f"kill:{ks.id}/acct:{ids[2]}/{option}:NFO:NRML/child:2", 65, "SELL")]
    assert [held_by_leg(ra) for ra in run_accounts(run_id)] == [{1: 0, 2: 0}, {1: 0, 2: 0}]
    assert db.session.get(StrategyRun, run_id).status == "closed"


def test_kill_switch_withdraws_planned_entries_of_the_user(three):
    user, accounts, _ = three
    run_id = make_run(user.id, [accounts[0][0]], [LegSpec("SBIN", "NSE", "BUY", 5)])
    ks = press_kill_switch(user)
    killswitch.step_all()
    assert [i.state for i in intents(run_id=run_id)] == ["not_placed"]
    Driver(kill=True).run_until(lambda: db.session.get(KillSwitch, ks.id).status == "done")
    assert net_positions(accounts[0][0]) == {}


def test_press_kill_switch_with_engine_offline_raises_and_queues_nothing(app):
    user = make_user(app, "olga")
    with pytest.raises(EngineOffline):
        press_kill_switch(user)
    assert db.session.scalars(select(KillSwitch)).all() == []


def test_kill_switch_flattens_a_deactivated_account_too(three):
    """Deactivating an account in the app does not close its positions at the broker: the kill
    switch covers every account of the user that is not deleted."""
    from app.models import TradingAccount

    user, accounts, clients = three
    clients[1].place_order(symbol="SBIN", exchange="NSE", action="BUY", quantity=4, product="MIS")
    db.session.get(TradingAccount, accounts[1][0]).is_active = False
    db.session.commit()
    ks = press_kill_switch(user)
    Driver(kill=True).run_until(lambda: db.session.get(KillSwitch, ks.id).status == "done")
    assert net_positions(accounts[1][0]) == {}
    report = db.session.get(KillSwitch, ks.id).report["accounts"][str(accounts[1][0])]
    assert [c["symbol"] for c in report["closed"]] == ["SBIN"] and report["still_open"] == []
