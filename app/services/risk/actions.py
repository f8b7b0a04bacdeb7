"""What the risk monitor does with a decision: close through the exit manager, or write the event.

Every close goes through `exits.request_exit(purpose="risk")`, the one exit path (issue 9), with
the decision's risk event written in the same transaction. A close is asked for only when no
exit request under way or done already covers the same run, account and leg: with the exit manager's
unique close keys, that makes a breach close what it should exactly once, even when a new leader
re-evaluates the breach after a crash.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import or_, select

from app.domain.risk_rules import Decision, ScopedDecision
from app.domain.risk_settings import RiskAction, RiskEventAction, RiskEventType
from app.exceptions import AlgoMirrorError
from app.extensions import db
from app.models import User
from app.models.accounts import TradingAccount
from app.models.execution import ExitRequest, StrategyRun
from app.models.risk import AccountRiskBlock, RiskEvent
from app.models.types import utcnow
from app.services.execution.exits import request_exit
from app.services.risk.book import AccountBook, RunBook
from app.services.risk.events import block_account_entries, record_risk_event
from app.services.risk.exit_events import RiskNote

logger = logging.getLogger(__name__)

# A done exit covers its scope too: its part is flat, and a book read before the closing fills must
# not ask for it again (seen in bench/risk.py: a second request that found the run flat).
COVERING = ("pending", "working", "done")


@dataclass(frozen=True)
class Close:
    """One exit request to ask for: a whole run, one run account, or one leg of one run account."""

    run_account_id: int | None
    leg_number: int | None
    account_id: int | None


def covered(run_id: int, close: Close) -> bool:
    """An exit request of the run that is under way or done already closes this (the same or a wider
    scope). A failed one does not: the breach asks again."""
    query = select(ExitRequest.id).where(ExitRequest.run_id == run_id, ExitRequest.status.in_(COVERING))
    if close.run_account_id is not None:
        query = query.where(or_(ExitRequest.run_account_id.is_(None),
                                ExitRequest.run_account_id == close.run_account_id))
    else:
        query = query.where(ExitRequest.run_account_id.is_(None))
    if close.leg_number is not None:
        query = query.where(or_(ExitRequest.leg_number.is_(None), ExitRequest.leg_number == close.leg_number))
    else:
        query = query.where(ExitRequest.leg_number.is_(None))
    return db.session.scalar(query.limit(1)) is not None


def closes_for(book: RunBook, decision: ScopedDecision) -> list[Close]:
    """The exit requests a closing decision needs."""
    by_account = {a.account_id: a.run_account_id for a in book.accounts}
    if decision.close_all_legs:
        if decision.unit is None:  # combined scope: every account of the run together
            return [Close(None, None, None)]
        return [Close(by_account[decision.unit], None, decision.unit)]
    return [Close(by_account[leg.account_id], leg.leg_number, leg.account_id) for leg in decision.legs_to_close
            if leg.account_id in by_account]


def _note(decision: Decision, action: RiskEventAction, close: Close, extra: str = "") -> RiskNote:
    assert decision.event_type is not None
    return RiskNote(event_type=decision.event_type, action=action, detail=(decision.reason + extra)[:4000],
                    threshold=decision.threshold, current_value=decision.current_value, account_id=close.account_id)


def request_closes(book: RunBook, decision: Decision, closes: list[Close], action: RiskEventAction
                   ) -> tuple[list[int], bool]:
    """Ask for each close not already covered. Returns (the new exit request ids, True when every
    close is now asked for). A refusal (the run is gone, the engine offline) is logged and written
    as an event that did nothing; the caller asks again later."""
    run = db.session.get(StrategyRun, book.run_id)
    user = db.session.get(User, book.user_id)
    if run is None or user is None:
        db.session.rollback()
        return [], True  # nothing left to protect
    made = []
    complete = True
    for close in closes:
        if covered(book.run_id, close):
            logger.info("run %s: %s already being closed (%s)", book.run_id, close, decision.event_type)
            continue
        extra = "" if close.leg_number is None else f" (closing leg {close.leg_number})"
        try:
            row = request_exit(user, run, run_account=close.run_account_id, leg_number=close.leg_number,
                               purpose="risk", reason=decision.reason[:1000], risk_note=_note(decision, action, close,
                                                                                              extra))
        except (AlgoMirrorError, LookupError) as exc:
            db.session.rollback()
            logger.error("run %s: risk exit %s not requested: %s", book.run_id, close, exc)
            record_risk_event(user_id=book.user_id, event_type=decision.event_type or RiskEventType.MANUAL_EXIT,
                              action=RiskEventAction.NONE, run=run, account_id=close.account_id,
                              threshold=decision.threshold, current_value=decision.current_value,
                              detail=f"{decision.reason}; the exit could not be requested: {exc}"[:4000],
                              commit=True)
            complete = False
            continue
        made.append(row.id)
        logger.warning("run %s: %s → exit request %s (%s)", book.run_id, decision.reason, row.id, close)
    return made, complete


def act(book: RunBook, scoped: ScopedDecision) -> bool:
    """A new closing breach of a run rule (max loss, trailing, max profit, leg stop or target).
    True when every close it needs is asked for (or already being done)."""
    decision = scoped.decision
    if not scoped.sends_orders:  # e.g. close the losing legs when none is losing: say so, send nothing
        run = db.session.get(StrategyRun, book.run_id)
        record_risk_event(user_id=book.user_id, event_type=decision.event_type or RiskEventType.MAX_LOSS,
                          action=RiskEventAction.NONE, run=run, account_id=scoped.unit,
                          threshold=decision.threshold, current_value=decision.current_value,
                          detail=f"{decision.reason}; no leg is losing, nothing to close", commit=True)
        return True
    # A leg rule closes its leg only, close_partial the losing legs only: both are partial closes.
    action = RiskEventAction.CLOSE_ALL if scoped.close_all_legs else RiskEventAction.CLOSE_PARTIAL
    return request_closes(book, decision, closes_for(book, scoped), action)[1]


def alert(book: RunBook, scoped: ScopedDecision) -> None:
    """A new alert-only breach: one event, nothing sent."""
    decision = scoped.decision
    run = db.session.get(StrategyRun, book.run_id)
    record_risk_event(user_id=book.user_id, event_type=decision.event_type or RiskEventType.MAX_LOSS,
                      action=RiskEventAction.ALERT_ONLY, run=run, account_id=scoped.unit,
                      threshold=decision.threshold, current_value=decision.current_value,
                      detail=f"{decision.reason} (alert only: nothing was sent)", commit=True)
    logger.warning("run %s alert: %s", book.run_id, decision.reason)


def held_parts(account_id: int, books: list[RunBook]) -> list[tuple[RunBook, AccountBook]]:
    """The account's deciding parts of these runs that hold a position."""
    return [(book, part) for book in books
            if (part := next((a for a in book.accounts if a.account_id == account_id and a.deciding), None))
            and any(part.held(leg.number) for leg in book.legs)]


