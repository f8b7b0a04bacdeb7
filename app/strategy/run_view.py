"""A run as the run page and GET /api/runs/<id> show it, built from the database alone.

Every worker answers the same from the same rows (no in-process state), so the page is right
with several web workers while the leader's engine writes the rows.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.domain.latency import run_latency
from app.domain.order_lifecycle import IntentState
from app.extensions import db
from app.models.execution import ExitRequest, KillSwitch, OrderIntent, Purpose, RunAccount, RunStatus, StrategyRun

FINAL_RUN = frozenset({RunStatus.CLOSED, RunStatus.FAILED})
OPEN_EXIT = frozenset({"pending", "working"})
STATE_LABELS = {
    IntentState.PLANNED.value: "planned",
    IntentState.SENDING.value: "sent",
    IntentState.ACCEPTED.value: "accepted (open at the broker)",
    IntentState.PARTIALLY_FILLED.value: "partly filled",
    IntentState.FILLED.value: "filled",
    IntentState.REJECTED.value: "rejected",
    IntentState.CANCELLED.value: "cancelled",
    IntentState.UNKNOWN.value: "unknown (reconciling)",
    IntentState.NOT_PLACED.value: "not placed",
}


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _iso(value) -> str | None:
    return None if value is None else value.isoformat()


def held_quantities(run_account: RunAccount, intents: list[OrderIntent]) -> dict[int, int]:
    """{leg number: signed held quantity} from the exits engineer's held.py (the one definition);
    until that module exists, the same rule from the intents: Σ signed fills over all of them."""
    try:
        from app.services.execution.held import held_by_leg
    except ImportError:
        held: dict[int, int] = defaultdict(int)
        for intent in intents:
            if intent.leg_number is not None:
                held[intent.leg_number] += intent.signed_filled
        return dict(held)
    return dict(held_by_leg(run_account))


def _reconciled(intent: OrderIntent) -> str | None:
    """How an unknown outcome was settled ("adopted" / "not found"), None if it never was unknown."""
    events = [e for e in intent.events if e.from_state == IntentState.UNKNOWN.value]
    if not events:
        return None
    return "adopted from the order book" if events[0].event == "adopt" else "not found in the order book"


def intent_json(intent: OrderIntent, clicked_at) -> dict[str, Any]:
    """One child order: its state in words, fills, the broker's reason, flags and latencies."""
    from app.domain.latency import elapsed_ms

    state = intent.state
    label = STATE_LABELS.get(state, state)
    if state == IntentState.FILLED.value and intent.average_price is not None:
        label = f"filled @ {_text(intent.average_price)}"
    elif state == IntentState.PARTIALLY_FILLED.value:
        label = f"partly filled {intent.filled_quantity}/{intent.quantity}"
    elif state == IntentState.REJECTED.value and intent.rejection_reason:
        label = f"rejected: {intent.rejection_reason}"
    reconciled = _reconciled(intent)
    if reconciled and state != IntentState.UNKNOWN.value:
        label = f"{label} (unknown → {reconciled})"
    return {
        "id": intent.id, "purpose": intent.purpose, "leg_number": intent.leg_number, "child": intent.child,
        "attempt": intent.attempt, "action": intent.action, "symbol": intent.symbol, "quantity": intent.quantity,
        "price_type": intent.price_type, "price": _text(intent.price), "state": state, "label": label,
        "filled_quantity": intent.filled_quantity, "average_price": _text(intent.average_price),
        "rejection_reason": intent.rejection_reason, "broker_order_id": intent.broker_order_id,
        "reconciled": reconciled, "flagged": intent.flagged, "note": intent.note,
        "ack_ms": elapsed_ms(clicked_at, intent.acknowledged_at),
        "fill_ms": elapsed_ms(clicked_at, intent.filled_at),
    }


def _account_json(run: StrategyRun, row: RunAccount, intents: list[OrderIntent]) -> dict[str, Any]:
    held = held_quantities(row, intents) if row.skip_reason is None else {}
    by_leg: dict[int, list[OrderIntent]] = defaultdict(list)
    for intent in intents:
        if intent.leg_number is not None:
            by_leg[intent.leg_number].append(intent)
    legs = []
    for leg in run.legs:
        mine = by_leg.get(leg.number, [])
        entries = [i for i in mine if i.purpose == Purpose.ENTRY]
        closes = [i for i in mine if i.purpose != Purpose.ENTRY]
        legs.append({
            "number": leg.number, "label": leg.label, "symbol": leg.symbol, "action": leg.action,
            "ordered": sum(i.quantity for i in entries if i.attempt == 1),
            "filled": sum(i.filled_quantity for i in entries),
            "closed": sum(i.filled_quantity for i in closes),
            "held": held.get(leg.number, 0),
            "intents": [intent_json(i, run.clicked_at) for i in mine],
        })
    return {
        "id": row.id, "account_id": row.account_id, "name": row.account_name, "status": row.status,
        "strategy_lots": row.strategy_lots, "skip_reason": row.skip_reason, "flagged": row.flagged,
        "flag_note": row.flag_note, "position_check": row.position_check,
        "holds": any(held.values()), "legs": legs,
    }


