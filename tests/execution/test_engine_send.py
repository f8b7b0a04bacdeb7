"""The engine over real HTTP against the paper broker: sending, phases, tracking, reconciliation,
restart recovery and two engines racing. Every test checks the broker's net position equals the
app's record."""

from __future__ import annotations

import threading

import pytest

from app.broker.client import OpenAlgoClient
from app.domain.order_lifecycle import IntentState
from app.extensions import db
from app.models.execution import StrategyRun
from app.services.execution import sender
from app.services.execution.engine import ExecutionEngine
from tests.helpers import make_user
from tests.support.execution import (
    CE,
    PE,
    Leg,
    add_paper_account,
    broker_net,
    drive,
    intents,
    make_run,
    recorded_net,
    run_checked,
    run_done,
)


@pytest.fixture
def setup(engine_app, broker, sim, apikey):
    user = make_user(engine_app, "alice")
    second = sim.new_account()
    accounts = [add_paper_account(engine_app, user.id, "One", broker.url, apikey),
                add_paper_account(engine_app, user.id, "Two", broker.url, second)]
    clients = [OpenAlgoClient(broker.url, apikey), OpenAlgoClient(broker.url, second)]
    engine = ExecutionEngine(engine_app, holder="test-engine")
    yield {"user": user, "accounts": accounts, "keys": [apikey, second], "clients": clients, "engine": engine}
    engine.on_stop()
    for c in clients:
        c.close()
    sim.call("DELETE", f"/sim/accounts/{second}")


def _assert_books_match(run_id, setup, symbols=(CE, PE)):
    for account_id, client in zip(setup["accounts"], setup["clients"], strict=True):
        for symbol in symbols:
            assert broker_net(client, symbol) == recorded_net(run_id, account_id, symbol)


def test_position_books_are_checked_once_the_whole_run_is_entered(setup, sim):
    # Account Two's orders are answered 2 s late: One is entered long before the run is, and its
    # position check waits for the run (it would only compete with Two's orders otherwise).
    sim.set_faults(setup["keys"][1], response_delay_ms=2000, routes=["placeorder"])
    try:
        run_id = make_run(setup["user"].id, setup["accounts"], [Leg(PE, "SELL"), Leg(CE, "BUY")])

        def one_entered_run_not() -> bool:
            run = db.session.get(StrategyRun, run_id)
            return run.accounts[0].status == "open" and run.status == "entering"

        drive(setup["engine"], one_entered_run_not)
        setup["engine"].run_pass()
        db.session.expire_all()
        assert db.session.get(StrategyRun, run_id).accounts[0].position_check is None
    finally:
        sim.call("DELETE", "/sim/faults")
    drive(setup["engine"], run_checked(run_id))
    run = db.session.get(StrategyRun, run_id)
    assert [(a.status, a.position_check["ok"], a.position_check["differences"]) for a in run.accounts] == \
        [("open", True, [])] * 2


def test_send_two_accounts_buy_and_sell_legs_all_filled_buy_first(setup):
    run_id = make_run(setup["user"].id, setup["accounts"], [Leg(PE, "SELL"), Leg(CE, "BUY")])
    drive(setup["engine"], run_checked(run_id))
    rows = intents(run_id)
    assert [(r.state, r.filled_quantity) for r in rows] == [("filled", 65)] * 4
    for account_id in setup["accounts"]:
        buy = next(r for r in rows if r.account_id == account_id and r.action == "BUY")
        sell = next(r for r in rows if r.account_id == account_id and r.action == "SELL")
        assert buy.filled_at <= sell.sent_at
    run = db.session.get(StrategyRun, run_id)
    assert run.status == "open" and run.entered_at is not None
    assert [a.status for a in run.accounts] == ["open", "open"]
    assert [a.position_check["ok"] for a in run.accounts] == [True, True]
    for client in setup["clients"]:
        assert broker_net(client, CE) == 65 and broker_net(client, PE) == -65
    _assert_books_match(run_id, setup)


def test_send_lost_response_is_adopted_by_reconciliation_one_order_at_broker(setup, sim):
    sim.set_faults(setup["keys"][0], lost_response_rate=1.0, routes=["placeorder"])
    run_id = make_run(setup["user"].id, setup["accounts"][:1], [Leg(CE, "BUY")])
    drive(setup["engine"], run_done(run_id))
    (row,) = intents(run_id)
    assert (row.state, row.filled_quantity) == ("filled", 65)
    assert [e.event for e in row.events] == ["claim", "outcome_unknown", "adopt", "fill"]
    book = setup["clients"][0].orderbook()
    assert [o.order_id for o in book if o.symbol == CE] == [row.broker_order_id]
    _assert_books_match(run_id, setup, (CE,))


