"""The order engine: the leader's one service that sends and tracks every order intent.

One pass (run_once): recovery (first pass of a term) → send ready closes (a breach's exit does not
wait for the steps) → killswitch.step_all → exits.step_all → send ready intents → track accepted
ones → reconcile unknown ones → entry policies and roll-ups.
Sending: the pass claims every ready intent in one transaction (lifecycle.claim_many, committed
before any request), then each order is placed by a job in a thread pool (accounts in parallel,
same-phase intents of an account concurrently; the client's limiter paces each account) that
touches no database; the answers go to one recorder thread, which applies whatever has arrived in
one transaction (sender.record_many) and wakes the pass. Orders still open at the broker are
tracked by jobs the pass schedules, soon after the answer and then less and less often. The pass
itself only schedules, so a slow account never holds others.
Everything is derived from the database, so a new leader continues where the old one stopped.
"""

from __future__ import annotations

import importlib
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import and_, case, func, or_, select, update

from app.broker.errors import HostNotAllowed
from app.domain.execution_policy import blocked, ready_phase, reconcile_reads
from app.domain.order_lifecycle import AT_BROKER, TERMINAL, IllegalTransition, IntentEvent, IntentState
from app.extensions import db
from app.models import TradingAccount
from app.models.execution import OrderIntent, Purpose, RunAccount, RunAccountStatus, RunStatus, StrategyRun
from app.models.types import utcnow
from app.services.execution import policy, reconciliation, sender, tracker
from app.services.execution.halt import current_halt
from app.services.execution.lifecycle import StaleIntent, apply, claim_many
from app.services.execution.order_updates import OrderUpdates
from app.services.execution.position_reads import PositionReads
from app.services.execution.wakeup import EngineWaker, wake_engine
from app.services.runner import Service

logger = logging.getLogger(__name__)

TRACK_INTERVAL_MAX = 1.0
RECORDER_IDLE_SECONDS = 5.0  # the recorder thread ends after this long without answers (restarted on demand)
POLICY_INTERVAL = 0.25
POLICY_SWEEP_SECONDS = 2.0
MIN_PASS_SECONDS = 0.005
CHECK_RETRY_SECONDS = 10.0
STUCK_CHECK_SECONDS = 1.0
RECORD_TRIES = 5  # an answer the database refused is recorded again this many times, …
RECORD_RETRY_SECONDS = 0.5  # … this far apart
# Entered (or failed) accounts, and those closed since: a check after a quick close finds them flat.
CHECKED_STATUSES = (RunAccountStatus.OPEN, RunAccountStatus.PARTIAL, RunAccountStatus.FAILED,
                    RunAccountStatus.UNWINDING, RunAccountStatus.CLOSING, RunAccountStatus.CLOSED)


def group_key(intent: Any) -> tuple[Any, ...]:
    """The group whose phases order an intent: a run account's entries, one exit request's closes of
    a run account, or one kill switch's orders on an account (`intent`: an OrderIntent, or a row of
    its _GATE_COLUMNS)."""
    if intent.kill_switch_id is not None and intent.run_account_id is None:
        return ("kill", intent.kill_switch_id, intent.account_id)
    if intent.purpose == Purpose.ENTRY:
        return ("entry", intent.run_account_id, intent.account_id)
    # One exit request's (or kill switch's) closes of a run account are one group whatever their
    # round: its legs may be on different rounds (a short whose closes failed in an earlier
    # request is on round 4 while the longs are on round 1), and the longs must still wait for
    # the shorts. An earlier round of a leg is history once a later one exists (latest_rounds).
    return ("close", intent.run_account_id, intent.exit_request_id, intent.kill_switch_id, intent.account_id)


def latest_rounds(intents: list[Any]) -> list[Any]:
    """A close group's intents without the earlier rounds of each leg (planned only after the
    earlier round ended, so they are never held back by its failed phase)."""
    last: dict[Any, int] = {}
    for intent in intents:
        last[intent.leg_number] = max(last.get(intent.leg_number, 0), intent.attempt)
    return [i for i in intents if i.attempt == last[i.leg_number]]


def _optional_step(module: str) -> Callable[..., Any] | None:
    try:
        return getattr(importlib.import_module(module), "step_all", None)
    except ImportError:
        return None