def exit_json(request: ExitRequest, names: dict[int, str]) -> dict[str, Any]:
    """An exit request: what it closes, its status and its report."""
    scope = "whole run" if request.run_account_id is None else names.get(request.run_account_id, "account")
    if request.leg_number is not None:
        scope = f"{scope}, leg {request.leg_number}"
    return {"id": request.id, "run_account_id": request.run_account_id, "leg_number": request.leg_number,
            "scope": scope, "purpose": request.purpose, "reason": request.reason, "status": request.status,
            "created_at": _iso(request.created_at), "done_at": _iso(request.done_at), "report": request.report}


def run_json(run: StrategyRun) -> dict[str, Any]:
    """The whole run page's data (docs/strategies.md "Run page")."""
    intents = list(db.session.scalars(
        select(OrderIntent).where(OrderIntent.run_id == run.id)
        .options(selectinload(OrderIntent.events)).order_by(OrderIntent.id)))
    by_account: dict[int, list[OrderIntent]] = defaultdict(list)
    for intent in intents:
        if intent.run_account_id is not None:
            by_account[intent.run_account_id].append(intent)
    exits = list(db.session.scalars(select(ExitRequest).where(ExitRequest.run_id == run.id)
                                    .order_by(ExitRequest.id)))
    names = {a.id: a.account_name for a in run.accounts}
    latency = run_latency(run.clicked_at, [(i.acknowledged_at, i.filled_at) for i in intents
                                           if i.purpose == Purpose.ENTRY])
    exits_open = any(e.status in OPEN_EXIT for e in exits)
    in_flight = any(i.state not in {"filled", "rejected", "cancelled", "not_placed"} for i in intents)
    return {
        "id": run.id, "strategy_id": run.strategy_id, "strategy_name": run.strategy_name, "status": run.status,
        "trigger": run.trigger, "product": run.product, "failure_policy": run.failure_policy,
        "retry_limit": run.retry_limit, "clicked_at": _iso(run.clicked_at), "entered_at": _iso(run.entered_at),
        "closed_at": _iso(run.closed_at), "note": run.note,
        "final": run.status in FINAL_RUN and not exits_open and not in_flight,
        "latency": {key: value.as_json() for key, value in latency.items()},
        "legs": [{"number": leg.number, "label": leg.label, "symbol": leg.symbol, "exchange": leg.exchange,
                  "action": leg.action, "lots": leg.lots, "lot_size": leg.lot_size,
                  "order_type": leg.order_type} for leg in run.legs],
        "accounts": [_account_json(run, row, by_account.get(row.id, [])) for row in run.accounts],
        "exits": [exit_json(e, names) for e in exits],
        "risk": risk_json(run),
    }


def _rules_text(rules: dict[str, Any] | None) -> list[str]:
    """The run's risk rules in words (the snapshot it was entered with)."""
    if not rules:
        return []
    out = [f"Scope: {str(rules.get('scope', 'per_account')).replace('_', ' ')}"]
    for key, label in (("max_loss", "Max loss"), ("max_profit", "Max profit")):
        if rules.get(key):
            out.append(f"{label} ₹{rules[key]} at base size ({str(rules.get(key + '_action')).replace('_', ' ')})")
    if rules.get("trailing_type"):
        out.append(f"Trailing stop {rules['trailing_value']} {rules['trailing_type']} "
                   f"({str(rules.get('trailing_action')).replace('_', ' ')})")
    for number, leg in sorted((rules.get("legs") or {}).items(), key=lambda item: int(item[0])):
        for key, label in (("stop_loss", "stop loss"), ("target", "target")):
            if leg.get(key):
                unit, value = leg[key]
                out.append(f"Leg {number} {label} {value} {'%' if unit == 'percentage' else 'points'}")
    supertrend = rules.get("supertrend") or {}
    if supertrend.get("enabled"):
        out.append(f"Supertrend {supertrend['period']}, {supertrend['multiplier']} on {supertrend['timeframe']} "
                   f"({supertrend['exit']})")
    return out


def risk_json(run: StrategyRun) -> dict[str, Any]:
    """The risk monitor's part of the run page: the rules, and the monitor's last live view (written by
    the leader about once a second; None until it has evaluated the run)."""
    return {"rules": _rules_text(run.risk_settings), "live": (run.risk_state or {}).get("live")}


def kill_switch_json(press: KillSwitch) -> dict[str, Any]:
    """A kill-switch press: its status and, per account, cancelled / closed / failed / still open."""
    report: Any = press.report or []
    if isinstance(report, dict):  # {"accounts": [...]} or {account id: {...}}
        report = report.get("accounts", list(report.values()))
    accounts = [a for a in report if isinstance(a, dict)] if isinstance(report, list) else []
    return {"id": press.id, "status": press.status, "created_at": _iso(press.created_at),
            "done_at": _iso(press.done_at), "final": press.status == "done", "accounts": accounts}
