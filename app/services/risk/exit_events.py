"""Risk events of the exit paths (issue 10, point 5): every close writes one.

The exit manager calls `exit_requested` when a close is asked for (a manual exit from the run
page, the scheduled exit and square-off) and `exit_settled` when the request is done or failed;
the kill switch calls `kill_switch_pressed` and `kill_switch_settled`. The risk monitor writes its
own event with the decision's numbers and links it to its exit request, so `exit_settled` fills in
the intents and the outcome of every event that points at the request, whoever wrote it.

The caller commits: the event is part of the same transaction as the request it describes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from app.domain.risk_settings import RiskEventAction, RiskEventOutcome, RiskEventType
from app.extensions import db
from app.models.execution import ExitRequest, KillSwitch, OrderIntent, Purpose, StrategyRun
from app.models.risk import RiskEvent
from app.services.risk.events import record_risk_event

logger = logging.getLogger(__name__)

# The event an exit request writes when it is asked for, by purpose. Risk exits are written by the
# monitor (with the rule's numbers); an unwind is the entry's failure policy, audited as such.
EVENT_BY_PURPOSE: dict[str, RiskEventType] = {
    Purpose.EXIT: RiskEventType.MANUAL_EXIT,
    Purpose.MANUAL: RiskEventType.MANUAL_EXIT,
    Purpose.SQUARE_OFF: RiskEventType.SQUARE_OFF,
}


@dataclass(frozen=True)
class RiskNote:
    """A risk decision that asks for an exit: written as the exit request's risk event."""

    event_type: RiskEventType
    action: RiskEventAction
    detail: str
    threshold: Decimal | None = None
    current_value: Decimal | None = None
    account_id: int | None = None  # None: the run's accounts combined


def exit_requested(request: ExitRequest, run: StrategyRun, event_type: RiskEventType | None = None,
                   note: RiskNote | None = None) -> RiskEvent | None:
    """Add the risk event of a new exit request (flushed, not committed): the risk monitor's `note`,
    or the purpose's event; None for an unwind (the entry's failure policy, audited as such)."""
    if note is not None:
        return record_risk_event(user_id=request.user_id, event_type=note.event_type, action=note.action, run=run,
                                 account_id=note.account_id, threshold=note.threshold,
                                 current_value=note.current_value, exit_request_id=request.id, detail=note.detail)
    kind = event_type or EVENT_BY_PURPOSE.get(request.purpose)
    if kind is None:
        return None
    scope = "the whole run"
    if request.run_account_id is not None:
        scope = f"run account {request.run_account_id}"
    if request.leg_number is not None:
        scope += f", leg {request.leg_number}"
    account_id = None
    if request.run_account_id is not None:
        account_id = next((a.account_id for a in run.accounts if a.id == request.run_account_id), None)
    return record_risk_event(user_id=request.user_id, event_type=kind, action=RiskEventAction.CLOSE_ALL, run=run,
                             account_id=account_id, exit_request_id=request.id,
                             detail=f"{request.reason or kind.value} ({scope})")


def _outcome(intents: list[OrderIntent], failed: bool) -> RiskEventOutcome:
    if failed:
        return RiskEventOutcome.PARTIAL if any(i.filled_quantity for i in intents) else RiskEventOutcome.FAILED
    return RiskEventOutcome.FILLED


def _settle(events: list[RiskEvent], intents: list[OrderIntent], failed: bool) -> None:
    outcome = _outcome(intents, failed)
    ids = [i.id for i in intents]
    for event in events:
        known = list(event.intent_ids or [])
        event.intent_ids = known + [i for i in ids if i not in known]  # a new list: JSON is not mutable-tracked
        event.outcome = outcome.value
        logger.info("risk event %s settled: %s, intents %s", event.id, outcome.value, event.intent_ids)


def exit_settled(request: ExitRequest, *, failed: bool) -> None:
    """Name the close intents of a finished exit request, and its outcome, on every risk event that
    points at the request (the caller commits)."""
    events = list(db.session.scalars(select(RiskEvent).where(RiskEvent.exit_request_id == request.id)))
    if not events:
        return
    intents = list(db.session.scalars(select(OrderIntent).where(
        OrderIntent.exit_request_id == request.id).order_by(OrderIntent.id)))
    _settle(events, intents, failed)


def kill_switch_pressed(press: KillSwitch) -> RiskEvent:
    """The risk event of a kill switch press (flushed, not committed)."""
    return record_risk_event(user_id=press.user_id, event_type=RiskEventType.KILL_SWITCH,
                             action=RiskEventAction.CLOSE_ALL,
                             detail=f"kill switch {press.id}: cancel every open order, close every position")


def kill_switch_settled(press: KillSwitch, report: dict[str, Any]) -> None:
    """Name the kill switch's close intents and its outcome on its risk event (the caller commits).
    The press keeps its event's id in its report (`risk_event_id`)."""
    event = db.session.get(RiskEvent, report.get("risk_event_id") or 0)
    if event is None:
        return
    intents = list(db.session.scalars(select(OrderIntent).where(
        OrderIntent.kill_switch_id == press.id).order_by(OrderIntent.id)))
    accounts = [a for a in (report.get("accounts") or {}).values() if isinstance(a, dict)]
    failed = any(a.get("still_open") or a.get("failed") for a in accounts)
    _settle([event], intents, failed)
