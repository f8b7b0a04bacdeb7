"""Pure decisions of the order engine: which phase of a group may go out, whether a broker's
rejection is final, and what a failed entry means under the run's failure policy.

No Flask, no database, no broker calls: the engine (app/services/execution/) reads rows, turns
them into the small views below, asks these functions, and acts on the answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from app.domain.order_lifecycle import FAILED, IntentState


class FailureAction(StrEnum):
    RETRY = "retry"  # send the failed intent again as attempt + 1
    REPORT = "report"  # keep what filled, flag the account, withdraw the rest
    UNWIND = "unwind"  # keep nothing: close what this account filled in this run


@dataclass(frozen=True)
class IntentView:
    """What the decisions need of one intent of a group."""

    id: int
    phase: int
    state: IntentState
    quantity: int = 0
    filled_quantity: int = 0
    replaces_intent_id: int | None = None


def entry_phase(action: str) -> int:
    """Entries: BUY legs go first (phase 0), SELL legs after them (phase 1)."""
    return 0 if action.upper() == "BUY" else 1


def close_phase(action: str) -> int:
    """Closes: closing the shorts (a BUY) first, then closing the longs (a SELL)."""
    return entry_phase(action)


def live(intents: Iterable[IntentView]) -> list[IntentView]:
    """The intents not superseded by a later attempt (an intent another one replaces is history)."""
    rows = list(intents)
    replaced = {i.replaces_intent_id for i in rows if i.replaces_intent_id is not None}
    return [i for i in rows if i.id not in replaced]


def ready_phase(intents: Sequence[IntentView]) -> int | None:
    """The phase whose planned intents may be sent now, or None.

    A phase is ready when it has planned intents and every live intent of every lower phase is
    FILLED (a superseded attempt counts through the attempt that replaced it).
    """
    current = live(intents)
    planned = sorted({i.phase for i in current if i.state is IntentState.PLANNED})
    if not planned:
        return None
    lowest = planned[0]
    if all(i.state is IntentState.FILLED for i in current if i.phase < lowest):
        return lowest
    return None


def blocked(intents: Sequence[IntentView]) -> bool:
    """True when a lower phase ended without filling, so the planned higher phases can never go."""
    current = live(intents)
    planned = [i.phase for i in current if i.state is IntentState.PLANNED]
    if not planned:
        return False
    lowest = min(planned)
    return any(i.phase < lowest and i.state in (IntentState.REJECTED, IntentState.NOT_PLACED, IntentState.CANCELLED)
               for i in current)


# A rejection is final unless the broker says it was momentary. Unknown texts are final: sending an
# order again that the broker refused for a reason we cannot read is the riskier mistake.
_TRANSIENT = re.compile(
    r"rate.?limit|too many|try again|retry|timed? ?out|timeout|not connected|disconnected|temporar|"
    r"unavailable|busy|throttl|gateway|connection", re.IGNORECASE)
_FINAL = re.compile(
    r"margin|rms|blocked|insufficient|invalid|unknown symbol|not allowed|expired|freeze|lot|banned|"
    r"circuit|price range", re.IGNORECASE)


def is_final_rejection(reason: str | None) -> bool:
    """Is a broker's rejection final (re-sending cannot help)?

    Final: margin shortfall, RMS blocks, invalid or expired symbols, freeze/lot errors, and any
    text we do not recognise. Not final: rate limits, "try again", timeouts, exchange or session
    not connected, temporary unavailability.
    """
    text = (reason or "").strip()
    if not text:
        return True
    if _FINAL.search(text):
        return True
    return _TRANSIENT.search(text) is None


def on_failed_entry(policy: str, *, state: IntentState, attempt: int, retry_limit: int, reason: str | None,
                    resend_not_placed: bool) -> FailureAction:
    """What to do about an entry intent that ended without filling (rejected / not placed / cancelled).

    - NOT_PLACED (the order never reached the broker): re-sent once (attempt 1 → 2) when the
      run allows it, whatever the policy; after that the policy decides.
    - retry: re-send a REJECTED intent with a non-final reason while attempt ≤ retry_limit;
      otherwise it is reported.
    - unwind: close what the account filled in this run.
    - report (and anything else): flag the account and withdraw the rest.
    """
    if state is IntentState.NOT_PLACED and resend_not_placed and attempt == 1:
        return FailureAction.RETRY
    if policy == FailureAction.UNWIND.value:
        return FailureAction.UNWIND
    if policy == FailureAction.RETRY.value and state in FAILED and attempt <= retry_limit \
            and (state is IntentState.NOT_PLACED or not is_final_rejection(reason)):
        return FailureAction.RETRY
    return FailureAction.REPORT


class AccountOutcome(StrEnum):
    OPEN = "open"  # every live entry intent filled
    PARTIAL = "partial"  # something filled, something did not
    FAILED = "failed"  # nothing filled


def account_outcome(intents: Sequence[IntentView]) -> AccountOutcome:
    """The roll-up of an account's entry group once every intent is terminal."""
    current = live(intents)
    filled_any = any(i.filled_quantity > 0 for i in intents)
    if current and all(i.state is IntentState.FILLED for i in current):
        return AccountOutcome.OPEN
    return AccountOutcome.PARTIAL if filled_any else AccountOutcome.FAILED


def reconcile_reads(configured: int, interval: float, read_timeout: float) -> int:
    """How many order-book reads settle an unknown outcome: the configured number, and at least
    enough that they span the read timeout. An order whose answer we waited `read_timeout` for may
    be booked as late again; one booked after the last read would count as not placed, and a
    re-send would make it two."""
    if interval <= 0:
        return max(configured, 1)
    return max(configured, 1 + math.ceil(read_timeout / interval))
