"""Writing and reading the risk event log, and the per-account entry blocks of the daily limits.

Every exit path and every risk decision (including "held: prices unreliable") calls
`record_risk_event` once. The functions here add to the current database session and leave the
commit to the caller, so that an event is committed in the same transaction as the exit request
or intents it names (an event never names intents that were rolled back, and an exit is never
committed without its event); `commit=True` is a convenience for callers with nothing else to
commit.

Reading is always scoped to an owner (`owned_events`): another user's events are unreachable,
whatever ids a request carries.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError

from app.domain.risk_settings import EVENT_TYPE_LABELS, RiskEventAction, RiskEventOutcome, RiskEventType
from app.extensions import db
from app.models.accounts import TradingAccount
from app.models.execution import RunAccount, StrategyRun
from app.models.risk import AccountRiskBlock, RiskEvent
from app.models.strategies import Strategy
from app.services.audit import _csv_safe as csv_safe  # the one formula-injection guard (audit CSV)
from app.text_safety import replace_nul
from app.timeutil import ist_day_start_utc, to_ist

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
DETAIL_MAX = 4000
DEFAULT_BLOCK_REASON = "A daily risk limit of this account was reached."


def _amount(value: Decimal | int | None, name: str) -> Decimal | None:
    """A ₹ amount (or price) rounded half-up to the column's 2 decimals, the same on every database."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise ValueError(f"{name} must be a Decimal or an int, got {type(value).__name__}")
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"{name} must be finite, got {value}")
    return number.quantize(CENT, rounding=ROUND_HALF_UP)


def _intent_list(ids: Iterable[int], known: Iterable[int] = ()) -> list[int]:
    """`known` followed by the ids of `ids` not in it yet, in order (our intent ids are ints)."""
    out = list(known)
    for intent_id in ids:
        if isinstance(intent_id, bool) or not isinstance(intent_id, int):
            raise ValueError(f"intent ids are our OrderIntent ids (ints), got {intent_id!r}")
        if intent_id not in out:
            out.append(intent_id)
    return out


def _resolve_context(user_id: int, strategy: Strategy | None, run: StrategyRun | None,
                     run_account: RunAccount | None, account_id: int | None
                     ) -> tuple[StrategyRun | None, int | None, str, int | None]:
    """(run, strategy id, strategy name, account id) of an event, checked to belong to one owner."""
    if run_account is not None:
        if run is None:
            run = run_account.run
        elif run_account.run_id != run.id:
            raise ValueError(f"run account {run_account.id} is not part of run {run.id}")
        if account_id is None:
            account_id = run_account.account_id
        elif account_id != run_account.account_id:
            raise ValueError(f"account {account_id} is not the account of run account {run_account.id}")
    if run is not None and run.user_id != user_id:
        raise ValueError(f"run {run.id} does not belong to user {user_id}")
    if strategy is not None and strategy.user_id != user_id:
        raise ValueError(f"strategy {strategy.id} does not belong to user {user_id}")
    if strategy is not None:
        return run, strategy.id, strategy.name, account_id
    if run is not None:
        return run, run.strategy_id, run.strategy_name, account_id
    return None, None, "", account_id


