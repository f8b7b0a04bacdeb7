"""The leader lease and the service runner: exactly one process runs the services.

Runs on SQLite (lease row) and on PostgreSQL (advisory lock) with TEST_DATABASE_URL.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import OperationalError

from app.extensions import db
from app.models.services import ServiceHeartbeat, ServiceLease
from app.services.lease import AdvisoryLease, RowLease, make_lease, parse_holder
from app.services.runner import FunctionService, ServiceRunner, register_service, start_background_runner
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parent.parent
NAME = "background-services"


@dataclass
class FakeClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def fresh(model, key):
    """The row as committed now (other threads and processes write these tables)."""
    db.session.expire_all()
    row = db.session.get(model, key)
    db.session.commit()
    return row


def lease_row() -> ServiceLease | None:
    return fresh(ServiceLease, NAME)


def heartbeat(service: str) -> ServiceHeartbeat | None:
    return fresh(ServiceHeartbeat, service)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 25, 4, 0, tzinfo=UTC))


@pytest.fixture
def make_leases(app, clock):
    """make_leases(cls, "a", "b") -> leases of that class on the test database, closed afterwards."""
    leases: list = []

    def make(cls, *holders: str):
        leases.extend(cls(db.engine, holder=holder, ttl=10, clock=clock) for holder in holders)
        return leases[-len(holders):] if len(holders) > 1 else leases[-1]

    yield make
    for lease in leases:
        lease.close()


@pytest.fixture
def row_lease(make_leases):
    return lambda *holders: make_leases(RowLease, *holders)


# --- the row lease, with a fake clock ---


def test_acquire_on_empty_table_inserts_row_with_generation_1(row_lease, clock):
    a = row_lease("host-a:1:aaaa")
    assert a.acquire() is True
    row = lease_row()
    assert (row.holder, row.generation) == ("host-a:1:aaaa", 1)
    assert row.expires_at == clock.now + timedelta(seconds=10) and a.is_valid()


def test_acquire_refused_while_another_holder_is_valid(row_lease, clock):
    a, b = row_lease("a", "b")
    assert a.acquire()
    clock.advance(9.9)
    assert b.acquire() is False and not b.is_valid()
    assert lease_row().holder == "a"


def test_renew_extends_expiry_and_keeps_generation(row_lease, clock):
    a, b = row_lease("a", "b")
    a.acquire()
    clock.advance(3)
    assert a.renew() is True
    clock.advance(9)  # 12 s after acquiring, 9 s after renewing
    assert a.is_valid() and b.acquire() is False
    row = lease_row()
    assert row.expires_at == clock.now + timedelta(seconds=1) and row.generation == 1


def test_lease_expires_locally_without_renewal(row_lease, clock):
    a = row_lease("a")
    a.acquire()
    clock.advance(10)
    assert a.is_valid() is False


def test_steal_after_expiry_bumps_generation_and_old_holder_loses(row_lease, clock):
    a, b = row_lease("a", "b")
    a.acquire()
    clock.advance(10.001)
    assert b.acquire() is True
    row = lease_row()
    assert (row.holder, row.generation, row.acquired_at) == ("b", 2, clock.now)
    assert a.renew() is False and a.is_valid() is False and a.generation is None
    assert a.acquire() is False


def test_expired_but_untaken_lease_renews_with_same_generation(row_lease, clock):
    a = row_lease("a")
    a.acquire()
    clock.advance(15)
    assert a.renew() is True and a.is_valid()
    assert lease_row().generation == 1


def test_reacquire_own_lease_keeps_generation_and_acquired_at(row_lease, clock):
    a = row_lease("a")
    a.acquire()
    first = clock.now
    clock.advance(2)
    assert a.acquire() is True
    row = lease_row()
    assert row.generation == 1 and row.acquired_at == first


def test_release_lets_another_acquire_at_once(row_lease, clock):
    a, b = row_lease("a", "b")
    a.acquire()
    a.release()
    assert not a.is_valid()
    assert b.acquire() is True and lease_row().generation == 2


def test_insert_race_loser_gets_false(row_lease, clock):
    a, b = row_lease("a", "b")
    assert a.acquire()
    # b saw no row, then a inserted first: b's INSERT hits the primary key and b does not lead.
    assert b._insert_row(clock.now) is False
    assert lease_row().holder == "a"


# --- the advisory lock (PostgreSQL) ---


@pytest.fixture
def advisory(make_leases):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only (TEST_DATABASE_URL)")
    return lambda *holders: make_leases(AdvisoryLease, *holders)


def test_advisory_lock_one_holder_and_row_kept_current(advisory):
    a, b = advisory("a", "b")
    assert isinstance(make_lease(db.engine), AdvisoryLease)
    assert a.acquire() is True and b.acquire() is False
    assert a.acquire() is True  # re-entrant call does not stack a second lock
    assert a.renew() is True
    assert lease_row().holder == "a"
    a.release()
    assert b.acquire() is True
    row = lease_row()
    assert (row.holder, row.generation) == ("b", 2)


def test_advisory_lock_lost_when_connection_drops(advisory):
    a, b = advisory("a", "b")
    a.acquire()
    pid = a._conn.execute(text("SELECT pg_backend_pid()")).scalar()
    with db.engine.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    assert wait_until(lambda: b.acquire())
    assert a.renew() is False and a.is_valid() is False


# --- the runner, in process ---


class Runners(list):
    def start(self, app, **options) -> ServiceRunner:
        options = {"ttl": 3, "renew_interval": 0.5, "retry_interval": 0.2, **options}
        if "lease" in options:
            options.pop("ttl")
        runner = ServiceRunner(app, **options)
        self.append(runner)
        runner.start()
        return runner


@pytest.fixture
def runners(app):
    started = Runners()
    yield started
    for runner in started:
        runner.stop(timeout=15)


class CountingLease(RowLease):
    """A row lease that counts its acquire() calls: a runner that is not leading retries, and a
    test waits for a number of retries instead of sleeping for a fixed time."""

    attempts = 0

    def acquire(self) -> bool:
        self.attempts += 1
        return super().acquire()


def counting_service(name: str, counts: dict, *, fail: bool = False, starts: list | None = None, **kwargs):
    def work():
        if starts is not None:
            starts.append(datetime.now(UTC))
        counts[name] = counts.get(name, 0) + 1
        if fail:
            raise ValueError("boom")
        return f"iteration {counts[name]}"

    return lambda: FunctionService(name, work, interval=kwargs.pop("interval", 0.05), **kwargs)


def test_runner_runs_services_and_one_failure_does_not_stop_others(app, runners):
    counts: dict = {}
    register_service(app, counting_service("good", counts))
    register_service(app, counting_service("bad", counts, fail=True))
    runner = runners.start(app)
    wait_until(lambda: counts.get("good", 0) >= 5 and counts.get("bad", 0) >= 5)
    assert runner.is_leader
    good, bad = wait_until(lambda: (heartbeat("good"), heartbeat("bad")) if heartbeat("bad") else None)
    assert good.status == "ok" and good.holder == runner.holder and good.details.startswith("iteration")
    assert bad.status == "error" and "ValueError: boom" in bad.last_error
    assert lease_row().holder == runner.holder


def test_runner_only_one_of_two_leads(app, runners):
    counts: dict = {}
    register_service(app, counting_service("probe", counts))
    first = runners.start(app)
    wait_until(lambda: first.is_leader)
    second_lease = CountingLease(db.engine, ttl=3)
    second = runners.start(app, lease=second_lease)
    wait_until(lambda: second_lease.attempts >= 5)  # it kept trying (every 0.2 s) and never won
    assert first.is_leader and not second.is_leader and second.terms == 0


def test_runner_stops_services_when_lease_is_taken(app, runners):
    counts: dict = {}
    register_service(app, counting_service("probe", counts))
    lease = CountingLease(db.engine, ttl=3)
    runner = runners.start(app, lease=lease, renew_interval=0.3)
    wait_until(lambda: counts.get("probe", 0) >= 3)
    db.session.execute(update(ServiceLease).where(ServiceLease.name == NAME).values(
        holder="thief:1:x", generation=ServiceLease.generation + 1,
        expires_at=datetime.now(UTC) + timedelta(minutes=5)))
    db.session.commit()
    wait_until(lambda: not runner.is_leader)
    assert wait_until(lambda: heartbeat("probe").status == "stopped")
    wait_until(lambda: not any(t.is_alive() for t in runner._threads))
    stopped_at, retried_from = counts["probe"], lease.attempts
    wait_until(lambda: lease.attempts >= retried_from + 3)  # it keeps asking for the lease, in vain
    assert counts["probe"] == stopped_at and not runner.is_leader


class FlakyLease(CountingLease):
    """A row lease whose database calls start failing on demand (e.g. the database is down)."""

    failing = False

    def acquire(self) -> bool:
        self.attempts += 1
        return self._fail() or RowLease.acquire(self)

    def renew(self) -> bool:
        return self._fail() or super().renew()

    def _fail(self) -> bool:
        if self.failing:
            raise OperationalError("UPDATE service_leases", {}, Exception("database is locked"))
        return False


def test_runner_stops_services_when_renewal_keeps_failing_past_deadline(app, runners):
    counts: dict = {}
    starts: list[datetime] = []
    register_service(app, counting_service("probe", counts, starts=starts))
    lease = FlakyLease(db.engine, ttl=1.0)
    runner = runners.start(app, lease=lease, renew_interval=0.3)
    wait_until(lambda: counts.get("probe", 0) >= 3)
    lease.failing = True
    # The last deadline a successful renewal can have set: the lease is valid at most ttl after now.
    deadline = datetime.now(UTC) + lease.ttl
    wait_until(lambda: not runner.is_leader and runner._term is None)
    wait_until(lambda: not any(t.is_alive() for t in runner._threads))
    # Services check the lease before every iteration: none starts after its deadline (a loaded
    # machine may delay the start of the last one slightly; it never lets them run on).
    assert starts and max(starts) <= deadline + timedelta(seconds=2)
    stopped_at, retried_from = counts["probe"], lease.attempts
    wait_until(lambda: lease.attempts >= retried_from + 3)
    assert counts["probe"] == stopped_at


def test_runner_market_hours_service_idles_on_saturday(app, runners):
    counts: dict = {}
    register_service(app, counting_service("monitor", counts, market_hours_only=True))
    saturday = FakeClock(datetime(2026, 11, 28, 5, 0, tzinfo=UTC))
    runners.start(app, lease=RowLease(db.engine, ttl=3, clock=saturday), clock=saturday)
    assert wait_until(lambda: heartbeat("monitor")).status == "idle"
    assert counts.get("monitor", 0) == 0
    saturday.now = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)  # Wednesday 09:30 IST
    wait_until(lambda: counts.get("monitor", 0) >= 1)
    assert wait_until(lambda: heartbeat("monitor").status == "ok")


def test_start_background_runner_respects_config(app_factory, runners):
    assert start_background_runner(app_factory()) is None  # testing: off
    assert start_background_runner(app_factory(BACKGROUND_SERVICES="auto")) is None  # auto never in tests
    dev = app_factory(BACKGROUND_SERVICES="auto", ENV_NAME="development", TESTING=False)
    with click.Context(click.Command("db"), info_name="db"):
        assert start_background_runner(dev) is None  # a CLI command such as `flask db upgrade`
    with click.Context(click.Command("run"), info_name="run"):
        runner = start_background_runner(dev, ttl=3, renew_interval=0.5, retry_interval=0.2)
    runners.append(runner)
    assert runner is not None and start_background_runner(dev) is runner
    forced = app_factory(BACKGROUND_SERVICES="on")
    runner_on = start_background_runner(forced, ttl=3, renew_interval=0.5, retry_interval=0.2)
    runners.append(runner_on)
    assert runner_on is not None and runner_on is not runner


def test_runner_rejects_renew_interval_too_close_to_ttl(app):
    with pytest.raises(ValueError):
        ServiceRunner(app, lease=RowLease(db.engine, ttl=3), renew_interval=2)


def test_flask_services_command_runs_until_sigterm_and_releases(app):
    from app.cli_services import services_command

    if "services" not in app.cli.commands:
        app.cli.add_command(services_command)
    counts: dict = {}
    register_service(app, counting_service("probe", counts))

    def stop_when_running():
        wait_until(lambda: counts.get("probe", 0) >= 3)
        os.kill(os.getpid(), signal.SIGTERM)

    helper = threading.Thread(target=stop_when_running, daemon=True)
    previous = signal.getsignal(signal.SIGTERM)
    helper.start()
    result = app.test_cli_runner().invoke(args=["services", "--ttl", "3", "--renew", "0.5", "--retry", "0.2"])
    helper.join(60)
    assert result.exit_code == 0, result.output
    assert "Background services stopped." in result.output
    assert signal.getsignal(signal.SIGTERM) is previous
    assert lease_row().expires_at <= datetime.now(UTC)  # released, not left to expire


# --- three OS processes ---

# A lease long enough that a leader on a loaded machine never misses renewing it (it renews every
# second and loses it only after TTL seconds without a successful renewal), short enough that the
# takeover after a SIGKILL stays quick.
TTL, RENEW, RETRY = 8.0, 1.0, 0.5
BOOT_SECONDS = 240.0  # three interpreters starting at once on a busy machine

CHILD = f"""
import os, signal, sys, threading, time
from app import create_app
from app.services.runner import FunctionService, register_service, run_until

