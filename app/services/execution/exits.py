"""The exit manager: the ONLY code that closes a run's positions (issue 9, point 5).

Web side, `request_exit` commits an ExitRequest (close a whole run, one account's part or one
leg) and wakes the leader. Engine side, `step_all` advances every pending/working request by
one step per engine pass, from the database alone (restartable):

1. entry intents in scope that are still planned are withdrawn; accepted / partly filled ones
   are cancelled at the broker (the engine's tracker then applies the CANCEL); while any intent
   in scope is in flight the request waits for the next pass;
2. what is held per leg (app/services/execution/held.py, from fills only) is closed by close
   intents on the entry's account with the entry's product, shorts first, split at the freeze
   quantity, capped at the position book's net minus the other runs' longs (invariant 6,
   close_caps.py): read before every round, except that a risk exit's first round buys its
   shorts back from the fills at once and plans its longs once their book, read in the engine's
   pool, is in;
3. when everything in scope is flat the request is done and the run account / run closed;
   a close that is rejected or not placed is retried after a position re-read, up to
   MAX_CLOSE_ROUNDS rounds, then the request fails with the reason (held stays what the fills say).
   Only a pass that writes close intents counts as a round: a position book that cannot be read
   (or a pass with nothing to plan) is tried again next pass, for up to IDLE_LIMIT_SECONDS.

A second request for the same leg (a manual exit racing the square-off) computes the same
intent keys, so the unique key makes a second close order impossible.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from app.domain.exit_plan import Holding, plan_close_orders
from app.domain.order_lifecycle import AT_BROKER, TERMINAL, IllegalTransition, IntentEvent, IntentState
from app.domain.risk_settings import RiskEventType
from app.extensions import db
from app.models import User
from app.models.execution import (
    ExitRequest,
    OrderIntent,
    Purpose,
    RunAccount,
    RunAccountStatus,
    RunLeg,
    RunStatus,
    StrategyRun,
)
from app.models.types import utcnow
from app.services import audit
from app.services.execution import tracker
from app.services.execution.close_caps import LegClose, book_unreadable, long_closes, round_closes
from app.services.execution.engine_state import require_engine_online
from app.services.execution.held import held_by_leg, in_flight, leg_ledgers
from app.services.execution.lifecycle import StaleIntent, apply
from app.services.execution.position_reads import PositionRead, reader_of
from app.services.execution.wakeup import wake_engine
from app.services.risk import exit_events
from app.services.risk.exit_events import RiskNote

logger = logging.getLogger(__name__)

MAX_CLOSE_ROUNDS = 3
CANCEL_AGAIN_SECONDS = 5.0
# A pass that can plan nothing (position book not readable, broker shows nothing to close) is not
# a round; after this long without a close intent planned the request fails with the reasons.
IDLE_LIMIT_SECONDS = 120.0
REQUEST_PURPOSES = frozenset(Purpose.CLOSING - {Purpose.KILL_SWITCH})
ACTIVE = ("pending", "working")
_TERMINAL_VALUES = tuple(s.value for s in TERMINAL)
SETTLED_ACCOUNT = frozenset({RunAccountStatus.CLOSED, RunAccountStatus.FAILED, RunAccountStatus.SKIPPED})


def close_intent_key(run_id: int, account_id: int, leg: int, child: int, round_no: int) -> str:
    """The unique key of a run's close child (invariant 2): every closing purpose shares it."""
    return f"run:{run_id}/acct:{account_id}/leg:{leg}/child:{child}/close/{round_no}"


# --- web side -------------------------------------------------------------------------------------

