"""Exits and the kill switch through the real ExecutionEngine (its passes send and track every
close intent) over real HTTP against the paper broker."""

from __future__ import annotations

import pytest

from app.broker.client import OpenAlgoClient
from app.extensions import db
from app.models.execution import ExitRequest, KillSwitch, StrategyRun
from app.services.execution import close_caps, exits
from app.services.execution.engine import ExecutionEngine
from app.services.execution.held import held_by_leg, leg_ledgers, run_summary
from app.services.execution.killswitch import press_kill_switch
from tests.helpers import make_user
from tests.support.execution import CE, PE, Leg, add_paper_account, broker_net, drive, intents, make_run, run_done
from tests.support.exits import engine_online, run_accounts


@pytest.fixture
def setup(app_factory, broker, sim, apikey):
    app = app_factory(BROKER_READ_TIMEOUT=2.0)
    with app.app_context():
        engine_online()
        user = make_user(app, "alice")
        account_id = add_paper_account(app, user.id, "One", broker.url, apikey)
        client = OpenAlgoClient(broker.url, apikey)
        engine = ExecutionEngine(app, holder="test-engine")
        yield user, account_id, client, engine
        engine.on_stop()
        client.close()


def test_exit_through_the_engine_closes_28_lots_short_first_split_at_freeze(setup):
    user, account_id, client, engine = setup
    run_id = make_run(user.id, [account_id], [Leg(PE, "BUY", lots=28), Leg(CE, "SELL", lots=1)], product="NRML")
    drive(engine, run_done(run_id))
    assert (broker_net(client, PE, product="NRML"), broker_net(client, CE, product="NRML")) == (1820, -65)

    request = exits.request_exit(user, db.session.get(StrategyRun, run_id))
    drive(engine, lambda: db.session.get(ExitRequest, request.id).status in ("done", "failed"))

    assert db.session.get(ExitRequest, request.id).status == "done"
    assert (broker_net(client, PE, product="NRML"), broker_net(client, CE, product="NRML")) == (0, 0)
    closes = sorted((i for i in intents(run_id) if i.purpose == "exit"), key=lambda i: (i.phase, i.id))
    assert [(i.symbol, i.action, i.quantity, i.phase, i.product, i.state) for i in closes] == [
        (CE, "BUY", 65, 0, "NRML", "filled"), (PE, "SELL", 1755, 1, "NRML", "filled"),
        (PE, "SELL", 65, 1, "NRML", "filled")]
    assert max(i.filled_at for i in closes if i.phase == 0) <= min(i.sent_at for i in closes if i.phase == 1)
    (ra,) = run_accounts(run_id)
    assert held_by_leg(ra) == {1: 0, 2: 0}
    (summary,) = run_summary(db.session.get(StrategyRun, run_id))
    assert summary.flat and [(leg.entry_filled, leg.close_filled) for leg in summary.legs] == [(1820, 1820), (65, 65)]


def test_kill_switch_through_the_engine_flattens_run_and_direct_positions(setup):
    user, account_id, client, engine = setup
    run_id = make_run(user.id, [account_id], [Leg(PE, "BUY"), Leg(CE, "SELL")])
    drive(engine, run_done(run_id))
    client.place_order(symbol="SBIN", exchange="NSE", action="BUY", quantity=3, product="MIS")

    ks = press_kill_switch(user)
    drive(engine, lambda: db.session.get(KillSwitch, ks.id).status == "done")

    (entry,) = db.session.get(KillSwitch, ks.id).report["accounts"].values()
    assert entry["still_open"] == [] and entry["failed"] == [] and entry["open_orders_left"] == []
    assert entry["closed"] == [{"symbol": CE, "exchange": "NFO", "product": "MIS", "quantity": -65},
                               {"symbol": PE, "exchange": "NFO", "product": "MIS", "quantity": 65},
                               {"symbol": "SBIN", "exchange": "NSE", "product": "MIS", "quantity": 3}]
    assert [p for p in client.positions() if p.quantity] == []
    assert db.session.get(StrategyRun, run_id).status == "closed"