def test_send_response_delay_past_read_timeout_is_unknown_then_reconciled(setup, sim):
    sim.set_faults(setup["keys"][0], response_delay_ms=2500, routes=["placeorder"])
    run_id = make_run(setup["user"].id, setup["accounts"][:1], [Leg(CE, "BUY")])
    drive(setup["engine"], run_done(run_id))
    (row,) = intents(run_id)
    assert (row.state, [e.event for e in row.events]) == ("filled", ["claim", "outcome_unknown", "adopt", "fill"])
    assert len([o for o in setup["clients"][0].orderbook() if o.symbol == CE]) == 1
    _assert_books_match(run_id, setup, (CE,))


def test_answer_that_could_not_be_recorded_is_reconciled_not_left_sending(setup, monkeypatch):
    # The order reaches the broker, but the transaction that records its answer fails (the
    # database was unavailable for a moment): the intent must not stay SENDING for the term.
    real, failures = sender.record_many, []

    def failing_once(outcomes, *rest):
        if not failures:
            failures.append(len(outcomes))
            raise RuntimeError("database unavailable")
        return real(outcomes, *rest)

    monkeypatch.setattr(sender, "record_many", failing_once)
    run_id = make_run(setup["user"].id, setup["accounts"][:1], [Leg(CE, "BUY")])
    drive(setup["engine"], run_done(run_id), timeout=30)
    (row,) = intents(run_id)
    assert failures == [1]
    assert (row.state, row.filled_quantity) == ("filled", 65)
    assert [e.event for e in row.events] == ["claim", "outcome_unknown", "adopt", "fill"]
    assert row.note.startswith("no answer was recorded")
    assert [o.order_id for o in setup["clients"][0].orderbook() if o.symbol == CE] == [row.broker_order_id]
    _assert_books_match(run_id, setup, (CE,))


def test_answer_the_database_refused_once_is_recorded_again_not_reconciled(setup, monkeypatch):
    # Recording each answer alone fails once (the batch too): the known answer is kept and
    # recorded again, instead of being thrown away for a reconciliation by the order's shape.
    real, failures = sender.record, []

    def failing_once(outcome, *rest):
        if not failures:
            failures.append(outcome.intent_id)
            raise RuntimeError("database unavailable")
        return real(outcome, *rest)

    monkeypatch.setattr(sender, "record", failing_once)
    monkeypatch.setattr(sender, "_accepted_in_transaction", lambda *a: (_ for _ in ()).throw(RuntimeError("batch")))
    run_id = make_run(setup["user"].id, setup["accounts"][:1], [Leg(CE, "BUY")])
    drive(setup["engine"], run_done(run_id), timeout=30)
    (row,) = intents(run_id)
    assert len(failures) == 1
    assert (row.state, [e.event for e in row.events]) == ("filled", ["claim", "accepted", "fill"])
    _assert_books_match(run_id, setup, (CE,))


@pytest.mark.parametrize("fault", [{"error_rate": 1.0}, {"drop_rate": 1.0}], ids=["http500", "drop"])
def test_send_not_placed_is_resent_once_then_reported(setup, sim, fault):
    sim.set_faults(setup["keys"][0], routes=["placeorder"], **fault)
    run_id = make_run(setup["user"].id, setup["accounts"][:1], [Leg(CE, "BUY"), Leg(PE, "SELL")],
                      resend_not_placed=True)
    drive(setup["engine"], run_done(run_id))
    rows = intents(run_id)
    assert [(r.action, r.attempt, r.state) for r in rows] == [
        ("BUY", 1, "not_placed"), ("SELL", 1, "not_placed"), ("BUY", 2, "not_placed")]
    assert rows[2].replaces_intent_id == rows[0].id
    assert rows[1].note.startswith("withdrawn")
    assert setup["clients"][0].orderbook() == []
    assert db.session.get(StrategyRun, run_id).status == "failed"
    _assert_books_match(run_id, setup)


def test_restart_intents_left_sending_are_reconciled_by_new_engine(setup, engine_app):
    run_id = make_run(setup["user"].id, setup["accounts"][:1], [Leg(CE, "BUY")])
    (row,) = intents(run_id)
    # A leader claimed and sent it, then died before recording the answer.
    from app.services.execution.lifecycle import claim

    assert claim(row, "dead-leader")
    setup["clients"][0].place_order(symbol=CE, exchange="NFO", action="BUY", quantity=65, product="MIS")
    fresh = ExecutionEngine(engine_app, holder="new-leader")
    try:
        fresh.on_start()
        drive(fresh, run_done(run_id), timeout=15)
    finally:
        fresh.on_stop()
    (row,) = intents(run_id)
    assert (row.state, [e.event for e in row.events]) == ("filled", ["claim", "outcome_unknown", "adopt", "fill"])
    assert len(setup["clients"][0].orderbook()) == 1
    _assert_books_match(run_id, setup, (CE,))


