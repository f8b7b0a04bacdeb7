"""Entry policies of a run account, applied by the engine on every pass (idempotent), and the
user's retry of an account's failed legs (request_retry).

- LIMIT timeout: an accepted LIMIT entry older than run.limit_timeout_seconds is cancelled; with
  limit_fallback "market" the unfilled rest goes again as a MARKET intent (attempt + 1).
- A failed entry (rejected / not placed / cancelled): resend_not_placed (once), then the run's
  failure policy: retry (attempt + 1 up to retry_limit for non-final rejections), report (flag,
  withdraw the rest) or unwind (withdraw the rest, then an ExitRequest(purpose="unwind")).
- Roll-up once the entry group is terminal: RunAccount.status, the position check, the run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import exists, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.domain.execution_policy import (
    AccountOutcome,
    FailureAction,
    IntentView,
    account_outcome,
    live,
    on_failed_entry,
)
from app.domain.order_lifecycle import AT_BROKER, TERMINAL, IllegalTransition, IntentEvent, IntentState
from app.extensions import db
from app.models.accounts import TradingAccount
from app.models.execution import (
    ExitRequest,
    KillSwitch,
    OrderIntent,
    Purpose,
    RunAccount,
    RunAccountStatus,
    RunStatus,
    StrategyRun,
)
from app.models.types import utcnow
from app.services import audit
from app.services.execution import tracker
from app.services.execution.engine_state import require_engine_online
from app.services.execution.errors import ExecutionRefused
from app.services.execution.halt import require_not_halted
from app.services.execution.lifecycle import StaleIntent, apply
from app.services.execution.planner import entry_intent_key
from app.services.execution.wakeup import wake_engine

logger = logging.getLogger(__name__)

ACTIVE = (RunAccountStatus.PLANNED, RunAccountStatus.ENTERING)


def entry_intents(run_account_id: int) -> list[OrderIntent]:
    return list(db.session.scalars(select(OrderIntent).where(
        OrderIntent.run_account_id == run_account_id, OrderIntent.purpose == Purpose.ENTRY).order_by(OrderIntent.id)))


def view(intent: OrderIntent) -> IntentView:
    return IntentView(id=intent.id, phase=intent.phase, state=IntentState(intent.state), quantity=intent.quantity,
                      filled_quantity=intent.filled_quantity, replaces_intent_id=intent.replaces_intent_id)


def entry_key(intent: OrderIntent, attempt: int) -> str:
    """The key of another attempt of an entry child (the planner's one definition of entry keys)."""
    assert intent.run_id is not None and intent.leg_number is not None
    return entry_intent_key(intent.run_id, intent.account_id, intent.leg_number, intent.child, attempt)


def new_attempt(intent: OrderIntent, *, quantity: int | None = None, price_type: str | None = None,
                note: str = "") -> OrderIntent | None:
    """Plan the next attempt of an entry intent (replaces_intent_id = it). None when it exists already."""
    attempt = intent.attempt + 1
    row = OrderIntent(intent_key=entry_key(intent, attempt), user_id=intent.user_id, account_id=intent.account_id,
                      run_id=intent.run_id, run_account_id=intent.run_account_id, replaces_intent_id=intent.id,
                      leg_number=intent.leg_number, child=intent.child, attempt=attempt, purpose=intent.purpose,
                      phase=intent.phase, symbol=intent.symbol, exchange=intent.exchange, product=intent.product,
                      action=intent.action, quantity=quantity or intent.quantity,
                      price_type=price_type or intent.price_type,
                      price=None if (price_type or intent.price_type) == "MARKET" else intent.price, note=note)
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return None
    logger.info("Intent %s planned as attempt %s of intent %s", row.id, attempt, intent.id)
    return row


def withdraw_planned(intents: list[OrderIntent], why: str) -> int:
    count = 0
    for intent in intents:
        if intent.state == IntentState.PLANNED.value:
            try:
                apply(intent, IntentEvent.WITHDRAW, detail=why, note=why[:500])
                count += 1
            except (StaleIntent, IllegalTransition):
                db.session.rollback()
    return count


# When each timed-out LIMIT was last asked to cancel (in memory: after a restart one more cancel
# goes out, which the broker answers harmlessly). Never more than one cancel per CANCEL_REPEAT_SECONDS.
_cancel_sent: dict[int, float] = {}
CANCEL_REPEAT_SECONDS = 5.0


def _needs_policy(intent: OrderIntent, limit_fallback: str) -> bool:
    """An ended entry that did not fill: a failure for the failure policy, or a cancelled LIMIT whose
    unfilled rest goes as MARKET (limit_fallback "market"). Withdrawn intents were handled already."""
    state = IntentState(intent.state)
    if state is IntentState.CANCELLED and intent.price_type == "LIMIT" and limit_fallback == "market" \
            and intent.filled_quantity < intent.quantity:
        return True
    failed = state in (IntentState.REJECTED, IntentState.NOT_PLACED) or (
        state is IntentState.CANCELLED and intent.filled_quantity < intent.quantity)
    return failed and not intent.note.startswith("withdrawn")


def _limit_timeouts(run: StrategyRun, intents: list[OrderIntent]) -> bool:
    """Cancel the timed-out resting LIMIT entries; True when a cancel was asked for."""
    asked = False
    deadline = utcnow() - timedelta(seconds=run.limit_timeout_seconds)
    now = time.monotonic()
    for intent in intents:
        if intent.price_type == "LIMIT" and IntentState(intent.state) in AT_BROKER \
                and intent.sent_at is not None and intent.sent_at <= deadline:
            if now - _cancel_sent.get(intent.id, -CANCEL_REPEAT_SECONDS) < CANCEL_REPEAT_SECONDS:
                continue
            _cancel_sent[intent.id] = now
            tracker.cancel(intent.id)
            tracker.track(intent.id)
            asked = True
        elif intent.id in _cancel_sent and IntentState(intent.state) not in AT_BROKER:
            _cancel_sent.pop(intent.id, None)
    return asked


def step_account(run_account_id: int) -> None:
    """Apply the policies to one run account's entry group and roll it up when it is done."""
    run_account = db.session.get(RunAccount, run_account_id)
    if run_account is None or run_account.status not in ACTIVE:
        db.session.rollback()
        return
    run = run_account.run
    intents = entry_intents(run_account_id)
    if _limit_timeouts(run, intents):
        intents = entry_intents(run_account_id)
    views = {i.id: i for i in intents}
    current = [views[v.id] for v in live(view(i) for i in intents)]
    # Only an ended intent that did not fill gives a policy something to do (most steps: none).
    pending = [i for i in current if _needs_policy(i, run.limit_fallback)]
    unwind = changed = False
    # Once an exit was asked for this account (or the whole run, or one of its legs), its entry is
    # over: nothing is re-sent or replaced, or a close could race a fresh entry of the same leg
    # (the exit manager cancels open entries; those cancels are no failures to retry).
    closing_all, closing_legs = _closing_scope(run_account) if pending else (False, set())
    for intent in pending:
        if closing_all:
            break
        if intent.leg_number in closing_legs:
            continue
        state = IntentState(intent.state)
        changed = True
        if state is IntentState.CANCELLED and intent.price_type == "LIMIT" and run.limit_fallback == "market" \
                and intent.filled_quantity < intent.quantity:
            new_attempt(intent, quantity=intent.quantity - intent.filled_quantity, price_type="MARKET",
                        note=f"MARKET for the rest of LIMIT intent {intent.id}")
            continue
        action = on_failed_entry(run.failure_policy, state=state, attempt=intent.attempt,
                                 retry_limit=run.retry_limit, reason=intent.rejection_reason,
                                 resend_not_placed=run.resend_not_placed)
        if action is FailureAction.RETRY:
            new_attempt(intent, note=f"attempt {intent.attempt + 1} after {state.value}")
            continue
        why = f"withdrawn: leg {intent.leg_number} child {intent.child} {state.value}"
        withdraw_planned(entry_intents(run_account_id), why)
        row = db.session.get(RunAccount, run_account_id)
        assert row is not None
        row.add_flag(f"leg {intent.leg_number} {state.value}: {intent.rejection_reason or intent.note or ''}".strip())
        db.session.commit()
        unwind = unwind or action is FailureAction.UNWIND
    if changed:
        intents = entry_intents(run_account_id)
    if any(IntentState(i.state) not in TERMINAL for i in intents):
        started = any(i.state != IntentState.PLANNED.value for i in intents)
        if started and run_account.status == RunAccountStatus.PLANNED:
            run_account.status = RunAccountStatus.ENTERING
        db.session.commit()
        return
    if unwind or (run.failure_policy == FailureAction.UNWIND.value and run_account.flagged):
        _request_unwind(run_account)
    _roll_up_account(run_account, intents)


def _closing_scope(run_account: RunAccount) -> tuple[bool, set[int]]:
    """What of this account is being (or was) closed: (everything, the legs closed one by one).

    Everything: an exit of the whole run or of this account, or a kill switch the user pressed
    after the run was clicked. Its entries are then over: nothing is re-sent or replaced, or a
    close could race a fresh entry of the same leg (the exit manager cancels open entries, and
    those cancels are no failures to retry). A one-leg exit ends the entry of that leg only.
    """
    rows = db.session.execute(select(ExitRequest.run_account_id, ExitRequest.leg_number).where(
        ExitRequest.run_id == run_account.run_id, ExitRequest.purpose != Purpose.UNWIND,
        or_(ExitRequest.run_account_id.is_(None), ExitRequest.run_account_id == run_account.id))).all()
    legs = {leg for _ra, leg in rows if leg is not None}
    everything = any(leg is None for _ra, leg in rows)
    if not everything:
        run = run_account.run
        everything = db.session.scalar(select(KillSwitch.id).where(
            KillSwitch.user_id == run.user_id, KillSwitch.created_at >= run.clicked_at).limit(1)) is not None
    return everything, legs


def closing_requested(run_account: RunAccount) -> bool:
    """Some close was asked for this account's part of the run (or a kill switch pressed since)."""
    everything, legs = _closing_scope(run_account)
    return everything or bool(legs)


def _request_unwind(run_account: RunAccount) -> None:
    exists = db.session.scalar(select(ExitRequest.id).where(ExitRequest.run_account_id == run_account.id,
                                                            ExitRequest.purpose == Purpose.UNWIND))
    if exists is None and any(i.filled_quantity for i in entry_intents(run_account.id)):
        db.session.add(ExitRequest(user_id=run_account.run.user_id, run_id=run_account.run_id,
                                   run_account_id=run_account.id, purpose=Purpose.UNWIND,
                                   reason="entry failed; failure policy unwind"))
        db.session.commit()


def roll_up_filled(run_account_ids: Collection[int]) -> set[int]:
    """Roll up, in one transaction, those of these entering run accounts whose every entry intent
    filled and that carry no flag: OPEN, which is what step_account decides for them (nothing
    failed, so no policy acts; no flag, so no unwind), without a step of its own per account; then
    their runs. Returns the ids that moved."""
    if not run_account_ids:
        return set()
    entries = (OrderIntent.run_account_id == RunAccount.id, OrderIntent.purpose == Purpose.ENTRY)
    done = (RunAccount.id.in_(list(run_account_ids)), RunAccount.status.in_(ACTIVE), RunAccount.flagged.is_(False),
            exists().where(*entries), ~exists().where(*entries, OrderIntent.state != IntentState.FILLED.value))
    rows = db.session.execute(select(RunAccount.id, RunAccount.run_id).where(*done)).all()
    if rows:
        db.session.execute(update(RunAccount).where(RunAccount.id.in_([r.id for r in rows]), *done[1:3])
                           .values(status=RunAccountStatus.OPEN).execution_options(synchronize_session=False))
    db.session.commit()
    _roll_up_runs(sorted({r.run_id for r in rows}))
    return {r.id for r in rows}


def roll_up_entered_runs() -> int:
    """The safety net of the run roll-ups: every run still entering whose accounts all left
    entering (a roll-up that failed after its accounts' commit) is rolled up now. Returns how
    many runs were looked at."""
    active = select(RunAccount.id).where(RunAccount.run_id == StrategyRun.id, RunAccount.status.in_(ACTIVE))
    ids = list(db.session.scalars(select(StrategyRun.id).where(
        StrategyRun.status == RunStatus.ENTERING, StrategyRun.accounts.any(), ~active.exists())))
    db.session.commit()
    _roll_up_runs(ids)
    return len(ids)


def _roll_up_runs(run_ids: Sequence[int]) -> None:
    for run_id in run_ids:
        try:
            _roll_up_run(run_id)
        except Exception:  # one run's failure never keeps the others entering (the sweep retries it)
            db.session.rollback()
            logger.exception("Run %s: roll-up failed; tried again by the next sweep", run_id)


def _roll_up_account(run_account: RunAccount, intents: list[OrderIntent]) -> None:
    outcome = account_outcome([view(i) for i in intents])
    run_account.status = {AccountOutcome.OPEN: RunAccountStatus.OPEN, AccountOutcome.PARTIAL: RunAccountStatus.PARTIAL,
                          AccountOutcome.FAILED: RunAccountStatus.FAILED}[outcome]
    if outcome is not AccountOutcome.OPEN:
        run_account.add_flag(f"entry {outcome.value}")
    db.session.commit()
    # The position check (one position-book read) follows once the whole run has left entering
    # (the engine schedules it): while other accounts are still being entered it would only
    # compete with their orders.
    _roll_up_run(run_account.run_id)


def _roll_up_run(run_id: int) -> None:
    run = db.session.get(StrategyRun, run_id)
    if run is None or run.status != RunStatus.ENTERING:
        db.session.commit()
        return
    # Accounts roll up in parallel, each calling this: ask the database whether any is still
    # entering rather than loading every account of the run each time.
    still_active = db.session.scalar(select(RunAccount.id).where(
        RunAccount.run_id == run_id, RunAccount.status.in_(ACTIVE)).limit(1))
    if still_active is not None:
        db.session.commit()
        return
    accounts = [a for a in run.accounts if a.status != RunAccountStatus.SKIPPED]
    entered = [a for a in accounts if a.status not in (RunAccountStatus.FAILED,)]
    # Accounts are stepped in parallel: the last two to finish may both get here. A conditional
    # update lets exactly one of them roll the run up (and audit it).
    moved = db.session.execute(
        update(StrategyRun).where(StrategyRun.id == run.id, StrategyRun.status == RunStatus.ENTERING)
        .values(status=RunStatus.OPEN if entered else RunStatus.FAILED, entered_at=utcnow() if entered else None)
        .execution_options(synchronize_session=False))
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        return
    from app.models.users import User

    audit.record("execution_run_entered" if entered else "execution_run_failed", category="execution",
                 user=db.session.get(User, run.user_id), success=bool(entered),
                 details={"run_id": run.id, "accounts": {a.account_name: a.status for a in accounts}}, commit=False)
    db.session.commit()


def superseded_ids(intents: Sequence[Any]) -> set[int]:
    """The intents that a later attempt replaces (their `replaces_intent_id`)."""
    return {i.replaces_intent_id for i in intents if i.replaces_intent_id is not None}


def request_retry(user: Any, run_account_id: int) -> list[int]:
    """Re-plan the failed entry legs of one of the user's run accounts as new attempts; wake the engine.

    Raises:
        LookupError: no such run account for this user (answer 404).
    Returns:
        The ids of the new intents.
    """
    row = db.session.scalar(select(RunAccount).join(StrategyRun).where(
        RunAccount.id == run_account_id, StrategyRun.user_id == user.id))
    if row is None:
        raise LookupError("run account not found")
    # A retry is a new entry: the same gates as Execute, and never on a run being (or already) closed.
    require_engine_online()
    require_not_halted()
    if row.run.status in (RunStatus.CLOSING, RunStatus.CLOSED) or closing_requested(row):
        raise ExecutionRefused("This run is being closed (or was): its failed legs are not sent again.")
    if row.status not in (RunAccountStatus.PARTIAL, RunAccountStatus.FAILED):
        return []
    # Lazy: the planner pulls in sizing and leg resolution, which the engine's policy step never needs.
    from app.services.execution.planner import require_retry_allowed

    account = db.session.get(TradingAccount, row.account_id)
    if account is None or account.deleted_at is not None:
        raise ExecutionRefused("This account was deleted: its failed legs are not sent again.")
    require_retry_allowed(account, row.run, utcnow())
    intents = entry_intents(row.id)
    superseded = superseded_ids(intents)
    created = []
    for intent in intents:
        if intent.id in superseded:
            continue
        state = IntentState(intent.state)
        if state in (IntentState.REJECTED, IntentState.NOT_PLACED) or (
                state is IntentState.CANCELLED and intent.filled_quantity < intent.quantity):
            new = new_attempt(intent, quantity=intent.quantity - intent.filled_quantity,
                              note=f"retry requested by {user.username}")
            if new is not None:
                created.append(new.id)
    if created:
        row = db.session.get(RunAccount, run_account_id)
        assert row is not None
        row.status = RunAccountStatus.ENTERING
        row.run.status = RunStatus.ENTERING
        db.session.commit()
        wake_engine("entry retry")
    return created