def request_exit(user: Any, run: StrategyRun, *, run_account: RunAccount | int | None = None,
                 leg_number: int | None = None, purpose: str = Purpose.EXIT, reason: str = "",
                 event_type: RiskEventType | None = None, risk_note: RiskNote | None = None) -> ExitRequest:
    """Ask the leader to close a run, one of its accounts, or one leg (on one or every account).

    A risk event is written with the request (manual exit, square-off; `event_type` overrides the
    purpose's, e.g. the scheduled exit time is a square-off); a risk exit's event is the monitor's
    `risk_note`, written in the same transaction.

    Raises:
        LookupError: the run is not the user's, or the run account / leg is not the run's (→ 404).
        ValueError: an unknown closing purpose.
        EngineOffline: no process holds the services lease (a halt does not block exits).
    """
    if run is None or run.user_id != user.id:
        raise LookupError("run not found")
    ra_id: int | None = None
    if run_account is not None:
        ra_id = run_account if isinstance(run_account, int) else run_account.id
        owner = db.session.scalar(select(RunAccount.run_id).where(RunAccount.id == ra_id))
        if owner != run.id:
            raise LookupError("run account not found")
    if leg_number is not None and db.session.scalar(
            select(RunLeg.id).where(RunLeg.run_id == run.id, RunLeg.number == leg_number)) is None:
        raise LookupError("leg not found")
    if purpose not in REQUEST_PURPOSES:
        raise ValueError(f"unknown exit purpose {purpose!r}")
    require_engine_online()
    row = ExitRequest(user_id=user.id, run_id=run.id, run_account_id=ra_id, leg_number=leg_number,
                      purpose=purpose, reason=reason[:1000], status="pending")
    accounts, legs = _scope(row, run)
    # Read before the first write (SQLite's lock). Only a risk exit's first round is planned here:
    # the others read the position book first (the engine's step), which this transaction must not.
    first_round, confirm = _first_round(accounts, legs, run) if not book_first(purpose) else ([], [])
    db.session.add(row)
    db.session.flush()
    exit_events.exit_requested(row, run, event_type, risk_note)
    audit.record("exit_requested", category="trading", user=user, commit=False,
                 details={"run_id": run.id, "exit_request_id": row.id, "run_account_id": ra_id,
                          "leg": leg_number, "purpose": purpose, "reason": reason[:200]})
    if first_round or confirm:
        _start(row, run, accounts)
        created, _existing = plan_leg_closes(first_round, purpose, exit_request_id=row.id, commit=False)
        if created or confirm:
            row.report = {"rounds": 1, **({"confirm": confirm} if confirm else {})}
    db.session.commit()
    wake_engine(f"exit:{row.id}")
    return row


# --- shared with the kill switch -----------------------------------------------------------------

def plan_leg_closes(closes: Sequence[LegClose], purpose: str, *, exit_request_id: int | None = None,
                    kill_switch_id: int | None = None, commit: bool = True) -> tuple[int, int]:
    """Write the close intents of `closes` (planned; the engine sends them).

    Each leg and round is all or nothing: if any child's key exists, the round was planned by
    someone else and none of ours is written for that leg (never a child more than they planned).
    All legs go in one savepoint (one flush, on the exit path after a breach); only when a key
    collides are they written again one savepoint per leg, so the other legs still get theirs.
    With commit=False the caller commits them together with its own state (the kill switch).

    Returns:
        (created, already planned): a key that exists already is never a second order.
    """
    def rows_of(close: LegClose) -> list[dict[str, Any]]:
        leg, ra = close.leg, close.run_account
        holding = Holding(leg.number, leg.symbol, leg.exchange, close.product, close.quantity,
                          leg.lot_size, leg.freeze_qty)
        return [dict(
            intent_key=close_intent_key(ra.run_id, ra.account_id, leg.number, order.child, close.round_no),
            user_id=ra.run.user_id, account_id=ra.account_id, run_id=ra.run_id, run_account_id=ra.id,
            exit_request_id=exit_request_id, kill_switch_id=kill_switch_id, leg_number=leg.number,
            child=order.child, attempt=close.round_no, purpose=purpose, phase=order.phase,
            symbol=order.symbol, exchange=order.exchange, product=order.product, action=order.action,
            quantity=order.quantity, price_type="MARKET", state=IntentState.PLANNED.value)
            for order in plan_close_orders([holding])]

    def write(rows: list[dict[str, Any]]) -> None:
        # One bulk INSERT (the ORM's, with the columns' defaults): the exit path's hottest write.
        with db.session.begin_nested():
            if rows:
                db.session.execute(insert(OrderIntent), rows)

    created = existing = 0
    try:
        everything = [row for close in closes for row in rows_of(close)]
        write(everything)
        created = len(everything)
    except IntegrityError:  # some leg's round exists: leg by leg
        for close in closes:
            rows = rows_of(close)
            try:
                write(rows)
            except IntegrityError:
                existing += len(rows)
                continue
            created += len(rows)
    if commit:
        db.session.commit()
    return created, existing