def test_exit_while_entry_fills_in_parts_cancels_the_rest_and_closes_exactly_what_filled(setup, sim, apikey):
    user, account_id, client, engine = setup
    sim.partial_fills(apikey, {"min_quantity": 1, "parts": 3, "interval_ms": 60000})
    run_id = make_run(user.id, [account_id], [Leg(PE, "BUY", lots=3)])
    drive(engine, lambda: intents(run_id)[0].state == "partially_filled")

    request = exits.request_exit(user, db.session.get(StrategyRun, run_id), purpose="manual")
    drive(engine, lambda: db.session.get(ExitRequest, request.id).status in ("done", "failed"))

    entry, *closes = intents(run_id)
    assert (entry.state, entry.filled_quantity) == ("cancelled", 65)
    assert [(i.action, i.quantity, i.state, i.purpose) for i in closes] == [("SELL", 65, "filled", "manual")]
    assert broker_net(client, PE) == 0
    assert db.session.get(StrategyRun, run_id).status == "closed"


def test_exit_through_the_engine_with_short_close_rejected_every_round_fails_after_three_rounds(setup, sim,
                                                                                                   apikey):
    # The engine withdraws each round's planned SELL (its BUY phase was rejected): the exit manager
    # sees the round terminal, plans the next one, and fails after MAX_CLOSE_ROUNDS.
    user, account_id, client, engine = setup
    run_id = make_run(user.id, [account_id], [Leg(PE, "BUY"), Leg(CE, "SELL")])
    drive(engine, run_done(run_id))
    sim.set_faults(apikey, reject_rate=1.0, reject_reason="rms_block", reject_mode="http", routes=["placeorder"])
    try:
        request = exits.request_exit(user, db.session.get(StrategyRun, run_id))
        drive(engine, lambda: db.session.get(ExitRequest, request.id).status in ("done", "failed"), timeout=45)
    finally:
        sim.call("DELETE", "/sim/faults")

    row = db.session.get(ExitRequest, request.id)
    assert (row.status, row.report["rounds"]) == ("failed", exits.MAX_CLOSE_ROUNDS)
    closes = [i for i in intents(run_id) if i.purpose == "exit"]
    assert sorted((i.attempt, i.symbol, i.action, i.state) for i in closes) == [
        (r, s, a, st) for r in (1, 2, 3) for s, a, st in sorted([(CE, "BUY", "rejected"), (PE, "SELL", "not_placed")])]
    assert all(i.note.startswith("withdrawn") for i in closes if i.state == "not_placed")
    assert sorted((f["symbol"], f["held"]) for f in row.report["failed"]) == sorted([(PE, 65), (CE, -65)])
    (ra,) = run_accounts(run_id)
    assert held_by_leg(ra) == {1: 65, 2: -65}
    assert (broker_net(client, PE), broker_net(client, CE)) == (65, -65)


def test_kill_switch_through_the_engine_with_short_close_rejected_finishes_and_reports(setup, sim, apikey):
    user, _, client, engine = setup
    client.place_order(symbol="SBIN", exchange="NSE", action="SELL", quantity=4, product="MIS")
    client.place_order(symbol="RELIANCE", exchange="NSE", action="BUY", quantity=7, product="MIS")
    sim.set_faults(apikey, reject_rate=1.0, reject_reason="margin", reject_mode="http", routes=["placeorder"])
    try:
        ks = press_kill_switch(user)
        drive(engine, lambda: db.session.get(KillSwitch, ks.id).status == "done", timeout=60)
    finally:
        sim.call("DELETE", "/sim/faults")

    (entry,) = db.session.get(KillSwitch, ks.id).report["accounts"].values()
    mine = {"SBIN", "RELIANCE"}
    failed = sorted((f["symbol"], f["reason"].startswith("withdrawn")) for f in entry["failed"] if f["symbol"] in mine)
    assert failed == [("RELIANCE", True), ("SBIN", False)]
    assert [(p["symbol"], p["quantity"]) for p in entry["still_open"] if p["symbol"] in mine] == [
        ("RELIANCE", 7), ("SBIN", -4)]
    assert (broker_net(client, "SBIN", exchange="NSE"), broker_net(client, "RELIANCE", exchange="NSE")) == (-4, 7)