def record_risk_event(*, user_id: int, event_type: RiskEventType | str, action: RiskEventAction | str,
                      strategy: Strategy | None = None, run: StrategyRun | None = None,
                      run_account: RunAccount | None = None, account_id: int | None = None,
                      threshold: Decimal | int | None = None, current_value: Decimal | int | None = None,
                      exit_request_id: int | None = None, intent_ids: Iterable[int] = (),
                      outcome: RiskEventOutcome | str | None = None, detail: str = "",
                      at: datetime | None = None, commit: bool = False) -> RiskEvent:
    """Add one risk event to the session (the caller commits, with the exit it describes).

    Args:
        user_id: the owner (the strategy's and the run's user); the only key the page reads by.
        event_type: what fired or held (RiskEventType or its value).
        action: what was done (RiskEventAction or its value): close_all, close_partial,
            alert_only, held (the rule did not act, e.g. on an unreliable price) or none.
        strategy, run, run_account: what the event is about. The strategy's id and name default
            to the run's (the name is copied so the event stays readable after a delete); the run
            defaults to the run account's run.
        account_id: the account; defaults to the run account's; None = the accounts combined.
        threshold, current_value: the rule's numbers (₹, or a price for leg rules, or seconds of
            price age), rounded half-up to 2 decimals.
        exit_request_id: the exit request the decision created, if any.
        intent_ids: our OrderIntent ids of the exit orders (never broker order ids).
        outcome: pending / filled / partial / failed; defaults to pending when intents are named.
        detail: the reason in words (NUL replaced, cut to 4,000 characters).
        at: the decision's instant (aware); defaults to now.
        commit: commit the session now.
    Returns:
        The new RiskEvent (flushed, so its id is set).
    Raises:
        ValueError: an unknown type, action or outcome; a non-finite or non-Decimal number; or a
            strategy, run or run account that belongs to another user or another run.
    """
    kind, taken = RiskEventType(event_type), RiskEventAction(action)
    ids = _intent_list(intent_ids)
    result = RiskEventOutcome(outcome) if outcome is not None else (RiskEventOutcome.PENDING if ids else None)
    run, strategy_id, strategy_name, account_id = _resolve_context(user_id, strategy, run, run_account, account_id)
    event = RiskEvent(
        user_id=user_id, strategy_id=strategy_id, strategy_name=strategy_name[:100],
        run_id=run.id if run is not None else None,
        run_account_id=run_account.id if run_account is not None else None, account_id=account_id,
        event_type=kind.value, threshold=_amount(threshold, "threshold"),
        current_value=_amount(current_value, "current_value"), action=taken.value,
        exit_request_id=exit_request_id, intent_ids=ids, outcome=result.value if result else None,
        detail=replace_nul(detail or "")[:DETAIL_MAX])
    if at is not None:
        event.created_at = at
    db.session.add(event)
    db.session.flush()
    logger.info("risk event %s type=%s action=%s user=%s run=%s account=%s threshold=%s value=%s intents=%s",
                event.id, kind.value, taken.value, user_id, event.run_id, account_id, event.threshold,
                event.current_value, ids)
    if commit:
        db.session.commit()
    return event


def update_outcome(event_id: int, outcome: RiskEventOutcome | str, intent_ids: Iterable[int] | None = None, *,
                   commit: bool = False) -> RiskEvent | None:
    """Record how the event's exit intents ended (the caller commits unless commit=True).

    Args:
        event_id: the event.
        outcome: pending / filled / partial / failed.
        intent_ids: intents to add to those the event names (a retry's new close intents); the
            ones named already are kept, in order, without duplicates.
    Returns:
        The event, or None when there is no such event.
    Raises:
        ValueError: an unknown outcome or an intent id that is not an int.
    """
    result = RiskEventOutcome(outcome)
    event = db.session.get(RiskEvent, event_id)
    if event is None:
        logger.warning("risk event %s not found: outcome %s not recorded", event_id, result.value)
        return None
    event.outcome = result.value
    if intent_ids is not None:
        event.intent_ids = _intent_list(intent_ids, event.intent_ids or [])  # a new list: JSON is not mutable-tracked
    if commit:
        db.session.commit()
    return event


# --- entry blocks of the account daily limits -----------------------------------------------------

def block_account_entries(account_id: int, trading_day: date, reason: str, *, commit: bool = False) -> bool:
    """Refuse new entries on the account for the rest of the IST trading day (idempotent).

    Args:
        account_id: the account whose daily loss or profit limit was breached.
        trading_day: the IST trading day; the next day has no block.
        reason: shown wherever the block is (dashboard, refused entry); a blank one gets a default.
        commit: commit the session now (otherwise the caller commits).
    Returns:
        True when this call blocked the account; False when it was blocked already that day (the
        first reason stands). Two processes blocking at once give one row: the unique
        (account, day) key decides, inside a savepoint, so the caller's other work survives.
    """
    if entries_blocked(account_id, trading_day) is not None:
        return False
    text = replace_nul(reason or "").strip()[:DETAIL_MAX] or DEFAULT_BLOCK_REASON
    try:
        with db.session.begin_nested():
            db.session.add(AccountRiskBlock(account_id=account_id, trading_day=trading_day, reason=text))
    except IntegrityError:
        return False
    logger.info("entries blocked on account %s for %s: %s", account_id, trading_day, text)
    if commit:
        db.session.commit()
    return True


def entries_blocked(account_id: int, trading_day: date) -> str | None:
    """The reason new entries on the account are refused on `trading_day` (IST), or None."""
    reason = db.session.scalar(select(AccountRiskBlock.reason).where(
        AccountRiskBlock.account_id == account_id, AccountRiskBlock.trading_day == trading_day))
    if reason is None:
        return None
    return reason or DEFAULT_BLOCK_REASON