def close_account_runs(account_id: int, day: date, decision: Decision, books: list[RunBook]) -> list[int]:
    """A daily limit breach: block the account's entries for the day, close its part of every run.
    With nothing left to close (the day's runs closed at a loss already), the block's one risk event
    says so."""
    parts = held_parts(account_id, books)
    blocked = block_account_entries(account_id, day, decision.reason[:1000])
    if not parts:
        if blocked:  # the block and its one event in one transaction
            user_id = db.session.scalar(select(TradingAccount.user_id).where(TradingAccount.id == account_id))
            if user_id is not None and decision.event_type is not None:
                record_risk_event(user_id=user_id, event_type=decision.event_type, action=RiskEventAction.NONE,
                                  account_id=account_id, threshold=decision.threshold,
                                  current_value=decision.current_value,
                                  detail=f"{decision.reason}; no open position to close")
            logger.warning("account %s: %s (nothing open to close)", account_id, decision.reason)
        db.session.commit()
        return []
    db.session.commit()  # blocked first: new entries stay refused even if a close cannot be asked for
    return _close_parts(account_id, decision, parts)


def _close_parts(account_id: int, decision: Decision, parts: list[tuple[RunBook, AccountBook]]) -> list[int]:
    made: list[int] = []
    for book, part in parts:
        made += request_closes(book, decision, [Close(part.run_account_id, None, account_id)],
                               RiskEventAction.CLOSE_ALL)[0]
    return made