def test_a_short_on_a_later_round_still_closes_before_the_longs(setup, sim, apikey):
    """The short's own exit failed (3 rounds rejected), then the whole run is closed: the short's
    close is on round 4, the long's on round 1, and the long still waits for the short to fill."""
    user, account_id, client, engine = setup
    run_id = make_run(user.id, [account_id], [Leg(PE, "BUY"), Leg(CE, "SELL")])
    drive(engine, run_done(run_id))
    run = db.session.get(StrategyRun, run_id)
    (ra,) = run_accounts(run_id)
    sim.set_faults(apikey, reject_rate=1.0, reject_reason="rms_block", routes=["placeorder"])
    try:
        short_exit = exits.request_exit(user, run, run_account=ra, leg_number=2)
        drive(engine, lambda: db.session.get(ExitRequest, short_exit.id).status in ("done", "failed"))
    finally:
        sim.call("DELETE", "/sim/faults")
    assert db.session.get(ExitRequest, short_exit.id).status == "failed"

    request = exits.request_exit(user, db.session.get(StrategyRun, run_id))
    drive(engine, lambda: db.session.get(ExitRequest, request.id).status in ("done", "failed"))
    assert db.session.get(ExitRequest, request.id).status == "done"
    closes = [i for i in intents(run_id) if i.exit_request_id == request.id]
    [short] = [i for i in closes if i.action == "BUY"]
    [long_] = [i for i in closes if i.action == "SELL"]
    assert (short.attempt, long_.attempt, short.state, long_.state) == (4, 1, "filled", "filled")
    assert short.filled_at <= long_.sent_at
    assert (broker_net(client, PE), broker_net(client, CE)) == (0, 0)


@pytest.mark.parametrize("purpose", ["exit", "risk"])
def test_an_exit_closes_no_more_than_the_broker_still_holds(setup, monkeypatch, purpose):
    """The trader sold the long at the broker's own terminal, then presses Close (or a breach
    asks for a risk exit): the short is bought back, the long is not sold a second time (that
    would be a naked short); the request fails, naming the leg the position book no longer shows.
    A risk exit buys the short back from the run's fills at once and reads the book for the long;
    a manual exit reads it first."""
    monkeypatch.setattr(exits, "IDLE_LIMIT_SECONDS", 0.0)
    user, account_id, client, engine = setup
    run_id = make_run(user.id, [account_id], [Leg(PE, "BUY"), Leg(CE, "SELL")])
    drive(engine, run_done(run_id))
    client.place_order(symbol=PE, exchange="NFO", action="SELL", quantity=65, product="MIS")
    assert broker_net(client, PE) == 0

    request = exits.request_exit(user, db.session.get(StrategyRun, run_id), purpose=purpose, reason="close it")
    drive(engine, lambda: db.session.get(ExitRequest, request.id).status in ("done", "failed"))
    row = db.session.get(ExitRequest, request.id)
    assert row.status == "failed"
    assert [(u["leg"], u["held"], u["broker"]) for u in row.report["unclosable"]] == [(1, 65, 0)]
    closes = [i for i in intents(run_id) if i.exit_request_id == request.id]
    assert [(i.symbol, i.action, i.purpose, i.state) for i in closes] == [(CE, "BUY", purpose, "filled")]
    assert (broker_net(client, PE), broker_net(client, CE)) == (0, 0)


