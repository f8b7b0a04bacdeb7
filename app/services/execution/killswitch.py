"""The kill switch: for every account of the user, cancel open orders, close every position in
every segment (not only the app's runs), read the books again and report (issue 9, point 6).

Web side, `press_kill_switch` commits a KillSwitch row and wakes the leader. Engine side,
`step_all` advances each one by a stage per pass, from the database alone (restartable); the
stage is kept in `report["stage"]`:

- cancel: withdraw the user's planned intents; on every active account in parallel read the
  order book and cancel every open / trigger pending order one by one (not cancelallorder: the
  sandbox skips trigger pending);
- wait: until none of the user's intents is in flight (orders that appear at the broker in the
  meantime are cancelled too; after WAIT_LIMIT_SECONDS it goes on anyway);
- plan: read every position book in parallel; every open run's legs on the account are closed
  by close intents of purpose kill_switch (run-linked keys, capped at the broker's net), and
  every remaining non-zero position by kill intents (remainder keys, MARKET, split at the freeze
  quantity for an F&O contract of a known underlying) — all committed with the next stage;
- closing: until every intent of this kill switch is terminal; when a close was refused for a
  passing reason (a rate limit, "try again": `is_final_rejection` says no) or never reached the
  broker, and fewer than KILL_ROUNDS rounds ran, back to plan after KILL_RETRY_SECONDS (the
  position books are read again, so only what is still open is closed, never more);
- report: read both books again per account, write the report (a close that failed in a round
  and succeeded in a later one is not a failure), done, audited.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.broker.errors import BrokerError
from app.domain.execution_policy import is_final_rejection
from app.domain.exit_plan import Holding, cap_at_broker, plan_close_orders
from app.domain.order_lifecycle import (
    AT_BROKER,
    FAILED,
    IN_DOUBT,
    OPEN_STATUSES,
    TERMINAL,
    IllegalTransition,
    IntentEvent,
    IntentState,
)
from app.extensions import db
from app.models import TradingAccount, User
from app.models.execution import KillSwitch, OrderIntent, Purpose, RunAccount, RunStatus, StrategyRun
from app.models.types import utcnow
from app.services import audit
from app.services.accounts import client_for
from app.services.execution import tracker
from app.services.execution.close_caps import LegClose, entry_product
from app.services.execution.engine_state import require_engine_online
from app.services.execution.exits import SETTLED_ACCOUNT, plan_leg_closes, settle_run
from app.services.execution.held import leg_ledgers
from app.services.execution.lifecycle import StaleIntent, apply
from app.services.execution.position_reads import broker_net
from app.services.execution.wakeup import wake_engine
from app.services.risk import exit_events

logger = logging.getLogger(__name__)

ACTIVE = ("pending", "closing")
WAIT_LIMIT_SECONDS = 30.0
KILL_ROUNDS = 3  # close rounds at most (the first and two retries of passing refusals)
KILL_RETRY_SECONDS = 2.0  # the pause before a retry round (a rate limit's window, a busy RMS)
CANCEL_RETRY_SECONDS = 2.0  # a cancel the broker refused in the wait stage is asked again this far apart
MAX_WORKERS = 16
_TERMINAL_VALUES = tuple(s.value for s in TERMINAL)


def kill_intent_key(ks_id: int, account_id: int, symbol: str, exchange: str, product: str, child: int,
                    round_no: int = 1) -> str:
    """The key of a kill-switch remainder child (a position no run of the app holds), per round."""
    key = f"kill:{ks_id}/acct:{account_id}/{symbol}:{exchange}:{product}/child:{child}"
    return key if round_no == 1 else f"{key}/round:{round_no}"


# --- web side -------------------------------------------------------------------------------------

def press_kill_switch(user: User) -> KillSwitch:
    """Queue a kill switch for every account of `user` and wake the leader.

    A user has at most one active kill switch: pressing again while one is pending or closing
    returns that one (nothing is closed twice).

    Raises:
        EngineOffline: no process holds the services lease (nothing queued).
    """
    active = _active_for(user.id)
    if active is not None:  # a second press (double click, second tab) is the same kill switch
        return active
    require_engine_online()
    row = KillSwitch(user_id=user.id, status="pending", report={"stage": "cancel"})
    db.session.add(row)
    db.session.flush()
    earlier = _active_for(user.id, before=row.id)
    if earlier is not None:  # a press that committed between our check and our insert
        db.session.rollback()
        return earlier
    event = exit_events.kill_switch_pressed(row)
    row.report = {**(row.report or {}), "risk_event_id": event.id}
    audit.record("kill_switch_pressed", category="trading", user=user, commit=False,
                 details={"kill_switch_id": row.id})
    db.session.commit()
    wake_engine(f"kill:{row.id}")
    return row


def _active_for(user_id: int, before: int | None = None) -> KillSwitch | None:
    query = select(KillSwitch).where(KillSwitch.user_id == user_id, KillSwitch.status.in_(ACTIVE))
    if before is not None:
        query = query.where(KillSwitch.id < before)
    return db.session.scalars(query.order_by(KillSwitch.id).limit(1)).first()


# --- engine side ----------------------------------------------------------------------------------

def step_all(ctx: Any = None) -> bool:
    """Advance every pending or closing kill switch by one stage. True when anything changed."""
    db.session.expire_all()
    ids = list(db.session.scalars(select(KillSwitch.id).where(KillSwitch.status.in_(ACTIVE)).order_by(KillSwitch.id)))
    progressed = False
    for ks_id in ids:
        ks = db.session.get(KillSwitch, ks_id)
        if ks is None or ks.status not in ACTIVE:
            continue
        try:
            progressed = step(ks) or progressed
        except Exception:  # one broken kill switch never stops the others
            db.session.rollback()
            logger.exception("kill switch %s: step failed; retried next pass", ks_id)
    return progressed


def _accounts(user_id: int) -> list[TradingAccount]:
    """Every account of the user that is not deleted: a deactivated one may still hold positions
    at its broker (an account it cannot reach is reported as failed, never skipped)."""
    return list(db.session.scalars(select(TradingAccount).where(
        TradingAccount.user_id == user_id, TradingAccount.deleted_at.is_(None)).order_by(TradingAccount.id)))


def _parallel[T](account_ids: list[int], work: Callable[[TradingAccount], T]) -> dict[int, T | BaseException]:
    """Run `work(account)` for every account at once, each in an app context of its own."""
    db.session.commit()  # no transaction open across the broker calls
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def one(account_id: int) -> T | BaseException:
        with app.app_context():
            try:
                account = db.session.get(TradingAccount, account_id)
                assert account is not None
                return work(account)
            except Exception as exc:  # reported per account
                return exc
            finally:
                db.session.remove()

    if not account_ids:
        return {}
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(account_ids))) as pool:
        return dict(zip(account_ids, pool.map(one, account_ids), strict=True))


def _open_orders(client: Any) -> list[Any]:
    return [o for o in client.orderbook() if o.status.strip().lower() in OPEN_STATUSES]


def _cancel_all(account: TradingAccount) -> dict[str, Any]:
    client = client_for(account)
    cancelled, errors = [], []
    for order in _open_orders(client):
        try:
            client.cancel_order(order.order_id)
            cancelled.append(order.order_id)
        except BrokerError as exc:
            errors.append({"order_id": order.order_id, "symbol": order.symbol, "reason": str(exc)})
    return {"cancelled": cancelled, "cancel_errors": errors}


def _save(ks: KillSwitch, report: dict[str, Any], **changes: Any) -> None:
    ks.report = dict(report)
    for name, value in changes.items():
        setattr(ks, name, value)
    db.session.commit()


def step(ks: KillSwitch) -> bool:
    """One stage of one kill switch (see the module docstring). True when something changed."""
    report = copy.deepcopy(ks.report or {})
    stage = report.get("stage", "cancel")
    if stage == "cancel":
        return _stage_cancel(ks, report)
    if stage == "wait":
        return _stage_wait(ks, report)
    if stage == "plan":
        return _stage_plan(ks, report)
    if stage == "closing":
        if _unsettled(ks.id):
            return False
        _withdraw_blocked(ks.id)
        return _stage_retry_or_report(ks, report)
    return False


def _latest(intents: list[OrderIntent]) -> list[OrderIntent]:
    """The kill switch's intents without those a later round replaced (same account and contract
    or run leg, and child)."""
    def key(i: OrderIntent) -> tuple[Any, ...]:
        return (i.account_id, i.run_account_id, i.leg_number, i.symbol, i.exchange, i.product, i.child)
    last: dict[tuple[Any, ...], int] = {}
    for intent in intents:
        last[key(intent)] = max(last.get(key(intent), 0), intent.attempt)
    return [i for i in intents if i.attempt == last[key(i)]]


def _retryable(intent: OrderIntent) -> bool:
    state = IntentState(intent.state)
    return intent.filled_quantity < intent.quantity and (
        (state is IntentState.NOT_PLACED and not (intent.note or "").startswith("withdrawn"))
        or (state is IntentState.REJECTED and not is_final_rejection(intent.rejection_reason)))


def _stage_retry_or_report(ks: KillSwitch, report: dict[str, Any]) -> bool:
    round_no = int(report.get("round", 1))
    mine = list(db.session.scalars(select(OrderIntent).where(OrderIntent.kill_switch_id == ks.id)))
    if round_no < KILL_ROUNDS and any(_retryable(i) for i in _latest(mine)):
        due = report.get("retry_at")
        if due is None:
            report["retry_at"] = (utcnow() + timedelta(seconds=KILL_RETRY_SECONDS)).isoformat()
            _save(ks, report)
            return True
        if utcnow() < datetime.fromisoformat(due):
            db.session.rollback()
            return False
        logger.warning("kill switch %s: closes refused for a passing reason; round %d", ks.id, round_no + 1)
        report.pop("retry_at", None)
        report.update(stage="plan", round=round_no + 1)
        _save(ks, report)
        return True
    return _stage_report(ks, report)


def _blocked_and_moving(ks_id: int) -> tuple[list[OrderIntent], list[OrderIntent]]:
    """This kill switch's intents that are not terminal: (blocked, moving). A planned intent whose
    group has a lower phase that ended without filling is never sent (the engine withdraws it):
    blocked, i.e. settled for the kill switch."""
    rows = _latest(list(db.session.scalars(select(OrderIntent).where(OrderIntent.kill_switch_id == ks_id)
                                         .order_by(OrderIntent.id))))
    groups: dict[tuple[Any, ...], list[OrderIntent]] = {}
    for row in rows:
        # As the engine groups them (engine.group_key): a run account's closes whatever their round.
        key = ("ra", row.run_account_id) if row.run_account_id is not None else ("acct", row.account_id)
        groups.setdefault(key, []).append(row)
    blocked: list[OrderIntent] = []
    moving: list[OrderIntent] = []
    for group in groups.values():
        for intent in group:
            if intent.state in _TERMINAL_VALUES:
                continue
            stuck = intent.state == IntentState.PLANNED.value and any(
                other.phase < intent.phase and other.state in _TERMINAL_VALUES
                and other.state != IntentState.FILLED.value for other in group)
            (blocked if stuck else moving).append(intent)
    return blocked, moving


def _unsettled(ks_id: int) -> bool:
    """Whether an intent of this kill switch can still move (blocked ones cannot)."""
    return bool(_blocked_and_moving(ks_id)[1])


def _withdraw_blocked(ks_id: int) -> None:
    for intent in _blocked_and_moving(ks_id)[0]:
        why = f"withdrawn: kill switch {ks_id}: a lower phase of its group was not filled"
        try:
            apply(intent, IntentEvent.WITHDRAW, detail=why, note=why)
        except (StaleIntent, IllegalTransition):
            # the engine withdrew it first
            pass


def _withdraw_planned(user_id: int) -> int:
    count = 0
    for intent in db.session.scalars(select(OrderIntent).where(
            OrderIntent.user_id == user_id, OrderIntent.state == IntentState.PLANNED.value,
            OrderIntent.kill_switch_id.is_(None)).order_by(OrderIntent.id)).all():
        try:
            apply(intent, IntentEvent.WITHDRAW, detail="kill switch", note="withdrawn: kill switch")
            count += 1
        except (StaleIntent, IllegalTransition):
            # claimed by the sender meanwhile: the wait stage cancels it at the broker
            pass
    return count


def _stage_cancel(ks: KillSwitch, report: dict[str, Any]) -> bool:
    _withdraw_planned(ks.user_id)
    accounts = _accounts(ks.user_id)
    names = {a.id: a.account_name for a in accounts}
    results = _parallel(list(names), _cancel_all)
    per: dict[str, Any] = {}
    for account_id, result in results.items():
        entry: dict[str, Any] = {"account_id": account_id, "name": names[account_id], "cancelled": [],
                                 "closed": [], "failed": [], "still_open": [], "open_orders_left": []}
        if isinstance(result, BaseException):
            entry["failed"].append({"symbol": "*", "reason": f"order book not read: {result}"})
        else:
            entry["cancelled"] = result["cancelled"]
            entry["failed"].extend({"symbol": e["symbol"], "reason": f"cancel {e['order_id']}: {e['reason']}"}
                                   for e in result["cancel_errors"])
        per[str(account_id)] = entry
    report.update(stage="wait", accounts=per, wait_since=utcnow().isoformat())
    _save(ks, report, status="closing")
    return True


def _stage_wait(ks: KillSwitch, report: dict[str, Any]) -> bool:
    _withdraw_planned(ks.user_id)
    moving = list(db.session.scalars(select(OrderIntent).where(
        OrderIntent.user_id == ks.user_id, OrderIntent.state.not_in(_TERMINAL_VALUES),
        OrderIntent.kill_switch_id.is_(None))))
    per = report["accounts"]
    cancelled = {oid for entry in per.values() for oid in entry["cancelled"]}
    # A refused cancel (the order filled meanwhile, a busy RMS) is asked again, but not on every
    # pass: passes come many times a second, and each cancel counts against the account's order
    # rate limit, which the closes that follow need.
    refused: dict[str, str] = report.setdefault("cancel_refused_at", {})
    now = utcnow()
    changed = False
    for intent in moving:
        entry = per.get(str(intent.account_id))
        if IntentState(intent.state) in AT_BROKER and intent.broker_order_id \
                and intent.broker_order_id not in cancelled and entry is not None:
            order_id = intent.broker_order_id
            last = refused.get(order_id)
            if last is not None and now - datetime.fromisoformat(last) < timedelta(seconds=CANCEL_RETRY_SECONDS):
                continue
            if tracker.cancel(intent.id):
                entry["cancelled"].append(order_id)
                refused.pop(order_id, None)
            else:
                refused[order_id] = now.isoformat()
            cancelled.add(order_id)
            changed = True
    waited = now - datetime.fromisoformat(report["wait_since"])
    if moving and waited < timedelta(seconds=WAIT_LIMIT_SECONDS):
        if changed:
            _save(ks, report)
        return changed
    if moving:
        report["waited_out"] = [{"intent_id": i.id, "symbol": i.symbol, "state": i.state} for i in moving]
    report["stage"] = "plan"
    _save(ks, report)
    return True


def _fno_figures(symbol: str, exchange: str) -> tuple[int, int]:
    """(lot size, freeze qty) for an F&O contract of a known underlying, else (1, 0): one order."""
    if exchange not in ("NFO", "BFO"):
        return 1, 0
    from app.services.margin.contracts import ContractError, contract_spec
    from app.services.margin.tables import tables

    known = sorted(tables().contracts, key=len, reverse=True)
    underlying = next((u for u in known if symbol.startswith(u) and symbol[len(u):len(u) + 1].isdigit()), None)
    if underlying is None:
        return 1, 0
    try:
        spec = contract_spec(None, underlying, symbol, exchange, None)
    except ContractError:
        return 1, 0
    return spec.lot_size, spec.freeze_qty


def _open_run_accounts(user_id: int, account_id: int) -> list[RunAccount]:
    return list(db.session.scalars(select(RunAccount).join(StrategyRun, StrategyRun.id == RunAccount.run_id).where(
        StrategyRun.user_id == user_id, RunAccount.account_id == account_id,
        StrategyRun.status.not_in([RunStatus.CLOSED, RunStatus.FAILED]),
        RunAccount.status.not_in(list(SETTLED_ACCOUNT))).order_by(RunAccount.id)))


def _stage_plan(ks: KillSwitch, report: dict[str, Any]) -> bool:
    per = report["accounts"]
    round_no = int(report.get("round", 1))
    for entry in per.values():  # what the plan stage finds is said once, for its last round
        entry["failed"] = list(entry.setdefault("cancel_failed", list(entry["failed"])))
    books = _parallel([int(k) for k in per], broker_net)
    figures: dict[tuple[str, str], tuple[int, int]] = {}
    for book in books.values():
        if not isinstance(book, BaseException):
            for (symbol, exchange, _), qty in book.items():
                if qty and (symbol, exchange) not in figures:
                    figures[(symbol, exchange)] = _fno_figures(symbol, exchange)
    planned = 0
    for account_key, entry in per.items():
        book = books[int(account_key)]
        if isinstance(book, BaseException):
            entry["failed"].append({"symbol": "*", "reason": f"position book not read: {book}"})
            continue
        remaining = dict(book)
        busy: set[tuple[str, str, str]] = set()
        closes: list[LegClose] = []
        for ra in _open_run_accounts(ks.user_id, int(account_key)):
            legs = {leg.number: leg for leg in ra.run.legs}
            for number, ledger in leg_ledgers(ra, legs).items():  # rounds and fills in one read
                held = ledger.held
                if held == 0 or number not in legs:
                    continue
                leg = legs[number]
                product = entry_product(ledger, ra.run.product)
                key = (leg.symbol, leg.exchange, product)
                if ledger.closing:  # someone else is closing it: never a second close in the sweep
                    busy.add(key)
                    entry["failed"].append({"symbol": leg.symbol,
                                            "reason": f"run {ra.run_id}: a close of leg {number} is in flight"})
                    continue
                capped = cap_at_broker(held, remaining.get(key, 0))
                if capped == 0:
                    entry["failed"].append({"symbol": leg.symbol, "reason": f"run {ra.run_id} holds {held} by its "
                                            f"fills; the position book shows {remaining.get(key, 0)}"})
                    continue
                remaining[key] = remaining.get(key, 0) - capped
                closes.append(LegClose(ra, leg, capped, product, ledger.next_round))
        planned += plan_leg_closes(closes, Purpose.KILL_SWITCH, kill_switch_id=ks.id, commit=False)[0]
        for (symbol, exchange, product), qty in sorted(remaining.items()):
            if (symbol, exchange, product) in busy:
                continue
            lot, freeze = figures.get((symbol, exchange), (1, 0))
            for order in plan_close_orders([Holding(None, symbol, exchange, product, qty, lot, freeze)]):
                intent = OrderIntent(
                    intent_key=kill_intent_key(ks.id, int(account_key), symbol, exchange, product, order.child,
                                               round_no),
                    user_id=ks.user_id, account_id=int(account_key), kill_switch_id=ks.id, child=order.child,
                    attempt=round_no,
                    purpose=Purpose.KILL_SWITCH, phase=order.phase, symbol=symbol, exchange=exchange,
                    product=product, action=order.action, quantity=order.quantity, price_type="MARKET")
                try:
                    with db.session.begin_nested():
                        db.session.add(intent)
                    planned += 1
                except IntegrityError:
                    continue
    report["stage"] = "closing"
    report["planned"] = planned
    _save(ks, report)
    return True


def _stage_report(ks: KillSwitch, report: dict[str, Any]) -> bool:
    per = report["accounts"]

    def books(account: TradingAccount) -> tuple[dict[tuple[str, str, str], int], list[Any]]:
        client = client_for(account)
        return broker_net(account), _open_orders(client)

    after = _parallel([int(k) for k in per], books)
    mine = list(db.session.scalars(select(OrderIntent).where(OrderIntent.kill_switch_id == ks.id)
                                   .order_by(OrderIntent.id)))
    latest = {i.id for i in _latest(mine)}
    for account_key, entry in per.items():
        closed: dict[tuple[str, str, str], int] = {}
        for intent in (i for i in mine if i.account_id == int(account_key)):
            if intent.filled_quantity:
                key = (intent.symbol, intent.exchange, intent.product)
                closed[key] = closed.get(key, 0) - intent.signed_filled  # the position that was closed
            if intent.id in latest and (IntentState(intent.state) in FAILED or IntentState(intent.state) in IN_DOUBT
                                        or intent.filled_quantity < intent.quantity):
                entry["failed"].append({"symbol": intent.symbol, "reason": intent.rejection_reason or intent.note
                                        or f"{intent.state}, {intent.filled_quantity} of {intent.quantity} filled"})
        entry["closed"] = [{"symbol": s, "exchange": e, "product": p, "quantity": q}
                           for (s, e, p), q in sorted(closed.items()) if q]
        result = after[int(account_key)]
        if isinstance(result, BaseException):
            entry["failed"].append({"symbol": "*", "reason": f"books not read after closing: {result}"})
            continue
        net, orders = result
        entry["still_open"] = [{"symbol": s, "exchange": e, "product": p, "quantity": q}
                               for (s, e, p), q in sorted(net.items()) if q]
        entry["open_orders_left"] = [{"order_id": o.order_id, "symbol": o.symbol, "status": o.status}
                                     for o in orders]
    report["stage"] = "done"
    user = db.session.get(User, ks.user_id)
    audit.record("kill_switch_done", category="trading", user=user, commit=False,
                 details={"kill_switch_id": ks.id, "accounts": [
                     {k: e[k] for k in ("account_id", "name", "closed", "still_open")} for e in per.values()]})
    exit_events.kill_switch_settled(ks, report)
    _save(ks, report, status="done", done_at=utcnow())
    for run_id in {i.run_id for i in mine if i.run_id is not None}:
        run = db.session.get(StrategyRun, run_id)
        if run is not None:
            settle_run(run)
    return True
