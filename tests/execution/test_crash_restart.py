"""Crash and restart of the leader (issue 9): `kill -9` the `flask services` process while its orders
are in flight; a new leader reconciles them and finishes the run within 15 s, with no duplicate order.

Two real OS processes run `python -m flask --app app services` against the session's test database
(SQLite row lease or, with TEST_DATABASE_URL, the PostgreSQL advisory lock) and the session's paper
broker. The broker holds back its placeorder answers (response_delay_ms: the order is booked, the
answer is late), so the first leader is killed with its BUY intents in "sending" and their orders in
the broker's book. The second leader must adopt exactly those orders, send the SELL phase and roll
the run up; the broker's books must then equal the app's record.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.broker.client import OpenAlgoClient
from app.extensions import db
from app.models.execution import StrategyRun
from app.models.services import ServiceLease
from app.services.lease import DEFAULT_LEASE_NAME, make_lease, parse_holder
from config import new_fernet_key
from tests.helpers import make_user, wait_until
from tests.support.execution import CE, PE, SKEW, Leg, add_paper_account, broker_net, intents, make_run, recorded_net

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
# Short lease for a quick takeover, renewed often enough to survive a loaded machine.
TTL, RENEW, RETRY = 4.0, 1.0, 0.5
RECOVERY_BOUND_SECONDS = 15.0  # issue 9: the new leader finishes or reports within 15 s
BOOT_SECONDS = 180.0  # an interpreter importing the app on a busy machine
HELD_BACK_MS = 45_000  # the first leader's answers never arrive before it is killed
# Per account: two equal BUY children (freeze split 4 lots → 130 + 130, phase 0) and one SELL (phase 1).
LEGS = [Leg(CE, "BUY", lots=4, freeze_qty=130), Leg(PE, "SELL", lots=2, freeze_qty=130)]


def _lease_row() -> ServiceLease | None:
    db.session.expire_all()
    row = db.session.get(ServiceLease, DEFAULT_LEASE_NAME)
    db.session.commit()
    return row


def _leader_pid() -> int | None:
    row = _lease_row()
    if row is None or row.expires_at <= datetime.now(UTC):
        return None
    return parse_holder(row.holder)["pid"]


class Leaders:
    """`flask services` processes on the test database; all killed at teardown."""

    def __init__(self, database_url: str, encryption_key: str, tmp_path: Path):
        self.procs: list[subprocess.Popen] = []
        self.tmp_path = tmp_path
        self.base_env = {
            **os.environ, "APP_ENV": "testing", "TEST_DATABASE_URL": database_url,
            "ENCRYPTION_KEY": encryption_key, "LOG_LEVEL": "INFO",
            "EXECUTION_CLOCK_SKEW_SECONDS": str(SKEW), "EXECUTION_RECONCILE_INTERVAL_SECONDS": "0.3",
            "SERVICE_LEASE_TTL_SECONDS": str(TTL), "SERVICE_LEASE_RENEW_SECONDS": str(RENEW),
            "SERVICE_LEASE_RETRY_SECONDS": str(RETRY),
        }

    def start(self, name: str, read_timeout: float) -> subprocess.Popen:
        env = {**self.base_env, "BROKER_READ_TIMEOUT": str(read_timeout)}
        with open(self.tmp_path / f"{name}.out", "w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "services"], cwd=ROOT, env=env,
                                    stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def output(self, name: str) -> str:
        return (self.tmp_path / f"{name}.out").read_text()[-4000:]

    def leading(self, proc: subprocess.Popen, name: str):
        def check() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode}:\n{self.output(name)}")
            return _leader_pid() == proc.pid
        check.__name__ = f"{name} holds the lease"
        return check

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            proc.wait(60)


@pytest.fixture
def crash_setup(app_factory, database_url, broker, sim, apikey, tmp_path):
    key = new_fernet_key()
    app = app_factory(ENCRYPTION_KEY=key)
    extra = [sim.new_account(), sim.new_account()]
    keys = [apikey, *extra]
    clients = [OpenAlgoClient(broker.url, k) for k in keys]
    leaders = Leaders(database_url, key, tmp_path)
    with app.app_context():
        user = make_user(app, "alice")
        accounts = [add_paper_account(app, user.id, f"Paper {n}", broker.url, k) for n, k in enumerate(keys, 1)]
        try:
            yield {"user": user, "accounts": accounts, "keys": keys, "clients": clients, "leaders": leaders}
        finally:
            leaders.stop_all()
            for client in clients:
                client.close()
            for k in extra:
                sim.call("DELETE", f"/sim/accounts/{k}")


def _run(run_id: int) -> StrategyRun:
    db.session.expire_all()
    run = db.session.get(StrategyRun, run_id)
    assert run is not None
    return run


def _states(run_id: int) -> list[str]:
    return [i.state for i in intents(run_id)]


def test_kill_leader_while_sending_new_leader_reconciles_within_15s_no_duplicates(crash_setup, sim):
    s, leaders = crash_setup, crash_setup["leaders"]
    for k in s["keys"]:
        sim.set_faults(k, response_delay_ms=HELD_BACK_MS, routes=["placeorder"])
    run_id = make_run(s["user"].id, s["accounts"], LEGS)
    rows = intents(run_id)
    assert [(r.action, r.quantity, r.phase) for r in rows] == [("BUY", 130, 0), ("BUY", 130, 0), ("SELL", 130, 1)] * 3
    buy_ids = {r.id for r in rows if r.action == "BUY"}

    # The first leader claims every BUY and the broker books them; their answers are held back.
    first = leaders.start("leader-1", read_timeout=HELD_BACK_MS / 1000 + 30)
    wait_until(leaders.leading(first, "leader-1"), timeout=BOOT_SECONDS, interval=0.2)

    def buys_in_flight_and_booked() -> bool:
        sending = {i.id for i in intents(run_id) if i.state == "sending"}
        booked = [len([o for o in c.orderbook() if o.symbol == CE]) for c in s["clients"]]
        return sending == buy_ids and booked == [2, 2, 2]

    wait_until(buys_in_flight_and_booked, timeout=60, interval=0.1)
    os.kill(first.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    assert first.wait(60) == -signal.SIGKILL
    assert _states(run_id) == ["sending", "sending", "planned"] * 3  # nothing changed after the kill
    sim.call("DELETE", "/sim/faults")  # the broker answers normally again

    # The dead holder's lease frees itself: at once on PostgreSQL (its connection died), after the
    # TTL on SQLite. A probe takes and hands it back to prove it is free.
    probe = make_lease(db.engine, ttl=TTL)

    def lease_free() -> bool:
        return probe.acquire()

    try:
        wait_until(lease_free, timeout=TTL + 60, interval=0.1)
    finally:
        probe.close()
    freed_after = time.monotonic() - killed_at
    assert freed_after < TTL + 30

    second = leaders.start("leader-2", read_timeout=3.0)
    wait_until(leaders.leading(second, "leader-2"), timeout=BOOT_SECONDS, interval=0.1)
    row = _lease_row()
    assert row is not None
    acquired_at = row.acquired_at

    def run_finished() -> datetime | None:
        if second.poll() is not None:
            raise AssertionError(f"leader-2 exited with {second.returncode}:\n{leaders.output('leader-2')}")
        terminal = all(st in ("filled", "rejected", "cancelled", "not_placed") for st in _states(run_id))
        status = _run(run_id).status
        db.session.commit()
        return datetime.now(UTC) if terminal and status != "entering" else None

    finished_at = wait_until(run_finished, timeout=60, interval=0.1,
                             message=f"run not finished; states {_states(run_id)}")
    assert finished_at is not None
    recovery = (finished_at - acquired_at).total_seconds()
    logger.warning("lease free %.1f s after the kill; run finished %.1f s after leader-2 took the lease",
                   freed_after, recovery)
    assert recovery <= RECOVERY_BOUND_SECONDS, f"recovery took {recovery:.1f} s\n{leaders.output('leader-2')}"

    rows = intents(run_id)
    assert [(r.state, r.filled_quantity) for r in rows] == [("filled", 130)] * 9
    for r in rows:
        events = [e.event for e in r.events]
        if r.action == "BUY":
            assert events == ["claim", "outcome_unknown", "adopt", "fill"], (r.intent_key, events)
        else:
            assert events == ["claim", "accepted", "fill"], (r.intent_key, events)
    run = _run(run_id)
    assert run.status == "open" and run.entered_at is not None

    def checked() -> bool:  # the engine checks the position books once the run is entered
        done = all(a.position_check is not None for a in _run(run_id).accounts)
        db.session.commit()
        return done

    wait_until(checked, timeout=60, interval=0.1, message="position checks")
    run = _run(run_id)
    assert [(a.status, (a.position_check or {}).get("ok")) for a in run.accounts] == [("open", True)] * 3

    # No duplicates: each account's book holds exactly one order per intent, each linked to one intent.
    for account_id, client in zip(s["accounts"], s["clients"], strict=True):
        book = client.orderbook()
        mine = [r for r in rows if r.account_id == account_id]
        assert Counter((o.symbol, o.action, o.quantity) for o in book) == Counter(
            (r.symbol, r.action, r.quantity) for r in mine)
        linked = [r.broker_order_id for r in mine]
        assert len(set(linked)) == len(linked) == len(book)
        assert set(linked) == {o.order_id for o in book}
        assert broker_net(client, CE) == recorded_net(run_id, account_id, CE) == 260
        assert broker_net(client, PE) == recorded_net(run_id, account_id, PE) == -130