def _kill_intents(ks_id):
    from sqlalchemy import select

    from app.models.execution import OrderIntent

    db.session.expire_all()
    return list(db.session.scalars(select(OrderIntent).where(OrderIntent.kill_switch_id == ks_id)
                                   .order_by(OrderIntent.id)))


def test_a_kill_switch_close_refused_for_a_passing_reason_is_tried_again(setup, sim, apikey):
    """Round 1's close is refused ("try again"); the kill switch reads the book again and closes it
    in round 2; the report shows it closed, not failed."""
    user, _, client, engine = setup
    client.place_order(symbol="SBIN", exchange="NSE", action="BUY", quantity=3, product="MIS")
    sim.set_faults(apikey, reject_rate=1.0, reject_message="Too many requests, try again later",
                   routes=["placeorder"])
    try:
        ks = press_kill_switch(user)
        drive(engine, lambda: (rows := _kill_intents(ks.id)) and all(r.state == "rejected" for r in rows))
    finally:
        sim.call("DELETE", "/sim/faults")
    row = drive(engine, lambda: (r := db.session.get(KillSwitch, ks.id)).status == "done" and r)
    assert broker_net(client, "SBIN", exchange="NSE") == 0
    assert [(i.attempt, i.state, i.intent_key.endswith("/round:2")) for i in _kill_intents(ks.id)] == [
        (1, "rejected", False), (2, "filled", True)]
    (entry,) = row.report["accounts"].values()
    assert entry["failed"] == [] and entry["still_open"] == []
    assert entry["closed"] == [{"symbol": "SBIN", "exchange": "NSE", "product": "MIS", "quantity": 3}]


def test_a_kill_switch_close_refused_for_good_is_reported_not_retried(setup, sim, apikey):
    user, _, client, engine = setup
    client.place_order(symbol="SBIN", exchange="NSE", action="BUY", quantity=3, product="MIS")
    sim.set_faults(apikey, reject_rate=1.0, reject_reason="rms_block", routes=["placeorder"])
    try:
        ks = press_kill_switch(user)
        row = drive(engine, lambda: (r := db.session.get(KillSwitch, ks.id)).status == "done" and r)
    finally:
        sim.call("DELETE", "/sim/faults")
    assert [(i.attempt, i.state) for i in _kill_intents(ks.id)] == [(1, "rejected")]
    (entry,) = row.report["accounts"].values()
    assert [f["symbol"] for f in entry["failed"]] == ["SBIN"] and "RMS" in entry["failed"][0]["reason"]
    assert entry["still_open"] == [{"symbol": "SBIN", "exchange": "NSE", "product": "MIS", "quantity": 3}]
    client.place_order(symbol="SBIN", exchange="NSE", action="SELL", quantity=3, product="MIS")


def test_a_risk_exit_sends_its_shorts_while_the_position_book_is_still_being_read(setup, sim, apikey):
    """The longs wait for the book, the shorts do not: with the position book answering 1.5 s
    late, the short's close is at the broker before the long's close is even planned, and the
    long still closes in the same round once the book confirms it."""
    user, account_id, client, engine = setup
    run_id = make_run(user.id, [account_id], [Leg(PE, "BUY"), Leg(CE, "SELL")])
    drive(engine, run_done(run_id))
    sim.set_faults(apikey, response_delay_ms=1500, routes=["positionbook"])
    try:
        request = exits.request_exit(user, db.session.get(StrategyRun, run_id), purpose="risk", reason="max loss")
        drive(engine, lambda: db.session.get(ExitRequest, request.id).status in ("done", "failed"))
    finally:
        sim.call("DELETE", "/sim/faults")

    row = db.session.get(ExitRequest, request.id)
    assert (row.status, row.report["rounds"]) == ("done", 1)
    closes = {i.action: i for i in intents(run_id) if i.exit_request_id == request.id}
    short, long_ = closes["BUY"], closes["SELL"]
    assert (short.symbol, short.state, long_.symbol, long_.state, long_.attempt) == (CE, "filled", PE, "filled", 1)
    assert (long_.created_at - short.sent_at).total_seconds() >= 1.0
    assert (broker_net(client, PE), broker_net(client, CE)) == (0, 0)


