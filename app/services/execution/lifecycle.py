"""The one way an order intent changes state: `apply(intent, event)`.

It checks the pair against the domain's transition table (app/domain/order_lifecycle.py),
changes the row with a conditional UPDATE (… WHERE state = <the state we read>), appends an
OrderIntentEvent row, and commits, all in one transaction. If another process changed the
intent in between, the UPDATE matches nothing: `StaleIntent` is raised and nothing changes.
`claim` is the same conditional update for planned → sending, which is what makes two
senders unable to send one intent twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, insert, update
from sqlalchemy.orm.attributes import set_committed_value

from app.domain.order_lifecycle import TERMINAL, IntentEvent, IntentState, transition
from app.extensions import db
from app.models.execution import OrderIntent, OrderIntentEvent
from app.models.types import utcnow

logger = logging.getLogger(__name__)

DETAIL_LIMIT = 500
CENT = Decimal("0.01")
# Facts an event may carry onto the row (the broker's status itself never is one).
FACTS = frozenset({"broker_order_id", "filled_quantity", "average_price", "rejection_reason", "note", "flagged"})


class StaleIntent(Exception):
    """The intent is no longer in the state the caller read (another process moved it first)."""


def excerpt(payload: Any) -> str:
    """A short, single-line text of a broker payload for the event history (never a key)."""
    text = payload if isinstance(payload, str) else repr(payload)
    text = " ".join(text.split())
    return text[:DETAIL_LIMIT]


def apply(intent: OrderIntent, event: IntentEvent | str, *, detail: Any = "", at: datetime | None = None,
          holder: str | None = None, commit: bool = True, batch: Batch | None = None,
          **facts: Any) -> IntentState:
    """Apply one event to an intent: check the pair, change the row, append the event, commit.

    Args:
        intent: the row as the caller read it (its `state` is the expected current state).
        event: what happened.
        detail: the broker's payload or a note, stored as an excerpt in the event row.
        at: when it happened (aware UTC; default now).
        holder: the sender's identity, recorded by CLAIM.
        commit: commit the transaction (default); False leaves it to the caller's unit of work.
        batch: defer the row's statements to this Batch (the caller flushes and commits it); the
            pair is checked now, and the object shows the new state at once.
        **facts: broker_order_id, filled_quantity, average_price, rejection_reason, note, flagged.
    Returns:
        The new state.
    Raises:
        IllegalTransition: the event is not allowed in the intent's state (nothing changed).
        StaleIntent: the row's state changed since it was read (nothing changed).
        ValueError: an unknown fact.
    """
    unknown = set(facts) - FACTS
    if unknown:
        raise ValueError(f"unknown intent facts: {', '.join(sorted(unknown))}")
    happened = IntentEvent(event)
    before = IntentState(intent.state)
    after = transition(before, happened)
    moment = at or utcnow()
    values: dict[str, Any] = {"state": after.value, "updated_at": moment, **facts}
    if happened is IntentEvent.CLAIM:
        values["sent_at"] = moment
        values["claimed_by"] = holder
    if after in (IntentState.ACCEPTED, IntentState.PARTIALLY_FILLED, IntentState.FILLED) \
            and intent.acknowledged_at is None:
        values["acknowledged_at"] = moment
    if after is IntentState.FILLED:
        values["filled_at"] = moment
        values.setdefault("filled_quantity", intent.quantity)
    if after in TERMINAL:
        values["finished_at"] = moment
    if values.get("average_price") is not None:
        # As the PRICE column keeps it (2 places), so the object below holds what the row holds.
        values["average_price"] = Decimal(str(values["average_price"])).quantize(CENT, rounding=ROUND_HALF_UP)
    if batch is not None:
        batch.add(intent, before, after, happened, values, excerpt(detail), moment)
        _set_on_object(intent, values)
        return after
    # Core statements built once (module end): the SET clause comes from the parameters' keys, and
    # SQLAlchemy caches the compiled form per key set. Building statements with literal values
    # cost more CPU than running them on the engine's hottest path (every order passes here 3+ times).
    params = {**values, "w_id": intent.id, "w_state": before.value}
    statement = _UPDATE
    if "filled_quantity" in values:  # fills only grow: an older broker read never lowers them
        statement, params["w_filled"] = _UPDATE_GROWING, values["filled_quantity"]
    result = db.session.execute(statement, params)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        raise StaleIntent(f"intent {intent.id} is no longer {before.value}")
    db.session.execute(_INSERT_EVENT, {"intent_id": intent.id, "at": moment, "event": happened.value,
                                       "from_state": before.value, "to_state": after.value,
                                       "detail": excerpt(detail)})
    if commit:
        db.session.commit()
    _set_on_object(intent, values)
    logger.info("intent %s %s: %s -> %s", intent.id, happened.value, before.value, after.value)
    return after


def _set_on_object(intent: OrderIntent, values: dict[str, Any]) -> None:
    # The row holds (or, in a batch, will hold) exactly `values`: put them on the object instead of
    # reading the row back. A session that expires on commit reloads lazily.
    for name, value in values.items():
        set_committed_value(intent, name, value)


class Batch:
    """Several intents' events applied in one transaction with few statements: the recorder's burst
    of acknowledgements and fills (engine._record_loop), where one UPDATE and one INSERT per event
    each cost a trip through SQLAlchemy and a release of the GIL, under a hundred threads.

    `apply(..., batch=b)` checks each pair as it comes (an illegal one raises at once) and records
    what the row must become; `flush()` then changes every row with conditional UPDATEs grouped by
    shape (executemany: … WHERE id = ? AND state = <the state first read>, and for fills AND
    filled_quantity <= the new one) and appends every event row in one INSERT. Several events of
    one intent (accepted, then filled) make one UPDATE. If any row no longer matches, `flush`
    raises StaleIntent and the caller must roll back (and expire the objects, which already show
    the new values); nothing is committed here.
    """

    def __init__(self) -> None:
        self._rows: dict[int, dict[str, Any]] = {}  # intent id -> {"w_state", "values", "growing"}
        self._events: list[dict[str, Any]] = []
        self._logged: list[tuple[int, str, str, str]] = []

    def __len__(self) -> int:
        return len(self._events)

    def add(self, intent: OrderIntent, before: IntentState, after: IntentState, event: IntentEvent,
            values: dict[str, Any], detail: str, moment: datetime) -> None:
        row = self._rows.setdefault(intent.id, {"w_state": before.value, "values": {}, "growing": False})
        row["values"].update(values)
        row["growing"] = row["growing"] or "filled_quantity" in values
        self._events.append({"intent_id": intent.id, "at": moment, "event": event.value,
                             "from_state": before.value, "to_state": after.value, "detail": detail})
        self._logged.append((intent.id, event.value, before.value, after.value))

    def flush(self) -> None:
        if not self._rows:
            return
        shapes: dict[tuple[bool, tuple[str, ...]], list[dict[str, Any]]] = {}
        for intent_id, row in self._rows.items():
            params = {**row["values"], "w_id": intent_id, "w_state": row["w_state"]}
            if row["growing"]:
                params["w_filled"] = row["values"]["filled_quantity"]
            shapes.setdefault((row["growing"], tuple(sorted(row["values"]))), []).append(params)
        for (growing, _), rows in shapes.items():
            result = db.session.execute(_UPDATE_GROWING if growing else _UPDATE, rows)
            if not result.supports_sane_multi_rowcount():  # type: ignore[attr-defined]
                raise StaleIntent("this database driver cannot confirm a batch of conditional updates")
            if result.rowcount != len(rows):  # type: ignore[attr-defined]
                raise StaleIntent(f"{len(rows) - result.rowcount} of {len(rows)} intents moved meanwhile")  # type: ignore[attr-defined]
        db.session.execute(_INSERT_EVENT, self._events)
        for intent_id, event, before, after in self._logged:
            logger.info("intent %s %s: %s -> %s", intent_id, event, before, after)
        self._rows, self._events, self._logged = {}, [], []


def claim(intent: OrderIntent, holder: str) -> bool:
    """Take a planned intent for sending (planned → sending), exactly once across all processes.

    Returns:
        True when this caller now owns the send; False when the intent was not planned any more
        (another sender claimed it, or it was withdrawn). Nothing is sent on False.
    """
    if intent.state != IntentState.PLANNED.value:
        return False
    try:
        apply(intent, IntentEvent.CLAIM, holder=holder, detail=f"claimed by {holder}")
    except StaleIntent:
        return False
    return True


def claim_many(intent_ids: Sequence[int], holder: str, *, at: datetime | None = None) -> list[Row[Any]]:
    """`claim` for many intents in one transaction: each planned one becomes sending (one
    conditional UPDATE for all, … WHERE state = 'planned'), with its event row, committed before
    the caller sends anything. An intent that was not planned any more (claimed by another
    sender, withdrawn) is not in the answer and must not be sent.

    Returns:
        The claimed intents as rows of SEND_COLUMNS (what a sender needs to place the order).
    """
    if not intent_ids:
        return []
    after = transition(IntentState.PLANNED, IntentEvent.CLAIM)
    moment = at or utcnow()
    claimed = db.session.execute(
        update(_ROWS).where(_ROWS.c.id.in_(list(intent_ids)), _ROWS.c.state == IntentState.PLANNED.value)
        .values(state=after.value, updated_at=moment, sent_at=moment, claimed_by=holder)
        .returning(*SEND_COLUMNS)).all()
    if claimed:
        db.session.execute(_INSERT_EVENT, [
            {"intent_id": row.id, "at": moment, "event": IntentEvent.CLAIM.value,
             "from_state": IntentState.PLANNED.value, "to_state": after.value,
             "detail": excerpt(f"claimed by {holder}")} for row in claimed])
    db.session.commit()
    for row in claimed:
        logger.info("intent %s %s: %s -> %s", row.id, IntentEvent.CLAIM.value, IntentState.PLANNED.value,
                    after.value)
    return sorted(claimed, key=lambda row: row.id)


_ROWS = cast(Table, OrderIntent.__table__)
# What placing an intent's order needs (sender.place).
SEND_COLUMNS = (_ROWS.c.id, _ROWS.c.account_id, _ROWS.c.symbol, _ROWS.c.exchange, _ROWS.c.action,
                _ROWS.c.quantity, _ROWS.c.product, _ROWS.c.price_type, _ROWS.c.price)
_WHERE = (_ROWS.c.id == bindparam("w_id"), _ROWS.c.state == bindparam("w_state"))
_UPDATE = update(_ROWS).where(*_WHERE)
_UPDATE_GROWING = update(_ROWS).where(*_WHERE, _ROWS.c.filled_quantity <= bindparam("w_filled"))
_INSERT_EVENT = insert(cast(Table, OrderIntentEvent.__table__))
