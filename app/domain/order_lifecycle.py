"""The order intent lifecycle: states, events and the one table that connects them.

Pure: no Flask, no database, no broker JSON. Every change of an intent's state goes through
`transition(state, event)` (the service's `apply` calls it), so the table below is the whole
truth about which changes are possible. A broker's status is never copied into an intent: it
is turned into an event by `event_for_broker_status` and applied like any other.

    planned ──claim──▶ sending ──accepted──▶ accepted ──partial_fill──▶ partially_filled ──fill──▶ filled
       │                  │  ╲                  │  ╲                        │  ╲
    withdraw           not_sent rejected     fill  rejected/cancelled    partial_fill  cancelled
       ▼                  ▼       ▼                                     (more fills)
    not_placed       not_placed rejected
                          │
                   outcome_unknown ──▶ unknown ──adopt──▶ accepted (then the broker's status events)
                                          └──not_found──▶ not_placed
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class IntentState(StrEnum):
    PLANNED = "planned"  # committed, not yet claimed by a sender
    SENDING = "sending"  # claimed by exactly one sender; the request may be on the wire
    ACCEPTED = "accepted"  # the broker has it (open, trigger pending), nothing filled yet
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    REJECTED = "rejected"
    CANCELLED = "cancelled"  # cancelled at the broker (a partly filled order keeps its fills)
    UNKNOWN = "unknown"  # the request may have reached the broker; reconciliation decides
    NOT_PLACED = "not_placed"  # never reached the broker, or reconciliation found no order


class IntentEvent(StrEnum):
    CLAIM = "claim"  # a sender took the intent (conditional update planned → sending)
    WITHDRAW = "withdraw"  # never to be sent (its BUY legs failed, the run was closed first)
    NOT_SENT = "not_sent"  # the request never reached the server (connection refused, DNS)
    ACCEPTED = "accepted"  # the broker answered with an order id / reports it open
    OUTCOME_UNKNOWN = "outcome_unknown"  # timeout, cut connection, unreadable answer, 5xx after send
    ADOPT = "adopt"  # reconciliation found the order in the order book
    NOT_FOUND = "not_found"  # reconciliation read the book long enough and found nothing
    PARTIAL_FILL = "partial_fill"
    FILL = "fill"
    REJECT = "reject"
    CANCEL = "cancel"


S, E = IntentState, IntentEvent

# (state, event) -> next state. Anything not listed is refused.
TRANSITIONS: dict[tuple[IntentState, IntentEvent], IntentState] = {
    (S.PLANNED, E.CLAIM): S.SENDING,
    (S.PLANNED, E.WITHDRAW): S.NOT_PLACED,
    (S.SENDING, E.ACCEPTED): S.ACCEPTED,
    # Brokers that fill a MARKET order before answering report it complete in the first status read.
    (S.SENDING, E.FILL): S.FILLED,
    (S.SENDING, E.REJECT): S.REJECTED,  # refused at placement (HTTP 400 with a reason)
    (S.SENDING, E.NOT_SENT): S.NOT_PLACED,
    (S.SENDING, E.OUTCOME_UNKNOWN): S.UNKNOWN,
    (S.UNKNOWN, E.ADOPT): S.ACCEPTED,  # the order's own status follows as events
    (S.UNKNOWN, E.NOT_FOUND): S.NOT_PLACED,
    (S.ACCEPTED, E.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.ACCEPTED, E.FILL): S.FILLED,
    # RMS checks run after the order id is returned: an accepted order can still be rejected.
    (S.ACCEPTED, E.REJECT): S.REJECTED,
    (S.ACCEPTED, E.CANCEL): S.CANCELLED,
    # More fills arrive in parts; each is an event of its own, the state stays.
    (S.PARTIALLY_FILLED, E.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, E.FILL): S.FILLED,
    # The rest of a partly filled order cancelled (by us, or expired at the close): the fills stay.
    (S.PARTIALLY_FILLED, E.CANCEL): S.CANCELLED,
}

TERMINAL = frozenset({S.FILLED, S.REJECTED, S.CANCELLED, S.NOT_PLACED})
# States in which the broker may hold (or fill) part of the order: exits and checks count them.
AT_BROKER = frozenset({S.ACCEPTED, S.PARTIALLY_FILLED})
# States that need a look at the broker before anything else is decided.
IN_DOUBT = frozenset({S.SENDING, S.UNKNOWN})
# Every request to place the intent was refused or never happened: nothing can be filled.
FAILED = frozenset({S.REJECTED, S.NOT_PLACED})


class IllegalTransition(Exception):
    """An event that is not allowed in the intent's current state; nothing was changed."""

    def __init__(self, state: IntentState, event: IntentEvent):
        super().__init__(f"event {event.value!r} is not allowed in state {state.value!r}")
        self.state = state
        self.event = event