def settle_run(run: StrategyRun) -> None:
    """Roll a run's statuses up after closes: an account flat for every leg with nothing in flight
    is closed, and the run is closed (closed_at) when every account is closed, failed or skipped."""
    for ra in run.accounts:
        if ra.status in SETTLED_ACCOUNT:
            continue
        if all(q == 0 for q in held_by_leg(ra).values()) and not in_flight(ra) and _has_closes(ra):
            ra.status = RunAccountStatus.CLOSED
    if run.status != RunStatus.CLOSED and run.accounts and all(ra.status in SETTLED_ACCOUNT for ra in run.accounts):
        run.status = RunStatus.CLOSED
        run.closed_at = utcnow()
    db.session.commit()


def _has_closes(ra: RunAccount) -> bool:
    # An account that never filled anything stays as the engine left it (failed), not "closed".
    return db.session.scalar(select(func.count()).select_from(OrderIntent).where(
        OrderIntent.run_account_id == ra.id, OrderIntent.filled_quantity > 0)) != 0


# --- engine side ----------------------------------------------------------------------------------

def step_all(ctx: Any = None) -> bool:
    """Advance every pending or working exit request by one step (called by the leader's pass).

    Returns:
        True when anything was changed (intents withdrawn, cancelled, planned, requests finished).
    """
    db.session.expire_all()
    ids = list(db.session.scalars(select(ExitRequest.id).where(ExitRequest.status.in_(ACTIVE))
                                  .order_by(ExitRequest.id)))
    progressed = False
    for request_id in ids:
        request = db.session.get(ExitRequest, request_id)
        if request is None or request.status not in ACTIVE:
            continue
        try:
            progressed = step(request, ctx) or progressed
        except Exception:  # one broken request never stops the others
            db.session.rollback()
            logger.exception("exit request %s: step failed; retried next pass", request_id)
    return progressed


def _scope(request: ExitRequest, run: StrategyRun) -> tuple[list[RunAccount], list[RunLeg]]:
    accounts = [ra for ra in run.accounts if ra.status != RunAccountStatus.SKIPPED
                and (request.run_account_id is None or ra.id == request.run_account_id)]
    legs = [leg for leg in run.legs if request.leg_number is None or leg.number == request.leg_number]
    return accounts, legs


def _report(request: ExitRequest) -> dict[str, Any]:
    # A deep copy: JSON columns compare old and new values at flush, so in-place edits are lost.
    return copy.deepcopy(request.report or {})


def moving_in_scope(request: ExitRequest) -> tuple[bool, bool]:
    """(an intent in the request's scope is not terminal, one of those is an entry), in one query:
    what the ledgers' in_flight / entering say for the scope, without loading the run."""
    query = (select(OrderIntent.purpose).distinct()
             .join(RunAccount, RunAccount.id == OrderIntent.run_account_id)
             .where(RunAccount.run_id == request.run_id, RunAccount.status != RunAccountStatus.SKIPPED,
                    OrderIntent.leg_number.is_not(None), OrderIntent.state.not_in(_TERMINAL_VALUES)))
    if request.run_account_id is not None:
        query = query.where(OrderIntent.run_account_id == request.run_account_id)
    if request.leg_number is not None:
        query = query.where(OrderIntent.leg_number == request.leg_number)
    purposes = set(db.session.scalars(query))
    return bool(purposes), Purpose.ENTRY in purposes