def blocked_accounts(account_ids: Iterable[int], trading_day: date) -> dict[int, str]:
    """{account id: reason} of the accounts among `account_ids` blocked on `trading_day` (one query)."""
    ids = list(account_ids)
    if not ids:
        return {}
    rows = db.session.execute(select(AccountRiskBlock.account_id, AccountRiskBlock.reason).where(
        AccountRiskBlock.account_id.in_(ids), AccountRiskBlock.trading_day == trading_day))
    return {account_id: reason or DEFAULT_BLOCK_REASON for account_id, reason in rows}


# --- reading the log ------------------------------------------------------------------------------

@dataclass(frozen=True)
class RiskEventFilter:
    """The page's filters. account_id and combined_only exclude each other (combined wins)."""

    strategy_id: int | None = None
    account_id: int | None = None
    combined_only: bool = False  # only events about the accounts combined (account_id NULL)
    event_type: RiskEventType | None = None
    day: date | None = None  # an IST calendar day


def owned_events(user_id: int, flt: RiskEventFilter | None = None) -> Select[RiskEvent]:
    """The user's risk events, filtered, newest first. Every read of the log starts here.

    A filter naming another user's strategy or account finds nothing: the owner condition is
    always part of the query, so such an id is never confirmed.
    """
    flt = flt or RiskEventFilter()
    stmt = select(RiskEvent).where(RiskEvent.user_id == user_id)
    if flt.strategy_id is not None:
        stmt = stmt.where(RiskEvent.strategy_id == flt.strategy_id)
    if flt.combined_only:
        stmt = stmt.where(RiskEvent.account_id.is_(None))
    elif flt.account_id is not None:
        stmt = stmt.where(RiskEvent.account_id == flt.account_id)
    if flt.event_type is not None:
        stmt = stmt.where(RiskEvent.event_type == flt.event_type.value)
    if flt.day is not None:
        start = ist_day_start_utc(flt.day)
        stmt = stmt.where(RiskEvent.created_at >= start,
                          RiskEvent.created_at < ist_day_start_utc(flt.day + timedelta(days=1)))
    return stmt.order_by(RiskEvent.created_at.desc(), RiskEvent.id.desc())


def account_names(user_id: int) -> dict[int, str]:
    """{account id: name} of all the user's accounts, deleted ones included (old events name them)."""
    rows = db.session.execute(select(TradingAccount.id, TradingAccount.account_name, TradingAccount.deleted_at)
                              .where(TradingAccount.user_id == user_id).order_by(TradingAccount.account_name))
    return {account_id: name + (" (deleted)" if deleted else "") for account_id, name, deleted in rows}


def event_strategies(user_id: int) -> dict[int, str]:
    """{strategy id: name} of the strategies the user's events name (for the strategy filter)."""
    rows = db.session.execute(select(RiskEvent.strategy_id, RiskEvent.strategy_name).distinct()
                              .where(RiskEvent.user_id == user_id, RiskEvent.strategy_id.is_not(None)))
    return dict(sorted(((sid, name) for sid, name in rows if sid is not None), key=lambda item: item[1].lower()))


def account_label(event: RiskEvent, names: Mapping[int, str]) -> str:
    if event.account_id is None:
        return "Combined"
    return names.get(event.account_id, f"Account {event.account_id}")


def type_label(event: RiskEvent) -> str:
    try:
        return EVENT_TYPE_LABELS[RiskEventType(event.event_type)]
    except ValueError:
        return event.event_type


CSV_HEADER = ["time_ist", "time_utc", "strategy", "run_id", "account", "event_type", "threshold",
              "current_value", "action", "exit_request_id", "intent_ids", "outcome", "detail"]


def _number(value: Decimal | None) -> str:
    # Written from a Decimal: digits, a point and maybe a leading minus; never a formula.
    return "" if value is None else format(value, "f")


def events_csv(events: Iterable[RiskEvent], names: Mapping[int, str]) -> str:
    """The events as CSV (csv module quoting). Text cells a user controls (strategy and account
    names, the detail) are guarded against spreadsheet formula injection."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    for e in events:
        writer.writerow([
            to_ist(e.created_at).strftime("%Y-%m-%d %H:%M:%S IST"),
            e.created_at.isoformat(),
            csv_safe(e.strategy_name or ""),
            "" if e.run_id is None else str(e.run_id),
            csv_safe(account_label(e, names)),
            e.event_type,
            _number(e.threshold),
            _number(e.current_value),
            e.action,
            "" if e.exit_request_id is None else str(e.exit_request_id),
            " ".join(str(i) for i in e.intent_ids or []),
            e.outcome or "",
            csv_safe(e.detail or ""),
        ])
    return buffer.getvalue()