def transition(state: IntentState | str, event: IntentEvent | str) -> IntentState:
    """The state an intent reaches when `event` happens in `state`.

    Raises:
        IllegalTransition: the pair is not in TRANSITIONS.
        ValueError: an unknown state or event name.
    """
    current, happened = IntentState(state), IntentEvent(event)
    try:
        return TRANSITIONS[(current, happened)]
    except KeyError:
        raise IllegalTransition(current, happened) from None


def is_terminal(state: IntentState | str) -> bool:
    return IntentState(state) in TERMINAL


# --- broker statuses as events -----------------------------------------------------------------

OPEN_STATUSES = frozenset({"open", "trigger pending", "trigger_pending", "pending", "validation pending",
                           "put order req received", "modified"})
COMPLETE_STATUSES = frozenset({"complete", "completed", "filled", "traded"})
REJECTED_STATUSES = frozenset({"rejected"})
CANCELLED_STATUSES = frozenset({"cancelled", "canceled", "expired", "lapsed"})


@dataclass(frozen=True)
class BrokerReport:
    """What the broker says about one order now (parsed by the adapter, numbers already typed)."""

    status: str
    quantity: int
    filled_quantity: int


def event_for_broker_status(state: IntentState | str, filled_before: int, report: BrokerReport) -> IntentEvent | None:
    """The event a broker's report means for an intent in `state`, or None when it adds nothing.

    A report never moves an intent backwards: an "open" order for an accepted intent, or the
    same filled quantity again, is None. An unknown status string is None (the order is read
    again later), never a guess. The caller applies the event with the report's filled
    quantity and average price as its facts.

    Args:
        state: the intent's current state (SENDING, ACCEPTED or PARTIALLY_FILLED).
        filled_before: the filled quantity the intent already records.
        report: the broker's status, the order's quantity and its filled quantity.
    Returns:
        FILL, PARTIAL_FILL, REJECT, CANCEL, ACCEPTED (only from SENDING) or None.
    """
    current = IntentState(state)
    if current not in (S.SENDING, S.ACCEPTED, S.PARTIALLY_FILLED):
        return None
    status = report.status.strip().lower()
    filled = max(0, report.filled_quantity)
    more = filled > filled_before
    if status in COMPLETE_STATUSES:
        return E.FILL
    if current is S.SENDING and (status in OPEN_STATUSES or status in CANCELLED_STATUSES
                                 or (status in REJECTED_STATUSES and filled > 0)):
        return E.ACCEPTED  # seen first as accepted; the rest follows on the next read
    if status in REJECTED_STATUSES or status in CANCELLED_STATUSES:
        if filled == 0 and status in REJECTED_STATUSES:
            return E.REJECT
        if more and current is S.ACCEPTED:
            return E.PARTIAL_FILL  # record the fills first; the end follows on the next read
        return E.CANCEL
    if status in OPEN_STATUSES and more and filled < report.quantity:
        return E.PARTIAL_FILL
    return None