class ExecutionEngine(Service):
    """Sends, tracks and reconciles order intents; applies entry policies (see module doc)."""

    name = "execution"
    interval = 0.0

    def __init__(self, app: Flask | None = None, *, holder: str | None = None):
        self.app = app or current_app._get_current_object()  # type: ignore[attr-defined]
        self.holder = holder or f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        cfg = self.app.config
        self.poll = float(cfg.get("EXECUTION_STATUS_POLL_SECONDS", 0.1))
        self.read_interval = float(cfg.get("EXECUTION_RECONCILE_INTERVAL_SECONDS", 1.0))
        self.reads = reconcile_reads(int(cfg.get("EXECUTION_RECONCILE_READS", 3)), self.read_interval,
                                     float(cfg.get("BROKER_READ_TIMEOUT", 10.0)))
        self.pool = ThreadPoolExecutor(max_workers=int(cfg.get("EXECUTION_MAX_WORKERS", 128)),
                                       thread_name_prefix="execution")
        self._inflight: set[str] = set()
        self._lock = threading.Lock()
        self._next_track: dict[int, float] = {}
        self._track_delay: dict[int, float] = {}
        self._answers: queue.SimpleQueue[sender.Outcome] = queue.SimpleQueue()
        self.position_reads = PositionReads(self._submit)  # the exit manager's books, read in the pool
        self._recorder: threading.Thread | None = None
        self._record_tries: dict[int, int] = {}
        self._unanswered: set[int] = set()  # claimed here, answer not yet recorded (job running or queued)
        self._next_stuck_check = 0.0
        self._stopping = False
        self._next_check: dict[int, float] = {}
        self._recovered = False
        self._next_policies = 0.0
        self._next_sweep = 0.0
        self._policies_since: datetime | None = None
        self._stepped: dict[int, tuple[int, Any]] = {}  # run account → ends signature when last stepped
        self._stepped_at: dict[int, float] = {}  # run account → when last stepped (or first seen entering)
        self._waker: EngineWaker | None = None
        # Each account's order-update stream: the first status of an order without a status read.
        self.updates = OrderUpdates(wait_seconds=float(cfg.get("EXECUTION_ORDER_UPDATE_WAIT_SECONDS", 0.25)),
                                    idle_seconds=float(cfg.get("EXECUTION_ORDER_FEED_IDLE_SECONDS", 1800.0))) \
            if cfg.get("EXECUTION_ORDER_UPDATES", True) else None
        self._next_idle_close = 0.0

    # -- the Service hooks --
    def on_start(self) -> None:
        """Recovery first (invariant 8): in-doubt intents are reconciled before anything is sent."""
        self.recover()

    def on_stop(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=False)
        with self._lock:
            self._stopping = True
            recorder = self._recorder
        if recorder is not None:
            recorder.join()  # it records every answer the jobs above left, then ends
        if self._waker is not None:
            self._waker.close()
        if self.updates is not None:
            self.updates.close()

    def run_once(self) -> str | None:
        started = time.monotonic()
        summary = self.run_pass()
        if self._waker is None:
            self._waker = EngineWaker.for_app(self.app)
        # Jobs finishing together each wake the engine: passes at most every MIN_PASS_SECONDS, so a
        # burst of 200 acknowledgements costs a few passes, not 200 (each pass reads the planned set).
        now = time.monotonic()
        rest = MIN_PASS_SECONDS - (now - started)
        if rest > 0:
            time.sleep(rest)
        with self._lock:
            next_track = min(self._next_track.values(), default=now + 0.5)
        self._waker.wait(min(0.5, max(0.0, next_track - time.monotonic())))
        return summary

    # -- one pass --
    def recover(self) -> int:
        """SENDING intents (their sender died mid-request) become UNKNOWN; reconciliation follows."""
        count = 0
        for intent in db.session.scalars(select(OrderIntent).where(OrderIntent.state == IntentState.SENDING.value)):
            try:
                apply(intent, IntentEvent.OUTCOME_UNKNOWN, detail=f"found sending at leader start ({self.holder})")
                count += 1
            except (StaleIntent, IllegalTransition):
                db.session.rollback()
        db.session.commit()
        self._recovered = True
        if count:
            logger.warning("Engine recovery: %d intents were in flight; reconciling them", count)
        return count

    def run_pass(self) -> str:
        """One pass over the database; schedules broker work in the pool and returns a summary."""
        if not self._recovered:
            self.recover()
        sent = self._schedule_sends(closes_only=True)  # never an entry: a step may withdraw those
        for module in ("app.services.execution.killswitch", "app.services.execution.exits"):
            step = _optional_step(module)
            if step is not None and self.still_leading():
                try:
                    step(self)
                except Exception:
                    db.session.rollback()
                    logger.exception("%s.step_all failed", module)
        sent += self._schedule_sends()
        tracked = self._schedule_tracks()
        self._unstick()
        reconciling = self._schedule_reconciles()
        now = time.monotonic()
        if now >= self._next_policies and (not sent or now >= self._next_policies + POLICY_INTERVAL):
            # Policies and roll-ups react to finished intents; sending does not wait for them (the
            # phase gate above decides), so they run at most every POLICY_INTERVAL seconds, and not
            # in a pass that has just sent (unless a whole interval late): the answers to those
            # orders wake the next pass, which may send their next phase (an exit's longs after
            # its shorts filled), and the step would hold it up by 10-60 ms on a busy machine.
            self._next_policies = now + POLICY_INTERVAL
            self._step_policies()
            self._schedule_position_checks()
        if self.updates is not None and time.monotonic() >= self._next_idle_close:
            self._next_idle_close = time.monotonic() + 60.0
            self.updates.close_idle()
        db.session.commit()
        return f"sent {sent}, tracking {tracked}, reconciling {reconciling}"

    def _schedule_sends(self, *, closes_only: bool = False) -> int:
        # Plain rows of the columns the phase gate reads, not ORM objects: this runs on every pass
        # (many per second while a run is entered) and loading hundreds of objects was its cost.
        query = select(*_GATE_COLUMNS).where(OrderIntent.state == IntentState.PLANNED.value)
        planned = db.session.execute(query.where(OrderIntent.purpose != Purpose.ENTRY) if closes_only else query).all()
        if not planned:
            return 0
        groups: dict[tuple[Any, ...], list[Any]] = {group_key(i): [] for i in planned}
        run_accounts = {k[1] for k in groups if k[0] != "kill"}
        kills = {k[1] for k in groups if k[0] == "kill"}
        rows = db.session.execute(select(*_GATE_COLUMNS).where(or_(
            OrderIntent.run_account_id.in_(run_accounts),
            and_(OrderIntent.kill_switch_id.in_(kills), OrderIntent.run_account_id.is_(None))))).all()
        for intent in rows:
            key = group_key(intent)
            if key in groups:
                groups[key].append(intent)
        ready: list[int] = []
        entering: set[int] = set()
        halt = current_halt() if any(k[0] == "entry" for k in groups) else None
        for key, intents in groups.items():
            if halt is not None and key[0] == "entry":
                # Halted since these were planned (or a retry, resend or MARKET fallback planned
                # them since): no entry order goes out; what filled stays and is reported.
                policy.withdraw_planned(_objects(intents), f"withdrawn: trading halted by {halt.set_by}: "
                                                           f"{halt.reason}")
                continue
            if key[0] == "close":
                intents = latest_rounds(intents)
            views = [policy.view(i) for i in intents]
            if blocked(views):
                if key[0] != "entry":
                    # A close whose shorts did not all close must not leave its longs planned for
                    # ever: withdraw them; the exit manager's next round re-reads the position book
                    # and plans again (the entry policies handle entry groups).
                    policy.withdraw_planned(_objects(intents), "withdrawn: a lower phase of this close failed")
                continue
            phase = ready_phase(views)
            if phase is None:
                continue
            superseded = policy.superseded_ids(intents)
            for intent in intents:
                if intent.state == IntentState.PLANNED.value and intent.phase == phase and intent.id not in superseded:
                    ready.append(intent.id)
                    if key[0] == "entry":
                        entering.add(key[1])
        count = self._send(ready)
        if entering:
            # Their first orders are going out: the run accounts are entering (the policy step no
            # longer needs to visit every planned account to notice).
            db.session.execute(update(RunAccount).where(
                RunAccount.id.in_(entering), RunAccount.status == RunAccountStatus.PLANNED)
                .values(status=RunAccountStatus.ENTERING).execution_options(synchronize_session=False))
            db.session.commit()
        return count

    def _send(self, intent_ids: list[int]) -> int:
        """Claim the intents in one transaction and place each claimed one's order in a job."""
        if not intent_ids or not self.still_leading():
            return 0
        # The clients first (no side effect): nothing can fail between the claim and the jobs.
        account_ids = set(db.session.scalars(select(OrderIntent.account_id).where(OrderIntent.id.in_(intent_ids))))
        accounts = {a.id: a for a in db.session.scalars(select(TradingAccount).where(
            TradingAccount.id.in_(account_ids)))}
        clients = {account_id: sender.client_or_refusal(accounts.get(account_id)) for account_id in account_ids}
        db.session.commit()
        if self.updates is not None:
            for account_id, (client, refused) in clients.items():
                if client is not None and refused is None:
                    self.updates.ensure(account_id, client)
                else:  # deleted, or its host no longer allowed: no socket stays open to it
                    self.updates.forget(account_id)
        claimed = claim_many(intent_ids, self.holder)
        with self._lock:
            self._unanswered.update(row.id for row in claimed)
        for row in claimed:
            client, refused = clients.get(row.account_id, (None, HostNotAllowed("the account no longer exists")))
            if not self._submit(f"send:{row.id}", self._send_job, row, client, refused, wake=False):
                with self._lock:  # no job will answer for it: _unstick reconciles it
                    self._unanswered.discard(row.id)
        return len(claimed)

    def _unstick(self) -> int:
        """An intent this engine claimed whose answer was never recorded (the recorder's transaction
        failed, a job died) would stay SENDING for the whole term: it becomes UNKNOWN, and
        reconciliation finds its order in the book or decides it was not placed."""
        if time.monotonic() < self._next_stuck_check:
            return 0
        self._next_stuck_check = time.monotonic() + STUCK_CHECK_SECONDS
        ids = list(db.session.scalars(select(OrderIntent.id).where(
            OrderIntent.state == IntentState.SENDING.value, OrderIntent.claimed_by == self.holder)))
        with self._lock:
            stuck = [i for i in ids if i not in self._unanswered]
        count = 0
        for intent in db.session.scalars(select(OrderIntent).where(OrderIntent.id.in_(stuck))) if stuck else []:
            try:
                apply(intent, IntentEvent.OUTCOME_UNKNOWN, detail="no answer was recorded for this send",
                      note="no answer was recorded for this send; reconciling")
                count += 1
            except (StaleIntent, IllegalTransition):  # recorded meanwhile
                db.session.rollback()
        db.session.commit()
        if count:
            logger.warning("Engine: %d sent intents had no recorded answer; reconciling them", count)
        return count

    def _schedule_tracks(self) -> int:
        now = time.monotonic()
        count = 0
        states = [s.value for s in AT_BROKER]
        ids = list(db.session.scalars(select(OrderIntent.id).where(OrderIntent.state.in_(states))))
        with self._lock:
            # Forget intents that left the broker's hands: run_once sleeps until the next track is
            # due, and a stale past-due entry would make the engine pass without pause.
            # (Only past-due ones: an intent recorded after the query above keeps its entry.)
            live = set(ids)
            self._next_track = {k: v for k, v in self._next_track.items() if k in live or v > now}
            self._track_delay = {k: v for k, v in self._track_delay.items() if k in self._next_track}
            due = [i for i in ids if self._next_track.get(i, 0.0) <= now]
            for intent_id in due:
                # Soon after the answer (track_soon), then less and less often, at least once a second.
                delay = min(self._track_delay.get(intent_id, TRACK_INTERVAL_MAX / 1.5) * 1.5, TRACK_INTERVAL_MAX)
                self._track_delay[intent_id] = delay
                self._next_track[intent_id] = now + delay
        for intent_id in due:
            count += self._submit(f"track:{intent_id}", self._track_job, intent_id, keep_loaded=True)
        return count

    def _track_soon(self, intent_id: int) -> None:
        with self._lock:
            self._next_track[intent_id] = time.monotonic() + self.poll
            self._track_delay[intent_id] = self.poll / 1.5

    def _schedule_reconciles(self) -> int:
        accounts = set(db.session.scalars(select(OrderIntent.account_id).where(
            OrderIntent.state == IntentState.UNKNOWN.value)))
        return sum(self._submit(f"recon:{a}", self._reconcile_job, a) for a in accounts)

    def _step_policies(self) -> None:
        # Only the run accounts whose intents changed since the last step (plus one with a resting
        # LIMIT entry, whose timeout is a matter of time), and every entering account once per
        # POLICY_SWEEP_SECONDS as the safety net: a step reads all of an account's intents.
        started = utcnow()
        ended = [s.value for s in TERMINAL]
        at_broker = [s.value for s in AT_BROKER]
        query = select(RunAccount.id).join(StrategyRun).where(
            RunAccount.status.in_(policy.ACTIVE), StrategyRun.status == RunStatus.ENTERING)
        sweep = self._policies_since is None or time.monotonic() >= self._next_sweep
        if not sweep and self._policies_since is not None:
            # Policies act on ends (a failure, the group complete) and on resting LIMIT orders; an
            # intent merely moving along (sending, accepted, filled in parts) gives them nothing to do.
            since = self._policies_since - timedelta(seconds=1)
            changed = select(OrderIntent.run_account_id).where(
                OrderIntent.run_account_id.is_not(None),
                or_(and_(OrderIntent.updated_at >= since, OrderIntent.state.in_(ended)),
                    and_(OrderIntent.price_type == "LIMIT", OrderIntent.state.in_(at_broker))))
            query = query.where(RunAccount.id.in_(changed))
        else:
            self._next_sweep = time.monotonic() + POLICY_SWEEP_SECONDS
        self._policies_since = started
        ids = list(db.session.scalars(query))
        # What a step would see of each account's entry ends: (how many ended, the last change). An
        # account is stepped again only when that moved (or it has a resting LIMIT, or on the
        # sweep): the look-back window above overlaps passes, and must not step an account 4 times.
        # A move gives a step something to do only when an entry ended unfilled (a policy decides)
        # or every entry ended (the roll-up); fills half-way through the group do not.
        entries = (OrderIntent.run_account_id.in_(ids), OrderIntent.purpose == Purpose.ENTRY)
        ends = {row[0]: row[1:] for row in db.session.execute(
            select(OrderIntent.run_account_id, func.count(), func.max(OrderIntent.updated_at),
                   func.sum(case((OrderIntent.state != IntentState.FILLED.value, 1), else_=0)))
            .where(*entries, OrderIntent.state.in_(ended))
            .group_by(OrderIntent.run_account_id))} if ids else {}
        totals = dict(db.session.execute(select(OrderIntent.run_account_id, func.count()).where(*entries)
                                         .group_by(OrderIntent.run_account_id)).all()) if ids else {}
        resting = set(db.session.scalars(select(OrderIntent.run_account_id).where(
            OrderIntent.run_account_id.in_(ids), OrderIntent.price_type == "LIMIT",
            OrderIntent.state.in_(at_broker)))) if ids else set()
        db.session.commit()
        now = time.monotonic()
        if sweep:
            active = set(ids)
            self._stepped = {k: v for k, v in self._stepped.items() if k in active}
            self._stepped_at = {k: v for k, v in self._stepped_at.items() if k in active}
        # Every entry filled (the common case): rolled up here, together, instead of a step each.
        filled = [i for i in ids if i not in resting and totals.get(i) and ends.get(i, (0, None, 1))[0] == totals[i]
                  and not ends[i][2] and not self._busy(f"policy:{i}")]
        rolled = policy.roll_up_filled(filled)
        if sweep:
            policy.roll_up_entered_runs()
        for run_account_id in ids:
            if run_account_id in rolled:
                continue
            count, last_change, unfilled = ends.get(run_account_id, (0, None, 0))
            signature = (count, last_change) if count else None
            # The sweep steps an account not stepped for POLICY_SWEEP_SECONDS (or since it was first
            # seen entering), not one the changes above have just stepped.
            last_stepped = self._stepped_at.setdefault(run_account_id, now)
            # (POLICY_INTERVAL less: a step a little after one sweep is not skipped by the next.)
            swept = sweep and now - last_stepped >= POLICY_SWEEP_SECONDS - POLICY_INTERVAL
            if not swept and run_account_id not in resting:
                if signature is None or self._stepped.get(run_account_id) == signature:
                    continue
                if not unfilled and count < totals.get(run_account_id, 0):
                    continue  # filled so far, more to come: nothing for a policy or the roll-up
            # In the pool, like every broker call: a step may cancel a LIMIT or read the position book,
            # and one slow account must never hold the pass (and so every other account) up.
            if self._submit(f"policy:{run_account_id}", policy.step_account, run_account_id):
                self._stepped_at[run_account_id] = now
                if signature:
                    self._stepped[run_account_id] = signature

    def _schedule_position_checks(self) -> int:
        """Compare each entered account's position book with its intents (reconciliation.position_check)
        once its run has left entering and nothing of the account is in flight; a check that could not
        run (an exception, not a broker error: those are stored) is tried again after a pause."""
        unfinished = select(OrderIntent.id).where(OrderIntent.run_account_id == RunAccount.id,
                                                  OrderIntent.state.not_in([s.value for s in TERMINAL]))
        ids = list(db.session.scalars(select(RunAccount.id).join(StrategyRun).where(
            RunAccount.position_check.is_(None), RunAccount.status.in_(CHECKED_STATUSES),
            StrategyRun.status != RunStatus.ENTERING, ~unfinished.exists())))
        db.session.commit()
        now, count = time.monotonic(), 0
        wanted = set(ids)  # the checked (or gone) accounts' retry times are forgotten
        self._next_check = {k: at for k, at in self._next_check.items() if k in wanted}
        for run_account_id in ids:
            if self._next_check.get(run_account_id, 0.0) <= now:
                self._next_check[run_account_id] = now + CHECK_RETRY_SECONDS
                count += self._submit(f"check:{run_account_id}", _position_check_job, run_account_id)
        return count

    # -- jobs (pool threads, each in its own app context) --
    def _busy(self, key: str) -> bool:
        with self._lock:
            return key in self._inflight

    def _submit(self, key: str, job: Callable[..., None], *args: Any, keep_loaded: bool = False,
                wake: bool = True) -> int:
        """Run `job(*args)` in the pool unless a job with the same key is running; the engine is
        woken when it ends (`wake`; a send job's answer wakes it from the recorder instead).

        keep_loaded: the job's session keeps its objects loaded across commits (no reload of a row
        it has just written). Only for jobs that read nothing but their own intent and account
        (send, track): every change they make goes through a conditional UPDATE, so a stale copy
        can only make an apply fail with StaleIntent (which rolls back, and so reloads).
        """
        with self._lock:
            if key in self._inflight:
                return 0
            self._inflight.add(key)

        def run() -> None:
            try:
                with self.app.app_context():
                    if keep_loaded:
                        db.session().expire_on_commit = False
                    try:
                        job(*args)
                    except Exception:
                        logger.exception("Engine job %s failed", key)
                    finally:
                        db.session.remove()
            finally:
                with self._lock:
                    self._inflight.discard(key)
                if wake:
                    self._wake()

        self.pool.submit(run)
        return 1

    def _wake(self) -> None:
        # Through the transport (NOTIFY / PUBLISH): a leader waiting on LISTEN or pub/sub blocks in
        # select() there, not on the in-process event. Send jobs do not wake (the recorder does).
        with self.app.app_context():
            wake_engine("engine job done")

    def _send_job(self, order: Any, client: Any, refused: Exception | None) -> None:
        """Place one claimed intent's order (no database here) and hand the answer to the recorder."""
        try:
            outcome = sender.place(order, client, refused, self.holder, self.still_leading, read_status=True,
                                   updates=self.updates)
        except Exception as exc:  # the request may be out: reconcile, never resend blindly
            logger.exception("Sending intent %s failed unexpectedly", order.id)
            outcome = sender.Outcome(order.id, IntentEvent.OUTCOME_UNKNOWN, type(exc).__name__,
                                     {"note": "unexpected error"})
        self._record(outcome)

    # -- the recorder: answers applied in batches, one transaction each --
    def _record(self, outcome: sender.Outcome) -> None:
        with self._lock:
            self._answers.put(outcome)
            if self._recorder is None:
                recorder = threading.Thread(target=self._record_loop, name="execution-recorder", daemon=True)
                recorder.start()
                self._recorder = recorder

    def _record_loop(self) -> None:
        idle_since = time.monotonic()
        while True:
            try:
                batch = [self._answers.get(timeout=0.1)]
            except queue.Empty:
                with self._lock:
                    idle = time.monotonic() - idle_since > RECORDER_IDLE_SECONDS
                    if self._answers.empty() and (self._stopping or idle):
                        self._recorder = None
                        return
                continue
            while len(batch) < 500:  # whatever else has arrived meanwhile goes in the same transaction
                try:
                    batch.append(self._answers.get_nowait())
                except queue.Empty:
                    break
            states: dict[int, IntentState | None] = {}
            unrecorded: list[sender.Outcome] = []
            with self.app.app_context():
                try:
                    states = sender.record_many(batch, unrecorded)
                except Exception:  # never lose the thread; _unstick reconciles what stays SENDING
                    logger.exception("Engine recorder: %d answers not recorded", len(batch))
                finally:
                    db.session.remove()
            # A known answer (an order id, a rejection) is worth more than a reconciliation by
            # shape: one the database refused is tried again a few times before _unstick may act.
            retry = [o for o in unrecorded if self._record_tries.get(o.intent_id, 0) < RECORD_TRIES]
            with self._lock:
                for outcome in retry:
                    self._record_tries[outcome.intent_id] = self._record_tries.get(outcome.intent_id, 0) + 1
                given_up = {o.intent_id for o in batch} - {o.intent_id for o in retry}
                self._unanswered.difference_update(given_up)
                for intent_id in given_up:
                    self._record_tries.pop(intent_id, None)
            if retry:
                time.sleep(RECORD_RETRY_SECONDS)
                for outcome in retry:
                    self._answers.put(outcome)
            for intent_id, state in states.items():
                if state in AT_BROKER:
                    self._track_soon(intent_id)
            self._wake()
            idle_since = time.monotonic()

    def _track_job(self, intent_id: int) -> None:
        tracker.track(intent_id)

    def _reconcile_job(self, account_id: int) -> None:
        # The intents unknown when the job starts, each read `reads` times; one that becomes unknown
        # meanwhile waits for the next job, so it too gets every read (never a "not found" after one).
        start = list(db.session.scalars(select(OrderIntent.id).where(
            OrderIntent.account_id == account_id, OrderIntent.state == IntentState.UNKNOWN.value)
            .order_by(OrderIntent.id)))
        db.session.commit()
        for read in range(1, self.reads + 1):
            ids = list(db.session.scalars(select(OrderIntent.id).where(
                OrderIntent.id.in_(start), OrderIntent.state == IntentState.UNKNOWN.value)
                .order_by(OrderIntent.id))) if start else []
            db.session.commit()
            if not ids:
                return
            for intent_id in ids:
                reconciliation.reconcile(intent_id, last_read=read == self.reads)
            if read < self.reads:
                time.sleep(self.read_interval)  # spacing between order-book reads (config)


# What group_key, policy.view and the phase gate read of an intent.
_GATE_COLUMNS = (OrderIntent.id, OrderIntent.kill_switch_id, OrderIntent.run_account_id, OrderIntent.purpose,
                 OrderIntent.exit_request_id, OrderIntent.account_id, OrderIntent.attempt, OrderIntent.phase,
                 OrderIntent.state, OrderIntent.quantity, OrderIntent.filled_quantity,
                 OrderIntent.replaces_intent_id, OrderIntent.leg_number)


def _objects(rows: list[Any]) -> list[OrderIntent]:
    return list(db.session.scalars(select(OrderIntent).where(OrderIntent.id.in_([r.id for r in rows]))
                                   .order_by(OrderIntent.id)))


def _position_check_job(run_account_id: int) -> None:
    row = db.session.get(RunAccount, run_account_id)
    if row is not None and row.position_check is None:
        reconciliation.position_check(row)