def test_two_opposite_runs_on_one_contract_close_short_first_then_long(setup):
    """Run A is long the contract, run B short it, on one account: the position book shows 0.
    A's long is not sold while B's short is there (other runs' shorts are never added back to
    the book); B's short is bought back (the book minus A's long), after which A closes."""
    user, account_id, client, engine = setup
    run_a = make_run(user.id, [account_id], [Leg(PE, "BUY")], key="run-a")
    drive(engine, run_done(run_a))
    run_b = make_run(user.id, [account_id], [Leg(PE, "SELL")], key="run-b")
    drive(engine, run_done(run_b))
    assert broker_net(client, PE) == 0

    held_long = close_caps.against_book(run_accounts(run_a)[0], [(db.session.get(StrategyRun, run_a).legs[0], 65)],
                                    {1: leg_ledgers(run_accounts(run_a)[0])[1]}, {(PE, "NFO", "MIS"): 0})
    assert (held_long[0], [u["broker"] for u in held_long[1]]) == ([], [0])
    for run_id, left in ((run_b, 65), (run_a, 0)):
        request_id = exits.request_exit(user, db.session.get(StrategyRun, run_id), reason="close").id
        drive(engine, lambda rid=request_id: db.session.get(ExitRequest, rid).status in ("done", "failed"))
        assert db.session.get(ExitRequest, request_id).status == "done"
        assert broker_net(client, PE) == left
    assert [db.session.get(StrategyRun, r).status for r in (run_a, run_b)] == ["closed", "closed"]


def test_a_stale_short_of_another_run_never_blocks_this_runs_short_close(setup):
    """Run X shorted the CE and the trader bought it back at the broker's terminal (X's fills
    still say -65). Run A holds the PE hedge and the same CE short. Closing A buys its CE back
    (X's stale short is not trusted) and then sells the hedge: flat, never a naked short."""
    user, account_id, client, engine = setup
    run_x = make_run(user.id, [account_id], [Leg(CE, "SELL")], key="run-x")
    drive(engine, run_done(run_x))
    client.place_order(symbol=CE, exchange="NFO", action="BUY", quantity=65, product="MIS")
    run_a = make_run(user.id, [account_id], [Leg(PE, "BUY"), Leg(CE, "SELL")], key="run-a")
    drive(engine, run_done(run_a))
    assert (broker_net(client, PE), broker_net(client, CE)) == (65, -65)

    request = exits.request_exit(user, db.session.get(StrategyRun, run_a), reason="close")
    drive(engine, lambda: db.session.get(ExitRequest, request.id).status in ("done", "failed"))
    assert db.session.get(ExitRequest, request.id).status == "done"
    assert (broker_net(client, PE), broker_net(client, CE)) == (0, 0)


def test_two_legs_of_one_run_on_one_contract_share_the_books_figure(setup):
    """Two BUY legs of one run on the same contract (65 each); the book shows 65: the closes
    sell 65 in all, never 130 (each leg capped at the whole figure would sell a naked short)."""
    user, account_id, _client, engine = setup
    run_id = make_run(user.id, [account_id], [Leg(PE, "BUY"), Leg(PE, "BUY")])
    drive(engine, run_done(run_id))
    (ra,) = run_accounts(run_id)
    legs = db.session.get(StrategyRun, run_id).legs
    closes, refused = close_caps.against_book(ra, [(legs[0], 65), (legs[1], 65)], leg_ledgers(ra),
                                          {(PE, "NFO", "MIS"): 65})
    assert [(c.leg.number, c.quantity) for c in closes] == [(1, 65)]
    assert [(u["leg"], u["held"], u["broker"]) for u in refused] == [(2, 65, 65)]
