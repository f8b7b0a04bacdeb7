"""Reconciliation: unknown order outcomes against the order book, runs against the position book.

OpenAlgo has no client order id, so an order whose answer was lost is found by what it was: the
same symbol, exchange, action, product and quantity, an order id not linked to another intent of
the account, placed no earlier than our send time minus a clock-skew allowance (invariant 5).
One candidate is adopted; several → the earliest is adopted and the intent flagged; none after
EXECUTION_RECONCILE_READS reads → not placed.

A sibling's order is never adopted: while another intent of the account with the same symbol,
exchange, action, product and quantity is still SENDING, its order may be in the book without its
id recorded yet, so no decision is taken (PENDING, even on the last read). The links and the
sending siblings are read after the book, and the chosen id is checked once more right before
ADOPT; an id linked meanwhile is refused and the intent flagged.

The position check (invariant 6) compares, per symbol/exchange/product, the signed fills of all a
run account's intents with the account's position book.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import select, update

from app.broker import parsing
from app.broker.errors import BrokerError
from app.domain.instruments import Action
from app.domain.order_lifecycle import IntentEvent, IntentState
from app.extensions import db
from app.models import TradingAccount
from app.models.execution import OrderIntent, RunAccount
from app.models.types import utcnow
from app.services import audit
from app.services.accounts import client_for
from app.services.execution.lifecycle import StaleIntent, apply
from app.services.execution.tracker import apply_report, with_trade_fills

logger = logging.getLogger(__name__)

IST = ZoneInfo("Asia/Kolkata")
_FORMATS = ("%d-%b-%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%d-%m-%Y %H:%M:%S", "%Y-%m-%dT%H:%M:%S")


class Outcome(StrEnum):
    ADOPTED = "adopted"
    NOT_FOUND = "not_found"
    PENDING = "pending"  # nothing found yet; read again later
    SKIPPED = "skipped"  # not unknown any more, or the book could not be read


def broker_time(text: str) -> datetime | None:
    """A broker's order timestamp as aware UTC (naive times are IST), or None when unreadable."""
    value = (text or "").strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
        for fmt in _FORMATS:
            try:
                parsed = datetime.strptime(value, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=IST)
    return parsed.astimezone(ZoneInfo("UTC"))


def candidates(intent: OrderIntent, book: list[parsing.Order], linked: set[str],
               skew: timedelta) -> list[tuple[datetime | None, int, parsing.Order]]:
    """Orders of the book that may be this intent's, earliest first (unparseable times count, last)."""
    found = []
    earliest = (intent.sent_at or utcnow()) - skew
    for position, order in enumerate(book):
        if (order.symbol, order.exchange, order.action.upper(), order.product.upper(), order.quantity) != \
                (intent.symbol, intent.exchange, intent.action.upper(), intent.product.upper(), intent.quantity):
            continue
        if not order.order_id or order.order_id in linked:
            continue
        when = broker_time(order.timestamp)
        if when is not None and when < earliest:
            continue
        found.append((when, position, order))
    far = datetime.max.replace(tzinfo=ZoneInfo("UTC"))
    # Broker times have whole seconds: two orders of the same second are told apart by their ids,
    # which Indian brokers hand out in increasing numbers (the order book's own order is newest
    # first in OpenAlgo's sandbox and differs between brokers); ids that are not numbers fall
    # back to the book's order.
    found.sort(key=lambda c: (c[0] or far, int(c[2].order_id) if c[2].order_id.isdigit() else _NOT_NUMERIC, c[1]))
    return found


_NOT_NUMERIC = 10**40  # sorts after every numeric order id


def linked_order_ids(account_id: int, except_intent: int) -> set[str]:
    rows = db.session.scalars(select(OrderIntent.broker_order_id).where(
        OrderIntent.account_id == account_id, OrderIntent.id != except_intent,
        OrderIntent.broker_order_id.is_not(None)))
    return {str(r) for r in rows}


