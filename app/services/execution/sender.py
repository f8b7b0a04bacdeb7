"""Sending order intents: claim, place the order, and apply what the broker answered.

Three steps, each its own function, so the engine can do the database parts for many orders at
once: `lifecycle.claim`/`claim_many` (committed before any request), `place` (the HTTP call, no
database), and `record`/`record_many` (the answer as one event per intent). `send` is the three
for one intent.

The claim (planned → sending, a conditional UPDATE) is committed before the request, so only one
sender in any process ever calls place_order for an intent (invariant 1). No transaction is open
during the broker call. The answer becomes exactly one event (invariant 4):

- OrderAck → ACCEPTED with the broker's order id;
- OrderRejected → REJECT with the broker's message;
- OutcomeUnknown → OUTCOME_UNKNOWN (reconciliation decides);
- BrokerUnavailable / HostNotAllowed / BrokerAuthError / RateLimited (answered before the order
  was processed) → NOT_SENT.

Two guards keep one broker order from being counted twice or sent by a deposed leader:

- `still_leading` is asked right before the HTTP call; a sender that lost the lease meanwhile
  applies NOT_SENT ("lease lost before sending") and sends nothing.
- an acknowledged order id that is already linked to another intent of the account (a sibling's
  reconciliation adopted it first) is never applied twice: the intent becomes UNKNOWN, flagged
  with a note naming the clash, and reconciliation finds its own order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select

from app.broker import parsing
from app.broker.client import OpenAlgoClient
from app.broker.errors import (
    BrokerAuthError,
    BrokerError,
    BrokerUnavailable,
    HostNotAllowed,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
)
from app.domain.order_lifecycle import IntentEvent, IntentState
from app.extensions import db
from app.models import TradingAccount
from app.models.execution import OrderIntent
from app.models.types import utcnow
from app.services.accounts import client_for
from app.services.execution.lifecycle import SEND_COLUMNS, Batch, StaleIntent, apply, claim
from app.services.execution.order_updates import OrderUpdates
from app.services.execution.reconciliation import linked_orders, order_owner
from app.services.execution.tracker import apply_report, with_trade_fills

logger = logging.getLogger(__name__)

NOT_SENT_ERRORS = (BrokerUnavailable, HostNotAllowed, BrokerAuthError, RateLimited)
LEASE_LOST = "lease lost before sending"


def _price(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


@dataclass(frozen=True)
class Outcome:
    """What happened to one claimed intent's request: the event to apply and its facts."""

    intent_id: int
    event: IntentEvent
    detail: str
    facts: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None
    first_status: parsing.Order | None = None  # ACCEPTED: the order's status right after
    first_status_via: str = ""  # where it came from: "order update" (pushed) or "status read"


def send(intent_id: int, holder: str, still_leading: Callable[[], bool] | None = None, *,
         read_status: bool = False) -> IntentState | None:
    """Claim and send one planned intent. Returns its state afterwards, or None when another
    sender owns it (or it is not planned any more): nothing was sent then.

    read_status: read the order's status right after the acknowledgement and record both at once.

    `still_leading` (default: always true) is asked right before the request; when it answers
    False the intent becomes NOT_PLACED with the note "lease lost before sending".
    """
    intent = db.session.get(OrderIntent, intent_id)
    if intent is None:
        db.session.rollback()
        return None
    client, refused = client_or_refusal(db.session.get(TradingAccount, intent.account_id))
    if not claim(intent, holder):
        db.session.rollback()
        return None
    order = SimpleNamespace(**{column.name: getattr(intent, column.name) for column in SEND_COLUMNS})
    db.session.commit()  # end the read transaction: nothing is held across the call
    outcome = place(order, client, refused, holder, still_leading, read_status=read_status)
    return record(outcome, intent)


def client_or_refusal(account: TradingAccount | None) -> tuple[OpenAlgoClient | None, Exception | None]:
    """The account's client, or why no order may go to it (deleted, host no longer allowed)."""
    if account is None or account.deleted_at is not None:
        return None, HostNotAllowed("the account no longer exists")
    try:
        return client_for(account), None
    except HostNotAllowed as exc:
        return None, exc
    except Exception as exc:  # an undecryptable key, a failed read: nothing may go to this account now
        logger.exception("No client for account %s", account.id)
        return None, HostNotAllowed(f"the account's client could not be made ({type(exc).__name__})")