def step(request: ExitRequest, ctx: Any = None) -> bool:
    """One step of one request (see the module docstring). True when something changed.
    `ctx`: the engine, whose pool reads the position books a risk exit's longs wait for."""
    if request.status == "working":
        if (request.report or {}).get("confirm"):
            return _confirm_longs(request, reader_of(ctx))
        moving, entering = moving_in_scope(request)
        if moving and not entering:
            return False  # only closes are moving (every pass while a round runs): one query
    run = db.session.get(StrategyRun, request.run_id)
    if run is None:
        return False
    accounts, legs = _scope(request, run)
    if request.status == "pending":
        _start(request, run, accounts)
        db.session.commit()
    leg_numbers = {leg.number for leg in legs}
    run_legs = [leg.number for leg in run.legs]
    ledgers = {ra.id: leg_ledgers(ra, run_legs) for ra in accounts}  # one read per account
    if any(ledgers[ra.id][n].in_flight for ra in accounts for n in leg_numbers):
        if not any(ledgers[ra.id][n].entering for ra in accounts for n in leg_numbers):
            return False  # only closes are moving: they run (the next round waits for them)
        flying = [i for ra in accounts for i in in_flight(ra) if i.leg_number in leg_numbers]
        if flying:
            return _stop_entries(request, flying)
        ledgers = {ra.id: leg_ledgers(ra, run_legs) for ra in accounts}  # settled since: read again
        if any(ledgers[ra.id][n].in_flight for ra in accounts for n in leg_numbers):
            return False  # planned meanwhile (a retry, a close): the next pass looks again
    held = {(ra.id, leg.number): ledgers[ra.id][leg.number].held for ra in accounts for leg in legs}
    if all(q == 0 for q in held.values()):
        return _finish(request, run, accounts, legs)
    report = _report(request)
    rounds = int(report.get("rounds", 0))
    if rounds >= MAX_CLOSE_ROUNDS:
        return _fail(request, run, accounts, legs, held)
    # A risk exit's first round closes the shorts from the fills at once; every other planning
    # reads the position book first (a later round of a risk exit too).
    closes, unclosable, confirm = round_closes(accounts, legs, ledgers,
                                               read_book=book_first(request.purpose) or rounds > 0)
    # The close intents and the request's report in one transaction (every path below commits).
    created, existing = plan_leg_closes(closes, request.purpose, exit_request_id=request.id, commit=False)
    report = _report(request)
    now = utcnow()
    if confirm:
        report["confirm"] = confirm
    if created or confirm:  # only a pass that planned closes is a round (a book not read is no round)
        report["rounds"] = rounds + 1
        report.pop("idle_since", None)
    elif existing:  # someone else (another request, the kill switch) planned this round
        report.pop("idle_since", None)
    elif "idle_since" not in report:
        report["idle_since"] = now.isoformat()
    elif now - datetime.fromisoformat(report["idle_since"]) >= timedelta(seconds=IDLE_LIMIT_SECONDS):
        report["unclosable"] = unclosable
        request.report = report
        db.session.commit()
        return _fail(request, run, accounts, legs, held)
    if unclosable or "unclosable" in report:
        report["unclosable"] = unclosable
    changed = report != (request.report or {})
    request.report = report
    db.session.commit()
    if created or existing:
        logger.info("exit request %s round %s: %s close intents planned, %s already planned",
                    request.id, report.get("rounds", 0), created, existing)
    if confirm:  # start the book reads now, while the shorts go out
        _confirm_longs(request, reader_of(ctx))
    return changed


def _start(request: ExitRequest, run: StrategyRun, accounts: Sequence[RunAccount]) -> None:
    """pending → working; a run or account exit marks what it closes as closing (no commit)."""
    request.status = "working"
    if request.leg_number is None:
        for ra in accounts:
            if ra.status not in SETTLED_ACCOUNT:
                ra.status = RunAccountStatus.CLOSING
        if request.run_account_id is None and run.status not in (RunStatus.CLOSED, RunStatus.FAILED):
            run.status = RunStatus.CLOSING