def order_owner(account_id: int, broker_order_id: str, *, except_intent: int) -> int | None:
    """The id of another intent of the account already linked to `broker_order_id`, or None."""
    return db.session.scalar(select(OrderIntent.id).where(
        OrderIntent.account_id == account_id, OrderIntent.id != except_intent,
        OrderIntent.broker_order_id == str(broker_order_id)).order_by(OrderIntent.id).limit(1))


def linked_orders(pairs: Collection[tuple[int, str]]) -> dict[tuple[int, str], set[int]]:
    """For (account id, broker order id) pairs: the intents already linked to each (one query;
    `order_owner` for many acknowledgements at once)."""
    if not pairs:
        return {}
    accounts = {a for a, _ in pairs}
    order_ids = {str(o) for _, o in pairs}
    linked: dict[tuple[int, str], set[int]] = {}
    for intent_id, account_id, order_id in db.session.execute(select(
            OrderIntent.id, OrderIntent.account_id, OrderIntent.broker_order_id).where(
            OrderIntent.account_id.in_(accounts), OrderIntent.broker_order_id.in_(order_ids))):
        linked.setdefault((account_id, str(order_id)), set()).add(intent_id)
    return linked


def sending_siblings(intent: OrderIntent) -> list[int]:
    """Other intents of the account for the same order shape (symbol, exchange, action, product,
    quantity) that are still SENDING: their orders may be in the book with no id recorded yet."""
    return list(db.session.scalars(select(OrderIntent.id).where(
        OrderIntent.account_id == intent.account_id, OrderIntent.id != intent.id,
        OrderIntent.state == IntentState.SENDING.value, OrderIntent.symbol == intent.symbol,
        OrderIntent.exchange == intent.exchange, OrderIntent.action == intent.action,
        OrderIntent.product == intent.product, OrderIntent.quantity == intent.quantity).order_by(OrderIntent.id)))


def _flag(intent_id: int, note: str) -> None:
    db.session.execute(update(OrderIntent).where(OrderIntent.id == intent_id).values(flagged=True, note=note[:500]))
    db.session.commit()


def reconcile(intent_id: int, *, last_read: bool) -> Outcome:
    """One order-book read for an UNKNOWN intent: adopt a match, or (on the last read) NOT_FOUND.

    While a same-shaped sibling of the account is still SENDING nothing is decided: PENDING is
    returned even when `last_read` (the caller's next reconcile pass reads again). The caller runs
    the reads of one account one after another (two intents must not adopt one order) and spaces
    them EXECUTION_RECONCILE_INTERVAL_SECONDS apart.
    """
    intent = db.session.get(OrderIntent, intent_id)
    if intent is None or intent.state != IntentState.UNKNOWN.value:
        db.session.rollback()
        return Outcome.SKIPPED
    account = db.session.get(TradingAccount, intent.account_id)
    db.session.commit()
    if account is None:
        return Outcome.SKIPPED
    try:
        client = client_for(account)
        book = client.orderbook()
    except BrokerError as exc:
        logger.info("Order book of account %s not read for intent %s: %s", intent.account_id, intent_id, exc)
        return Outcome.SKIPPED
    # Read after the book: an order seen there whose sender is still sending, or has recorded it
    # since, is a sibling's and must not be a candidate.
    sending = sending_siblings(intent)
    linked = linked_order_ids(intent.account_id, intent.id)
    db.session.commit()
    if sending:
        logger.info("Intent %s: siblings %s still sending; not deciding yet", intent_id, sending)
        return Outcome.PENDING
    skew = timedelta(seconds=float(current_app.config.get("EXECUTION_CLOCK_SKEW_SECONDS", 120)))
    found = candidates(intent, book, linked, skew)
    try:
        if not found:
            if not last_read:
                return Outcome.PENDING
            apply(intent, IntentEvent.NOT_FOUND, detail="no matching order in the order book")
            return Outcome.NOT_FOUND
        order = found[0][2]
        try:
            order = with_trade_fills(client, order)  # a live book row says nothing of partial fills
        except BrokerError as exc:
            db.session.rollback()
            logger.info("Trades of account %s not read for intent %s: %s", intent.account_id, intent_id, exc)
            return Outcome.PENDING
        owner = order_owner(intent.account_id, order.order_id, except_intent=intent.id)
        db.session.commit()
        if owner is not None:  # linked by another intent since the links were read
            note = f"broker order {order.order_id} is already linked to intent {owner}; not adopted"
            logger.warning("Intent %s: %s", intent_id, note)
            _flag(intent.id, note)
            return Outcome.PENDING
        others = [c[2].order_id for c in found[1:]]
        facts: dict[str, Any] = {"broker_order_id": order.order_id}
        detail = f"adopted order {order.order_id} ({order.status})"
        if others:
            facts["flagged"] = True
            facts["note"] = f"several orders matched; adopted the earliest {order.order_id}, others: " \
                            f"{', '.join(others)}"[:500]
            detail += f"; other candidates {', '.join(others)}"
        apply(intent, IntentEvent.ADOPT, detail=detail, **facts)
        apply_report(intent, order)
    except StaleIntent:
        db.session.rollback()
        return Outcome.SKIPPED
    logger.info("Intent %s adopted broker order %s", intent_id, order.order_id)
    return Outcome.ADOPTED