def place(order: Any, client: OpenAlgoClient | None, refused: Exception | None, holder: str,
          still_leading: Callable[[], bool] | None = None, *, read_status: bool = False,
          updates: OrderUpdates | None = None) -> Outcome:
    """Place one claimed intent's order (`order`: a row of lifecycle.SEND_COLUMNS) and say what
    happened; no database access, no transaction open. `refused` (from client_or_refusal) sends
    nothing. With `read_status`, the order's first status comes from the account's order-update
    stream (`updates`) when it pushes one in time, else from a status read."""
    intent_id = order.id
    placed_at = time.monotonic()
    try:
        if refused is not None or client is None:
            raise refused or HostNotAllowed("the account no longer exists")
        if still_leading is not None and not still_leading():
            logger.warning("Intent %s not sent by %s: %s", intent_id, holder, LEASE_LOST)
            return Outcome(intent_id, IntentEvent.NOT_SENT, LEASE_LOST,
                           {"note": LEASE_LOST, "rejection_reason": f"Not sent: {LEASE_LOST}"})
        price = _price(order.price) if order.price_type != "MARKET" else None
        ack = client.place_order(symbol=order.symbol, exchange=order.exchange, action=order.action,
                                 quantity=order.quantity, product=order.product, price_type=order.price_type,
                                 price=price)
    except OrderRejected as exc:
        return Outcome(intent_id, IntentEvent.REJECT, str(exc), {"rejection_reason": str(exc)[:1000]})
    except OutcomeUnknown as exc:
        return Outcome(intent_id, IntentEvent.OUTCOME_UNKNOWN, str(exc), {"note": str(exc)[:500]})
    except NOT_SENT_ERRORS as exc:
        return Outcome(intent_id, IntentEvent.NOT_SENT, f"{type(exc).__name__}: {exc}",
                       {"rejection_reason": f"Not sent: {exc}"[:1000]})
    except BrokerError as exc:  # NotOpenAlgo and the like after the request went out: may be placed
        return Outcome(intent_id, IntentEvent.OUTCOME_UNKNOWN, f"{type(exc).__name__}: {exc}",
                       {"note": str(exc)[:500]})
    except Exception as exc:  # a bug or an unexpected transport error: the request may be out
        logger.exception("Sending intent %s failed unexpectedly", intent_id)
        return Outcome(intent_id, IntentEvent.OUTCOME_UNKNOWN, f"{type(exc).__name__}", {"note": "unexpected error"})
    acknowledged = utcnow()
    order_ids = [str(o) for o in ack.order_ids]
    if not order_ids:
        return Outcome(intent_id, IntentEvent.OUTCOME_UNKNOWN, "acknowledged without an order id",
                       {"note": "acknowledged without an order id"})
    # A MARKET order has mostly filled by the time its acknowledgement arrives: read its status
    # now and record both in one transaction (one write instead of two on the busiest path). A
    # crash before that commit leaves the intent SENDING, which recovery reconciles (invariant 8).
    first_status, via = None, ""
    if read_status and updates is not None:
        first_status = updates.first_status(order.account_id, order_ids[0], placed_at=placed_at,
                                            final_only=order.price_type == "MARKET")
        via = "order update" if first_status is not None else ""
    if read_status and first_status is None:
        try:
            first_status, via = with_trade_fills(client, client.order_status(order_ids[0])), "status read"
        except Exception as exc:
            logger.info("First status of intent %s not read: %s", intent_id, exc)
    return Outcome(intent_id, IntentEvent.ACCEPTED, f"order id {order_ids[0]}", {"broker_order_id": order_ids[0]},
                   at=acknowledged, first_status=first_status, first_status_via=via)


def record(outcome: Outcome, intent: OrderIntent | None = None) -> IntentState | None:
    """Apply one outcome to its (SENDING) intent in a transaction of its own. Returns the state
    afterwards, or None when the intent is gone or moved meanwhile (nothing applied)."""
    intent = intent if intent is not None else db.session.get(OrderIntent, outcome.intent_id)
    if intent is None:
        db.session.rollback()
        return None
    if outcome.event is IntentEvent.ACCEPTED:
        return record_accepted(intent, outcome.facts["broker_order_id"], at=outcome.at,
                               first_status=outcome.first_status, via=outcome.first_status_via)
    return _apply(intent, outcome.event, outcome.detail, at=outcome.at, **outcome.facts)