def test_two_engines_racing_send_each_intent_once(setup, engine_app, monkeypatch):
    from app.services.execution import engine as engine_module

    run_id = make_run(setup["user"].id, setup["accounts"], [Leg(CE, "BUY", lots=2), Leg(PE, "SELL", lots=2)])
    other = ExecutionEngine(engine_app, holder="engine-b")
    stop = threading.Event()
    # Both engines' first claims meet at a barrier, so they ask for the same planned intents at
    # the same moment (without it one engine may simply claim everything first).
    barrier = threading.Barrier(2, timeout=30)
    asked: dict[str, list[tuple[set[int], set[int]]]] = {}
    plain_claim = engine_module.claim_many

    def racing_claim(intent_ids, holder, **kw):
        if holder not in asked:
            asked[holder] = []
            barrier.wait()
        rows = plain_claim(intent_ids, holder, **kw)
        asked[holder].append((set(intent_ids), {r.id for r in rows}))
        return rows

    monkeypatch.setattr(engine_module, "claim_many", racing_claim)

    def loop() -> None:
        with engine_app.app_context():
            while not stop.is_set():
                other.run_pass()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        drive(setup["engine"], run_done(run_id))
    finally:
        stop.set()
        thread.join(30)
        other.on_stop()
    rows = intents(run_id)
    assert [r.state for r in rows] == ["filled"] * 4
    a_asked, b_asked = asked["test-engine"][0][0], asked["engine-b"][0][0]
    assert a_asked & b_asked  # they raced for the same intents …
    claimed = [i for calls in asked.values() for _, got in calls for i in got]
    assert sorted(claimed) == sorted(r.id for r in rows)  # … and each was claimed exactly once
    for account_id, client in zip(setup["accounts"], setup["clients"], strict=True):
        ids = sorted(o.order_id for o in client.orderbook())
        assert ids == sorted(r.broker_order_id for r in rows if r.account_id == account_id)
    _assert_books_match(run_id, setup)
    assert [a.status for a in db.session.get(StrategyRun, run_id).accounts] == ["open", "open"]


def test_an_account_whose_client_cannot_be_made_does_not_hold_the_others(setup, monkeypatch):
    # Account One's key cannot be decrypted: its order is not sent (not_placed, nothing at its
    # broker); account Two, claimed in the same pass, is sent and filled.
    real = sender.client_for
    broken = setup["accounts"][0]

    def client_for(account):
        if account.id == broken:
            raise ValueError("key cannot be decrypted")
        return real(account)

    monkeypatch.setattr(sender, "client_for", client_for)
    run_id = make_run(setup["user"].id, setup["accounts"], [Leg(CE, "BUY")])
    drive(setup["engine"], run_done(run_id))
    rows = {r.account_id: r for r in intents(run_id)}
    assert rows[broken].state == "not_placed" and rows[broken].rejection_reason.startswith("Not sent")
    assert (rows[setup["accounts"][1]].state, rows[setup["accounts"][1]].filled_quantity) == ("filled", 65)
    assert setup["clients"][0].orderbook() == []


def test_an_unknown_outcome_with_two_matching_orders_adopts_the_earliest_and_flags_it(setup, sim):
    """The answer is lost; before reconciliation reads the book, the same order is placed again by
    hand. Two candidates: the earliest (the app's own) is adopted, the intent flagged with the
    other's id, and the position check shows the broker holding more than the app."""
    sim.set_faults(setup["keys"][0], lost_response_rate=1.0, routes=["placeorder"])
    run_id = make_run(setup["user"].id, setup["accounts"][:1], [Leg(CE, "BUY")])
    (row,) = intents(run_id)
    assert sender.send(row.id, "test") is IntentState.UNKNOWN
    sim.call("DELETE", "/sim/faults")
    setup["clients"][0].place_order(symbol=CE, exchange="NFO", action="BUY", quantity=65, product="MIS")
    first, second = sorted(setup["clients"][0].orderbook(), key=lambda o: int(o.order_id))
    drive(setup["engine"], run_checked(run_id))
    db.session.expire_all()
    (row,) = intents(run_id)
    assert (row.state, row.broker_order_id, row.flagged) == ("filled", first.order_id, True)
    assert second.order_id in row.note and "several orders matched" in row.note
    (ra,) = db.session.get(StrategyRun, run_id).accounts
    assert ra.position_check["ok"] is False and broker_net(setup["clients"][0], CE) == 130


def test_two_runs_on_the_same_contract_both_pass_their_position_check(setup):
    """The position book has one net figure per contract for the whole account: each run's check
    compares it with every intent of the account on that contract, not its own alone."""
    first = make_run(setup["user"].id, setup["accounts"][:1], [Leg(CE, "BUY")], key="run-a")
    drive(setup["engine"], run_checked(first))
    second = make_run(setup["user"].id, setup["accounts"][:1], [Leg(CE, "BUY")], key="run-b")
    drive(setup["engine"], run_checked(second))
    db.session.expire_all()
    checks = [db.session.get(StrategyRun, r).accounts[0].position_check for r in (first, second)]
    assert [c["ok"] for c in checks] == [True, True], checks
    assert broker_net(setup["clients"][0], CE) == 130