def close_blocked_account_again(account_id: int, day: date, books: list[RunBook], retry_after: timedelta
                                ) -> list[int]:
    """An account blocked by a daily limit ends its day flat: each of its parts that still holds a
    position with no exit closing it (the close could not be asked for, its request failed more
    than `retry_after` ago, or an entry filled after the breach) is asked to close again, under the
    limit's own event type; a refusal (the engine offline) is asked again after `retry_after` too.
    Returns the new exit request ids."""
    horizon = utcnow() - retry_after
    parts = [(book, part) for book, part in held_parts(account_id, books)
             if not covered(book.run_id, Close(part.run_account_id, None, account_id))
             and not _failed_since(book.run_id, part.run_account_id, horizon)
             and not _refused_since(book.run_id, account_id, horizon)]
    if not parts:
        return []
    decision = standing_limit_decision(account_id, day)
    logger.warning("account %s: blocked by its daily limit with %d run part(s) still open; closing them again",
                   account_id, len(parts))
    return _close_parts(account_id, decision, parts)


def _failed_since(run_id: int, run_account_id: int, horizon: datetime) -> bool:
    """An exit of this run account (or its whole run) failed after `horizon`: wait before asking again."""
    return db.session.scalar(select(ExitRequest.id).where(
        ExitRequest.run_id == run_id, ExitRequest.status == "failed", ExitRequest.done_at > horizon,
        or_(ExitRequest.run_account_id.is_(None), ExitRequest.run_account_id == run_account_id),
        ExitRequest.leg_number.is_(None)).limit(1)) is not None


def _refused_since(run_id: int, account_id: int, horizon: datetime) -> bool:
    """A daily-limit close of this account's part could not be asked for after `horizon` (its
    refusal is a risk event that did nothing): wait before asking again, one event per wait."""
    return db.session.scalar(select(RiskEvent.id).where(
        RiskEvent.run_id == run_id, RiskEvent.account_id == account_id, RiskEvent.action == RiskEventAction.NONE,
        RiskEvent.event_type.in_([RiskEventType.ACCOUNT_LOSS_LIMIT, RiskEventType.ACCOUNT_PROFIT_LIMIT]),
        RiskEvent.created_at > horizon).limit(1)) is not None


def standing_limit_decision(account_id: int, day: date) -> Decision:
    """The breach behind the account's block on `day`: its latest daily-limit risk event (type,
    threshold, value), the block's reason otherwise."""
    block = db.session.scalars(select(AccountRiskBlock).where(
        AccountRiskBlock.account_id == account_id, AccountRiskBlock.trading_day == day)).first()
    reason = (block.reason if block is not None else "") or "Daily limit breached"
    since = block.created_at - timedelta(minutes=1) if block is not None else utcnow() - timedelta(days=1)
    event = db.session.scalars(select(RiskEvent).where(
        RiskEvent.account_id == account_id, RiskEvent.created_at >= since,
        RiskEvent.event_type.in_([RiskEventType.ACCOUNT_LOSS_LIMIT, RiskEventType.ACCOUNT_PROFIT_LIMIT]))
        .order_by(RiskEvent.id.desc()).limit(1)).first()
    kind = RiskEventType(event.event_type) if event is not None else (
        RiskEventType.ACCOUNT_PROFIT_LIMIT if reason.startswith("Daily profit") else RiskEventType.ACCOUNT_LOSS_LIMIT)
    return Decision(kind, RiskAction.CLOSE_ALL, f"{reason}; asked again: the account's close had not completed",
                    event.threshold if event is not None else None,
                    event.current_value if event is not None else None)


def supertrend_held(book: RunBook, problem: str) -> None:
    """The Supertrend exit cannot be evaluated (e.g. a leg's history is missing): one event, held."""
    run = db.session.get(StrategyRun, book.run_id)
    record_risk_event(user_id=book.user_id, event_type=RiskEventType.SUPERTREND, action=RiskEventAction.HELD,
                      run=run, detail=f"Supertrend exit on hold: {problem}"[:4000], commit=True)
    logger.warning("run %s: Supertrend exit on hold: %s", book.run_id, problem)


def prices_unreliable(book: RunBook, reason: str) -> int:
    """The rules of a run hold on unreliable prices: one event when the span starts (its id)."""
    run = db.session.get(StrategyRun, book.run_id)
    event = record_risk_event(user_id=book.user_id, event_type=RiskEventType.PRICES_UNRELIABLE,
                              action=RiskEventAction.HELD, run=run,
                              detail=f"rules held: prices unreliable ({reason})"[:4000], commit=True)
    return event.id


def prices_reliable_again(event_id: int, seconds: Decimal, held: int) -> None:
    """Close the span's event with how long the rules held."""
    from app.models.risk import RiskEvent

    event = db.session.get(RiskEvent, event_id)
    if event is None:
        return
    event.current_value = seconds
    event.detail = (f"{event.detail}; reliable again after {seconds} s ({held} evaluations held)")[:4000]
    db.session.commit()