def expected_positions(run_account: RunAccount) -> dict[tuple[str, str, str], int]:
    """What the app's intents say the account holds, per (symbol, exchange, product) the run
    account traded: Σ signed fills of every intent of the account on it (this run's, another
    run's on the same contract, the kill switch's), since the position book has one net figure
    per contract for the whole account."""
    # The columns only, not the rows as objects: this runs for every account after every run.
    keys = {(symbol, exchange, product.upper()) for symbol, exchange, product in db.session.execute(
        select(OrderIntent.symbol, OrderIntent.exchange, OrderIntent.product).distinct()
        .where(OrderIntent.run_account_id == run_account.id))}
    totals: dict[tuple[str, str, str], int] = dict.fromkeys(keys, 0)
    if not keys:
        return totals
    for symbol, exchange, product, action, filled in db.session.execute(
            select(OrderIntent.symbol, OrderIntent.exchange, OrderIntent.product, OrderIntent.action,
                   OrderIntent.filled_quantity)
            .where(OrderIntent.account_id == run_account.account_id,
                   OrderIntent.symbol.in_({symbol for symbol, _, _ in keys}), OrderIntent.filled_quantity != 0)):
        key = (symbol, exchange, product.upper())
        if key in totals:
            totals[key] += Action(action).sign * int(filled)
    return totals


def position_check(run_account: RunAccount) -> dict[str, Any]:
    """Compare what the account's intents filled with its position book; store and audit differences.

    Returns the stored check: {"checked_at", "ok", "differences": [{symbol, exchange, product,
    expected, actual}]} ("ok" is None with an "error" when the book could not be read).
    """
    expected = expected_positions(run_account)
    account = db.session.get(TradingAccount, run_account.account_id)
    db.session.commit()
    check: dict[str, Any] = {"checked_at": utcnow().isoformat(timespec="seconds"), "ok": None, "differences": []}
    try:
        if account is None:
            raise BrokerError("the account no longer exists")
        book = client_for(account).positions()
    except BrokerError as exc:
        check["error"] = str(exc)[:300]
    else:
        actual: dict[tuple[str, str, str], int] = defaultdict(int)
        for p in book:
            actual[(p.symbol, p.exchange, p.product.upper())] += p.quantity
        differences = [{"symbol": s, "exchange": e, "product": p, "expected": q, "actual": actual.get((s, e, p), 0)}
                       for (s, e, p), q in sorted(expected.items()) if actual.get((s, e, p), 0) != q]
        check["ok"] = not differences
        check["differences"] = differences
    row = db.session.get(RunAccount, run_account.id)
    if row is None:
        return check
    row.position_check = check
    if check["ok"] is False:
        row.add_flag("position check: the broker's positions differ from the app's record")
        from app.models.users import User

        audit.record("execution_position_difference", category="execution",
                     user=db.session.get(User, row.run.user_id), success=False,
                     details={"run_id": row.run_id, "account_id": row.account_id,
                              "differences": check["differences"]}, commit=False)
    db.session.commit()
    return check