def record_many(outcomes: Sequence[Outcome], unrecorded: list[Outcome] | None = None) -> dict[int, IntentState | None]:
    """Apply many outcomes in one transaction (one commit for a burst of acknowledgements). When
    any of them cannot be applied (an intent moved meanwhile, an unreadable status), the batch is
    rolled back and each is recorded on its own with `record`, which handles those cases; one that
    still fails (the database refused) is appended to `unrecorded`, for the caller to try again."""
    unrecorded = unrecorded if unrecorded is not None else []
    if not outcomes:
        return {}
    ids = [o.intent_id for o in outcomes]
    states: dict[int, IntentState | None] = {}
    try:
        intents = {i.id: i for i in db.session.scalars(select(OrderIntent).where(OrderIntent.id.in_(ids)))}
        # Every acknowledged order id of the batch checked in one query: linked to another intent
        # already (or twice in this batch) is unusual, and recorded alone below (record_accepted).
        acked = {o.intent_id: (intents[o.intent_id].account_id, str(o.facts["broker_order_id"]))
                 for o in outcomes if o.event is IntentEvent.ACCEPTED and o.intent_id in intents}
        linked = linked_orders(set(acked.values()))
        taken: set[tuple[int, str]] = set()
        batch = Batch()
        for outcome in outcomes:
            intent = intents.get(outcome.intent_id)
            if intent is None:
                raise LookupError(f"intent {outcome.intent_id} is gone")
            if outcome.event is IntentEvent.ACCEPTED:
                pair = acked[intent.id]
                if linked.get(pair, set()) - {intent.id} or pair in taken:
                    raise ValueError(f"broker order {pair[1]} is already linked to another intent")
                taken.add(pair)
                states[intent.id] = _accepted_in_transaction(intent, outcome.facts["broker_order_id"], outcome.at,
                                                             outcome.first_status, via=outcome.first_status_via,
                                                             batch=batch)
            else:
                states[intent.id] = apply(intent, outcome.event, detail=outcome.detail, at=outcome.at, commit=False,
                                          batch=batch, **outcome.facts)
        batch.flush()
        db.session.commit()
        return states
    except Exception as exc:
        db.session.rollback()
        db.session.expire_all()  # the objects may carry values of the rolled-back statements
        logger.info("Recording %d answers together failed (%s); recording each alone", len(outcomes), exc)
    for outcome in outcomes:
        try:
            states[outcome.intent_id] = record(outcome)
        except Exception:
            db.session.rollback()
            logger.exception("Intent %s: answer not recorded", outcome.intent_id)
            unrecorded.append(outcome)
    return states


def _accepted_in_transaction(intent: OrderIntent, broker_order_id: str, at: datetime | None,
                             first_status: parsing.Order | None, *, via: str = "",
                             batch: Batch | None = None) -> IntentState:
    """ACCEPTED (+ the first status) inside the caller's transaction; raises on anything unusual
    (a moved intent, an unreadable status). The caller has checked that no other intent holds the
    order id (record_many for its batch, record_accepted for one)."""
    state = apply(intent, IntentEvent.ACCEPTED, detail=f"order id {broker_order_id}", at=at, commit=False,
                  batch=batch, broker_order_id=broker_order_id)
    if first_status is not None:
        state = apply_report(intent, first_status, commit=False, via=via, batch=batch)
    return state


def record_accepted(intent: OrderIntent, broker_order_id: str, *, at: datetime | None = None,
                    first_status: parsing.Order | None = None, via: str = "") -> IntentState | None:
    """Apply a SENDING intent's acknowledgement in a transaction of its own: ACCEPTED with the
    broker's order id (at `at`, when the answer came), unless that id is already linked to another
    intent of the account, in which case the intent becomes UNKNOWN, flagged with a note naming the
    clash (reconciliation then finds its own order). `first_status`, the order's status read right
    after, is applied in the same transaction; one that cannot be applied never keeps the
    acknowledgement from being recorded alone."""
    owner = order_owner(intent.account_id, broker_order_id, except_intent=intent.id)
    if owner is not None:
        note = f"broker order {broker_order_id} is already linked to intent {owner}; not applied twice, reconciling"
        logger.warning("Intent %s: %s", intent.id, note)
        return _apply(intent, IntentEvent.OUTCOME_UNKNOWN, note, note=note[:500], flagged=True)
    try:
        state = _accepted_in_transaction(intent, broker_order_id, at, first_status, via=via)
        db.session.commit()
        return state
    except StaleIntent:
        logger.warning("Intent %s moved while its acknowledgement arrived", intent.id)
        db.session.rollback()
        return None
    except Exception:
        db.session.rollback()
        if first_status is None:
            raise
        logger.exception("Intent %s: first status not applied; recording the acknowledgement alone", intent.id)
        db.session.expire(intent)
        return _apply(intent, IntentEvent.ACCEPTED, f"order id {broker_order_id}", at=at,
                      broker_order_id=broker_order_id)


def _apply(intent: OrderIntent, event: IntentEvent, detail: str, *, at: datetime | None = None,
           **facts: Any) -> IntentState | None:
    try:
        return apply(intent, event, detail=detail, at=at, **facts)
    except StaleIntent:
        logger.warning("Intent %s moved while its answer (%s) arrived", intent.id, event.value)
        db.session.rollback()
        return None