url, log_path, ready_path = sys.argv[1], sys.argv[2], sys.argv[3]
app = create_app("testing", {{"SQLALCHEMY_DATABASE_URI": url, "LOG_LEVEL": "WARNING"}})

def work():
    start = time.time()
    time.sleep(0.05)
    with open(log_path, "a") as handle:
        handle.write(f"{{os.getpid()}} {{start:.6f}} {{time.time():.6f}}\\n")

register_service(app, lambda: FunctionService("probe", work, interval=0.05))
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
with open(ready_path, "a") as handle:
    handle.write(f"{{os.getpid()}}\\n")
run_until(app, stop, ttl={TTL}, renew_interval={RENEW}, retry_interval={RETRY})
"""


@pytest.fixture
def children(app, database_url, tmp_path):
    procs: list[subprocess.Popen] = []
    log, ready = tmp_path / "runs.log", tmp_path / "ready.log"
    log.touch()
    ready.touch()

    def spawn(count: int) -> list[subprocess.Popen]:
        for i in range(count):
            out = open(tmp_path / f"child-{i}.out", "w")
            procs.append(subprocess.Popen([sys.executable, "-c", CHILD, database_url, str(log), str(ready)],
                                          cwd=ROOT, stdout=out, stderr=subprocess.STDOUT))
            out.close()
        return procs

    def all_ready() -> bool:
        for i, proc in enumerate(procs):
            if proc.poll() is not None:
                output = (tmp_path / f"child-{i}.out").read_text()[-3000:]
                raise AssertionError(f"child {proc.pid} exited with {proc.returncode} before it was ready:\n{output}")
        return len(set(ready.read_text().split())) == len(procs)

    yield spawn, log, all_ready
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
    for proc in procs:
        proc.wait(60)


def read_runs(log: Path) -> list[tuple[int, float, float]]:
    """(pid, start, end) of every finished iteration, by start time."""
    runs = [(int(pid), float(start), float(end)) for pid, start, end in map(str.split, log.read_text().splitlines())]
    return sorted(runs, key=lambda r: r[1])


def assert_never_concurrent(runs) -> None:
    for (pid_a, _, end_a), (pid_b, start_b, _) in itertools.pairwise(runs):
        if pid_a != pid_b:
            assert end_a <= start_b, f"{pid_a} and {pid_b} ran at the same time"
    order = [pid for pid, _, _ in runs]
    switches = [b for a, b in itertools.pairwise(order) if a != b]
    assert len(switches) == len(set(order)) - 1, "leadership went back and forth"


def pids_since(log: Path, moment: float) -> set[int]:
    return {pid for pid, start, _ in read_runs(log) if start >= moment}


def runs_since(log: Path, moment: float) -> int:
    return sum(1 for _pid, start, _ in read_runs(log) if start >= moment)


def test_three_processes_exactly_one_runs_and_another_takes_over(app, children):
    spawn, log, all_ready = children
    procs = {p.pid: p for p in spawn(3)}

    # Every process is up and competing for the lease before anything is judged.
    wait_until(all_ready, timeout=BOOT_SECONDS, interval=0.2)
    all_up = time.time()
    leader = wait_until(lambda: next(iter(pids_since(log, 0)), None))
    # While all three run: 40 iterations (several renewals and many refused acquisitions) by one.
    wait_until(lambda: runs_since(log, all_up) >= 40)
    assert pids_since(log, 0) == {leader}
    assert parse_holder(lease_row().holder)["pid"] == leader
    assert all(p.poll() is None for p in procs.values())

    killed_at = time.time()
    procs[leader].send_signal(signal.SIGKILL)
    procs[leader].wait(60)
    # The successor takes over once the dead leader's lease expires (TTL), plus one retry.
    successor = wait_until(lambda: next(iter(pids_since(log, killed_at)), None), timeout=TTL + RETRY + 60)
    assert successor != leader
    wait_until(lambda: runs_since(log, killed_at) >= 20)
    assert pids_since(log, killed_at) == {successor}
    assert wait_until(lambda: heartbeat("probe").holder == lease_row().holder)

    # A clean stop releases the lease: the third takes it without waiting for it to expire.
    stopped_at = time.time()
    procs[successor].send_signal(signal.SIGTERM)
    assert procs[successor].wait(60) == 0
    (third,) = set(procs) - {leader, successor}
    row = lease_row()
    assert parse_holder(row.holder)["pid"] == third or row.expires_at <= datetime.now(UTC)
    assert wait_until(lambda: third in pids_since(log, stopped_at))

    runs = read_runs(log)
    assert_never_concurrent(runs)
    assert {pid for pid, _, _ in runs} == {leader, successor, third}
    assert max(end for pid, _, end in runs if pid == leader) <= killed_at
