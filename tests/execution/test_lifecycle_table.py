"""The order intent transition table: every (state, event) pair, pure."""

from __future__ import annotations

import itertools

import pytest

from app.domain.order_lifecycle import (
    TRANSITIONS,
    BrokerReport,
    IllegalTransition,
    IntentEvent,
    IntentState,
    event_for_broker_status,
    transition,
)

S, E = IntentState, IntentEvent

EXPECTED = {
    (S.PLANNED, E.CLAIM): S.SENDING,
    (S.PLANNED, E.WITHDRAW): S.NOT_PLACED,
    (S.SENDING, E.ACCEPTED): S.ACCEPTED,
    (S.SENDING, E.FILL): S.FILLED,
    (S.SENDING, E.REJECT): S.REJECTED,
    (S.SENDING, E.NOT_SENT): S.NOT_PLACED,
    (S.SENDING, E.OUTCOME_UNKNOWN): S.UNKNOWN,
    (S.UNKNOWN, E.ADOPT): S.ACCEPTED,
    (S.UNKNOWN, E.NOT_FOUND): S.NOT_PLACED,
    (S.ACCEPTED, E.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.ACCEPTED, E.FILL): S.FILLED,
    (S.ACCEPTED, E.REJECT): S.REJECTED,
    (S.ACCEPTED, E.CANCEL): S.CANCELLED,
    (S.PARTIALLY_FILLED, E.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, E.FILL): S.FILLED,
    (S.PARTIALLY_FILLED, E.CANCEL): S.CANCELLED,
}

ALL_PAIRS = list(itertools.product(IntentState, IntentEvent))


def test_table_is_exactly_the_reviewed_one():
    assert TRANSITIONS == EXPECTED


@pytest.mark.parametrize(("state", "event"), ALL_PAIRS, ids=[f"{s.value}-{e.value}" for s, e in ALL_PAIRS])
def test_transition_every_pair_allowed_reaches_expected_else_raises(state, event):
    if (state, event) in EXPECTED:
        assert transition(state, event) is EXPECTED[(state, event)]
    else:
        with pytest.raises(IllegalTransition):
            transition(state, event)


@pytest.mark.parametrize("state", [S.FILLED, S.REJECTED, S.CANCELLED, S.NOT_PLACED])
def test_transition_terminal_states_accept_no_event(state):
    for event in IntentEvent:
        with pytest.raises(IllegalTransition):
            transition(state, event)


def test_transition_unknown_names_raise_value_error():
    with pytest.raises(ValueError):
        transition("bogus", "claim")
    with pytest.raises(ValueError):
        transition("planned", "explode")


REPORTS = [
    # state, filled before, (status, quantity, filled), expected event
    (S.SENDING, 0, ("open", 65, 0), E.ACCEPTED),
    (S.SENDING, 0, ("complete", 65, 65), E.FILL),
    (S.SENDING, 0, ("trigger pending", 65, 0), E.ACCEPTED),
    (S.ACCEPTED, 0, ("open", 65, 0), None),
    (S.ACCEPTED, 0, ("open", 195, 65), E.PARTIAL_FILL),
    (S.PARTIALLY_FILLED, 65, ("open", 195, 65), None),
    (S.PARTIALLY_FILLED, 65, ("open", 195, 130), E.PARTIAL_FILL),
    (S.PARTIALLY_FILLED, 130, ("complete", 195, 195), E.FILL),
    (S.ACCEPTED, 0, ("COMPLETE", 65, 65), E.FILL),
    (S.ACCEPTED, 0, ("rejected", 65, 0), E.REJECT),
    (S.ACCEPTED, 0, ("cancelled", 65, 0), E.CANCEL),
    (S.ACCEPTED, 0, ("cancelled", 195, 65), E.PARTIAL_FILL),
    (S.PARTIALLY_FILLED, 65, ("cancelled", 195, 65), E.CANCEL),
    (S.PARTIALLY_FILLED, 65, ("cancelled", 195, 130), E.CANCEL),
    (S.ACCEPTED, 0, ("something new", 65, 0), None),
    (S.FILLED, 65, ("complete", 65, 65), None),
    (S.PLANNED, 0, ("complete", 65, 65), None),
]


@pytest.mark.parametrize(("state", "before", "report", "expected"), REPORTS)
def test_event_for_broker_status_maps_report_to_event(state, before, report, expected):
    status, quantity, filled = report
    assert event_for_broker_status(state, before, BrokerReport(status, quantity, filled)) is expected


@pytest.mark.parametrize(("state", "before", "report", "expected"), [r for r in REPORTS if r[3] is not None])
def test_event_for_broker_status_is_always_allowed_in_its_state(state, before, report, expected):
    transition(state, expected)  # never an event the table refuses
