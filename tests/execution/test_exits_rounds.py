"""Exit rounds are spent only on close orders: a position book that cannot be read for a while
does not make an exit fail."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.models import TradingAccount, User
from app.models.execution import ExitRequest, StrategyRun
from app.services.execution import exits
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

SHORT_RELIANCE = LegSpec("RELIANCE", "NSE", "SELL", 12, underlying="RELIANCE")


@pytest.fixture
def account(alice, broker, sim, apikey):
    engine_online()
    user = db.session.scalar(select(User).where(User.username == "alice"))
    ((account_id, key),) = add_paper_accounts(alice, broker, sim, ["One"])
    yield user, account_id, key
    sim.call("DELETE", "/sim/faults")
    sim.call("DELETE", f"/sim/accounts/{key}")


def _request(request_id: int) -> ExitRequest:
    db.session.expire_all()
    row = db.session.get(ExitRequest, request_id)
    assert row is not None
    return row


def _first_round_rejected(user, account_id, key, sim):
    """A short entered, its exit's first close rejected (margin); the faults cleared again."""
    run_id = make_run(user.id, [account_id], [SHORT_RELIANCE])
    driver = Driver()
    filled_entries(driver, run_id)
    sim.set_faults(key, reject_rate=1.0, reject_reason="margin", reject_mode="http", routes=["placeorder"])
    request = exits.request_exit(user, db.session.get(StrategyRun, run_id))
    driver.run_until(lambda: [i.state for i in intents(run_id=run_id, purpose="exit")] == ["rejected"])
    sim.call("DELETE", "/sim/faults")
    return run_id, request, driver


def test_exit_with_position_book_unreadable_for_a_while_keeps_working_then_closes(account, sim):
    user, account_id, key = account
    run_id, request, driver = _first_round_rejected(user, account_id, key, sim)
    sim.set_faults(key, error_rate=1.0, routes=["positionbook"])  # round 2 must re-read the book first
    for _ in range(3 * exits.MAX_CLOSE_ROUNDS):
        driver.step()
    row = _request(request.id)
    assert (row.status, row.report["rounds"]) == ("working", 1)
    (problem,) = row.report["unclosable"]
    assert problem["reason"].startswith("position book unreadable")
    assert [i.attempt for i in intents(run_id=run_id, purpose="exit")] == [1]

    sim.call("DELETE", "/sim/faults")
    driver.run_until(lambda: _request(request.id).status in ("done", "failed"))
    row = _request(request.id)
    assert (row.status, row.report["rounds"], row.report["unclosable"]) == ("done", 2, [])
    assert [(i.attempt, i.action, i.quantity, i.state) for i in intents(run_id=run_id, purpose="exit")] == [
        (1, "BUY", 12, "rejected"), (2, "BUY", 12, "filled")]
    assert net_positions(account_id) == {}


def test_exit_whose_book_read_raises_a_non_broker_error_fails_after_the_idle_limit(account, sim, monkeypatch,
                                                                                   caplog):
    """Round 2 must read the position book, and reading it raises something that is not a broker
    error (here the account's key no longer decrypts, as after a botched key rotation). The step
    must not fail on every pass for ever: the request waits out its idle limit like any unreadable
    book, then fails, naming the reason, and holds what the fills say."""
    monkeypatch.setattr(exits, "IDLE_LIMIT_SECONDS", 0.0)
    user, account_id, key = account
    run_id, request, driver = _first_round_rejected(user, account_id, key, sim)
    db.session.execute(update(TradingAccount).where(TradingAccount.id == account_id)
                       .values(api_key_encrypted="not a Fernet token"))
    db.session.commit()

    with caplog.at_level(logging.ERROR):
        driver.run_until(lambda: _request(request.id).status in ("done", "failed"))
    row = _request(request.id)
    assert row.status == "failed"
    assert row.report["rounds"] == 1
    [failed] = row.report["failed"]
    assert (failed["held"], failed["reason"]) == (-12, "position book unreadable: EncryptionError (details in the log)")
    assert not [r for r in caplog.records if "step failed" in r.getMessage()]
    assert [i.attempt for i in intents(run_id=run_id, purpose="exit")] == [1]
