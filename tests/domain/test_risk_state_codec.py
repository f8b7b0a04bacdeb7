"""The risk rules' memory survives a change of leader: RunRiskState ↔ JSON, exactly."""

from __future__ import annotations

import json
from decimal import Decimal

from app.domain.risk_rules import BreachLatch, RunRiskState, TrailingState
from app.domain.risk_settings import RiskEventType
from app.services.risk.state import decode_state, encode_state


def test_round_trip_through_json_keeps_trailing_peaks_and_standing_breaches():
    state = RunRiskState(
        7, ((11, TrailingState(True, Decimal("512.35"), Decimal("312.35"))), (None, TrailingState(False, None, None))),
        BreachLatch(frozenset({(11, RiskEventType.MAX_LOSS, None), (12, RiskEventType.LEG_SL, 2)})),
        BreachLatch(frozenset({(None, RiskEventType.MAX_PROFIT, None)})))
    data = json.loads(json.dumps(encode_state(state)))  # as the JSON column stores it
    assert decode_state(7, data) == state


def test_another_runs_or_unreadable_state_starts_afresh():
    data = encode_state(RunRiskState(7))
    assert decode_state(8, data) is None  # a new run never inherits triggers
    assert decode_state(7, None) is None
    assert decode_state(7, {"run_id": 7, "trailing": [[1, True, "not a number", None]]}) is None
    assert decode_state(7, {"run_id": 7, "exits": [[1, "no_such_rule", None]]}) is None