def _first_round(accounts: Sequence[RunAccount], legs: Sequence[RunLeg],
                 run: StrategyRun) -> tuple[list[LegClose], list[int]]:
    """The closes a new risk exit can plan with itself, in its own transaction: the first round of
    the shorts that are held with nothing of theirs in flight, on a run where nothing in scope is
    moving, and the run accounts whose longs wait for their position book (`_confirm_longs`).
    The leader then sends them in its next pass instead of planning them first (a breach's exit
    saves a pass and two commits). Anything else (entries or closes moving, a later round that
    needs the position book, nothing held) is empty here and left to the engine's `step`."""
    leg_numbers = {leg.number for leg in legs}
    run_legs = [leg.number for leg in run.legs]
    ledgers = {ra.id: leg_ledgers(ra, run_legs) for ra in accounts}
    scoped = [ledgers[ra.id][n] for ra in accounts for n in leg_numbers]
    if any(ledger.in_flight for ledger in scoped) or any(ledger.held and ledger.next_round > 1 for ledger in scoped):
        return [], []
    closes, _unclosable, confirm = round_closes(accounts, legs, ledgers, read_book=False)  # round 1 everywhere
    return closes, confirm


def _stop_entries(request: ExitRequest, moving: Iterable[OrderIntent]) -> bool:
    """Withdraw planned entries and cancel entry orders open at the broker; closes just run."""
    changed = False
    report = _report(request)
    cancels: dict[str, str] = dict(report.get("cancel_sent", {}))
    now = utcnow()
    for intent in moving:
        if intent.purpose != Purpose.ENTRY:
            continue
        state = IntentState(intent.state)
        if state is IntentState.PLANNED:
            try:
                why = f"withdrawn: exit request {request.id} ({request.purpose})"
                apply(intent, IntentEvent.WITHDRAW, detail=why, note=why)
                changed = True
            except (StaleIntent, IllegalTransition):
                # the sender claimed it first: it is now in flight, cancelled below next pass
                pass
        elif state in AT_BROKER and intent.broker_order_id:
            sent = cancels.get(intent.broker_order_id)
            if sent and now - datetime.fromisoformat(sent) < timedelta(seconds=CANCEL_AGAIN_SECONDS):
                continue
            order_id = intent.broker_order_id
            tracker.cancel(intent.id)  # refused (already complete / cancelled): the tracker sees it
            cancels[order_id] = now.isoformat()
            changed = True
    if cancels != report.get("cancel_sent", {}):
        report["cancel_sent"] = cancels
        request.report = report
        db.session.commit()
    return changed


def book_first(purpose: str) -> bool:
    """Does the first round of a close read the position book (and close no more than it shows)?

    Yes for a manual exit, the scheduled exit and square-off, an unwind: a position closed
    outside the app (the broker's terminal, its RMS) must not be "closed" again into a reverse
    one (a long sold twice is a naked short). A risk exit's first round closes the shorts from
    the run's own fills, because a breach's close must not wait a broker round trip (a short
    bought back twice is a long: the premium at most); its longs go only once the book, read
    while the shorts are out, confirms them (`_confirm_longs`). Its later rounds, like every
    request's, read the book first.
    """
    return purpose != Purpose.RISK


def _confirm_longs(request: ExitRequest, read: Callable[[str, int], PositionRead | None]) -> bool:
    """Plan a risk exit's long closes once each waiting account's position book is in (started
    here, read in the engine's pool while the shorts are out; the phase gate still sends them
    only after the shorts filled). A book that cannot be read leaves the longs to the next
    round, which reads it again. True when something changed."""
    report = _report(request)
    run = db.session.get(StrategyRun, request.run_id)
    if run is None or request.status not in ACTIVE:
        return False
    accounts, legs = _scope(request, run)
    by_id = {ra.id: ra for ra in accounts}
    run_legs = [leg.number for leg in run.legs]
    closes: list[LegClose] = []
    unclosable = list(report.get("unclosable", []))
    waiting = []
    for ra_id in report.get("confirm", []):
        ra = by_id.get(int(ra_id))
        if ra is None:
            continue
        answer = read(f"exit:{request.id}/ra:{ra.id}", ra.account_id)
        if answer is None:
            waiting.append(ra.id)
            continue
        if answer.book is None:
            unclosable.append(book_unreadable(ra, answer.error))
            continue
        planned, refused = long_closes(ra, legs, leg_ledgers(ra, run_legs), answer.book)
        closes += planned
        unclosable += refused
    if waiting == report.get("confirm"):
        db.session.commit()
        return False
    plan_leg_closes(closes, request.purpose, exit_request_id=request.id, commit=False)
    report["confirm"] = waiting
    if not waiting:
        del report["confirm"]
    if unclosable:
        report["unclosable"] = unclosable
    request.report = report
    db.session.commit()
    return True


