"""Tracking accepted intents: read the broker's order status and apply it as an event.

A broker's status is never copied into an intent: `event_for_broker_status` turns the report
into FILL / PARTIAL_FILL / REJECT / CANCEL (or nothing new) and lifecycle.apply records it with
the report's filled quantity and average price as facts.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from decimal import Decimal
from typing import Any

from app.broker import parsing
from app.broker.client import OpenAlgoClient
from app.broker.errors import BrokerError
from app.domain.order_lifecycle import (
    AT_BROKER,
    CANCELLED_STATUSES,
    REJECTED_STATUSES,
    BrokerReport,
    IntentEvent,
    IntentState,
    event_for_broker_status,
)
from app.extensions import db
from app.models import TradingAccount
from app.models.execution import OrderIntent
from app.services.accounts import client_for
from app.services.execution.lifecycle import Batch, StaleIntent, apply

logger = logging.getLogger(__name__)


# An order that ended without completing may still have filled in part.
_ENDED_UNFILLED = CANCELLED_STATUSES | REJECTED_STATUSES


def with_trade_fills(client: OpenAlgoClient, order: parsing.Order) -> parsing.Order:
    """The order with its filled quantity and average price known.

    A live OpenAlgo server's order status and order book rows carry no filled quantity (only the
    sandbox adds one, ../shared/OPENALGO_API.md): read as they come, an order that filled 130 of
    195 and was then cancelled would count as nothing filled, and its leg would be sent again. For
    an order that ended without completing (cancelled, rejected) and says nothing of its fills,
    its trades in the tradebook are summed. Raises BrokerError when the tradebook cannot be read
    (the caller reads again later rather than guess).
    """
    if order.filled_quantity is not None or order.status.strip().lower() not in _ENDED_UNFILLED:
        return order
    trades = [t for t in client.tradebook() if t.order_id == order.order_id]
    filled = sum(t.quantity for t in trades)
    average = (sum((t.average_price * t.quantity for t in trades), Decimal(0)) / filled) if filled else None
    return replace(order, filled_quantity=filled, average_price=average if filled else order.average_price)


def apply_report(intent: OrderIntent, order: parsing.Order, *, commit: bool = True, via: str = "",
                 batch: Batch | None = None) -> IntentState:
    """Apply what the broker reports about the intent's order; returns the intent's state after it.

    A report may need two events (e.g. an order that filled partly and then was cancelled is first
    recorded as PARTIAL_FILL, then CANCEL): events are applied until the report adds nothing.
    commit=False leaves the transaction to the caller (the sender commits the acknowledgement and
    the first status in one). `via` names the report's source in the event's detail ("order
    update": pushed on the account's stream; "status read"). `batch`: the caller's lifecycle.Batch
    (its statements deferred to the batch's flush).
    """
    for _ in range(3):
        filled = order.filled_quantity
        if filled is None:
            filled = order.quantity if order.status.strip().lower() in ("complete", "completed", "filled",
                                                                        "traded") else 0
        report = BrokerReport(status=order.status, quantity=order.quantity, filled_quantity=filled)
        event = event_for_broker_status(intent.state, intent.filled_quantity, report)
        if event is None:
            break
        facts: dict[str, Any] = {}
        if event in (IntentEvent.FILL, IntentEvent.PARTIAL_FILL, IntentEvent.CANCEL):
            facts["filled_quantity"] = min(filled, intent.quantity)
            if order.average_price is not None and filled > 0:
                facts["average_price"] = order.average_price
        if event is IntentEvent.REJECT:
            facts["rejection_reason"] = (order.rejection_reason or "rejected by the broker")[:1000]
        if event is IntentEvent.ACCEPTED and order.order_id and intent.broker_order_id is None:
            facts["broker_order_id"] = order.order_id
        detail = f"{order.status} filled {filled}/{order.quantity}"
        if order.rejection_reason:
            detail += f": {order.rejection_reason}"
        if via:
            detail += f" (via {via})"
        apply(intent, event, detail=detail, commit=commit, batch=batch, **facts)
    return IntentState(intent.state)


def track(intent_id: int) -> IntentState | None:
    """Read the order status of one accepted intent once and apply it.

    Returns the state afterwards, or None when the intent is gone or moved on elsewhere. A broker
    error is logged and the intent stays as it is (read again later).
    """
    intent = db.session.get(OrderIntent, intent_id)
    if intent is None or IntentState(intent.state) not in AT_BROKER | {IntentState.SENDING} \
            or not intent.broker_order_id:
        db.session.rollback()
        return None if intent is None else IntentState(intent.state)
    account = db.session.get(TradingAccount, intent.account_id)
    db.session.commit()
    try:
        if account is None:
            return IntentState(intent.state)
        client = client_for(account)
        order = with_trade_fills(client, client.order_status(intent.broker_order_id))
    except BrokerError as exc:
        logger.info("Order status of intent %s not read: %s", intent_id, exc)
        return IntentState(intent.state)
    try:
        return apply_report(intent, order, via="status read")
    except StaleIntent:
        db.session.rollback()
        return None


def cancel(intent_id: int) -> bool:
    """Ask the broker to cancel an accepted intent's order (the status read records the outcome).
    True when the broker took the cancel; False when it refused it or it could not be sent (logged)."""
    intent = db.session.get(OrderIntent, intent_id)
    if intent is None or IntentState(intent.state) not in AT_BROKER or not intent.broker_order_id:
        db.session.rollback()
        return False
    account = db.session.get(TradingAccount, intent.account_id)
    db.session.commit()
    if account is None:
        return False
    try:
        client_for(account).cancel_order(intent.broker_order_id)
    except BrokerError as exc:
        logger.info("Cancel of intent %s refused: %s", intent_id, exc)
        return False
    except Exception:  # an undecryptable key: no cancel reaches the account; its caller goes on
        logger.exception("Cancel of intent %s not sent", intent_id)
        return False
    return True
