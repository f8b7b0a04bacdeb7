"""The risk rules' memory of a run as JSON (StrategyRun.risk_state): the trailing stops by scope
unit and the standing breaches, so a new leader continues where the old one stopped."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any, cast

from app.domain.risk_rules import BreachLatch, RunRiskState, TrailingState
from app.domain.risk_settings import RiskEventType

logger = logging.getLogger(__name__)


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def encode_state(state: RunRiskState) -> dict[str, Any]:
    """The rules' memory of a run as JSON: trailing stops by unit, and the standing breaches."""
    def keys(latch: BreachLatch) -> list[list[Any]]:
        return sorted(([*cast(tuple, k)] for k in latch.active), key=repr)

    return {"run_id": state.run_id,
            "trailing": [[unit, t.armed, _text(t.peak), _text(t.stop)] for unit, t in state.trailing],
            "exits": keys(state.exits), "alerts": keys(state.alerts)}


def decode_state(run_id: int, data: dict[str, Any] | None) -> RunRiskState | None:
    if not data or data.get("run_id") != run_id:
        return None
    try:
        def keys(raw: Any) -> frozenset[Any]:
            return frozenset((unit, RiskEventType(kind) if kind else None, leg) for unit, kind, leg in raw or ())

        trailing = tuple((unit, TrailingState(bool(armed), _dec(peak), _dec(stop)))
                         for unit, armed, peak, stop in data.get("trailing") or ())
        exits, alerts = BreachLatch(keys(data.get("exits"))), BreachLatch(keys(data.get("alerts")))
        return RunRiskState(run_id, trailing, exits, alerts)
    except (ValueError, TypeError, ArithmeticError) as exc:
        logger.error("run %s: saved risk state unreadable (%s): starting afresh", run_id, exc)
        return None