def _finish(request: ExitRequest, run: StrategyRun, accounts: Sequence[RunAccount], legs: Sequence[RunLeg]) -> bool:
    report = _report(request)
    closed = []
    for ra in accounts:
        for leg in legs:
            filled = db.session.scalar(select(func.coalesce(func.sum(OrderIntent.filled_quantity), 0)).where(
                OrderIntent.run_account_id == ra.id, OrderIntent.leg_number == leg.number,
                OrderIntent.purpose != Purpose.ENTRY))
            if filled:
                closed.append({"run_account_id": ra.id, "account": ra.account_name, "leg": leg.number,
                               "symbol": leg.symbol, "quantity": int(filled)})
    report["closed"] = closed
    request.report = report
    request.status = "done"
    request.done_at = utcnow()
    exit_events.exit_settled(request, failed=False)
    audit.record("exit_done", category="trading", user=_owner(request), commit=False,
                 details={"run_id": run.id, "exit_request_id": request.id, "purpose": request.purpose,
                          "closed": closed})
    db.session.commit()
    settle_run(run)
    if request.leg_number is not None:
        return True
    for ra in accounts:  # an account exit on an account that held nothing is settled too
        if ra.status == RunAccountStatus.CLOSING:
            ra.status = RunAccountStatus.CLOSED
    if run.status == RunStatus.CLOSING and all(ra.status in SETTLED_ACCOUNT for ra in run.accounts):
        run.status, run.closed_at = RunStatus.CLOSED, utcnow()
    db.session.commit()
    return True


def _owner(request: ExitRequest) -> User | None:
    return db.session.get(User, request.user_id)


def _fail(request: ExitRequest, run: StrategyRun, accounts: Sequence[RunAccount], legs: Sequence[RunLeg],
          held: dict[tuple[int, int], int]) -> bool:
    report = _report(request)
    failed = []
    for ra in accounts:
        for leg in legs:
            quantity = held[(ra.id, leg.number)]
            if quantity == 0:
                continue
            last = db.session.scalars(select(OrderIntent).where(
                OrderIntent.run_account_id == ra.id, OrderIntent.leg_number == leg.number,
                OrderIntent.purpose != Purpose.ENTRY).order_by(OrderIntent.id.desc()).limit(1)).first()
            reason = (last.rejection_reason or last.note or last.state) if last is not None else "no close was placed"
            # Why the last pass could not close it: about this leg, else about the whole account
            # (its position book unreadable), else the last close's own answer.
            mine = [item for item in report.get("unclosable", []) if item.get("run_account_id") == ra.id]
            for item in [i for i in mine if i.get("leg") is None] + [i for i in mine if i.get("leg") == leg.number]:
                reason = item["reason"]
            failed.append({"run_account_id": ra.id, "account": ra.account_name, "leg": leg.number,
                           "symbol": leg.symbol, "held": quantity, "reason": reason})
            ra.add_flag(f"exit of leg {leg.number} failed: {reason}")
        if ra.status == RunAccountStatus.CLOSING:
            ra.status = RunAccountStatus.OPEN
    if run.status == RunStatus.CLOSING:
        run.status = RunStatus.OPEN
    report["failed"] = failed
    request.report = report
    request.status = "failed"
    request.done_at = utcnow()
    exit_events.exit_settled(request, failed=True)
    audit.record("exit_failed", category="trading", user=_owner(request), success=False, commit=False,
                 details={"run_id": run.id, "exit_request_id": request.id, "failed": failed})
    db.session.commit()
    return True
