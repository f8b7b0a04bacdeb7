"""Execute: from a click (or a scheduled entry) to a committed run with every entry intent planned.

`submit_execution` runs in the web request (or the scheduler) and never sends an order. It:
1. returns the existing run when this (user, idempotency key) was submitted before (a double
   click, a refresh or a second tab is the same run);
2. refuses at once, writing nothing, when the engine is offline, trading is halted, no account
   is chosen, every chosen account is skipped, a real account is chosen outside market hours,
   the market-data account is down, a leg does not resolve or its contract has expired;
3. resolves the legs once and sizes every chosen account (fixed lots need no broker call);
4. writes the run, its legs and accounts (skipped ones with their reason) and every planned
   entry intent (one per freeze-split child; BUY legs phase 0, SELL legs phase 1) in ONE
   transaction, then wakes the leader, which sends them (engine.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from app.domain.errors import DomainError
from app.domain.execution_policy import entry_phase
from app.domain.expiries import expiry_close, ist_today
from app.domain.legs import expiry_reference_day
from app.domain.sizing import RiskProfile, SizingLeg, fixed_lots, leg_size
from app.extensions import db
from app.models.accounts import STATUS_AUTH_ERROR, STATUS_DISCONNECTED, TradingAccount
from app.models.execution import (
    OrderIntent,
    Purpose,
    RunAccount,
    RunAccountStatus,
    RunLeg,
    RunStatus,
    StrategyRun,
)
from app.models.strategies import Strategy
from app.models.types import utcnow
from app.models.users import User
from app.services import audit
from app.services.execution.engine_state import require_engine_online
from app.services.execution.errors import ExecutionRefused
from app.services.execution.halt import require_not_halted
from app.services.execution.wakeup import wake_engine
from app.services.margin.sizing import (
    AccountChoice,
    AccountNotFound,
    ContractLeg,
    MarginUnavailable,
    size_accounts,
    split_sizable,
)
from app.services.risk.events import blocked_accounts
from app.services.risk.snapshot import snapshot as risk_snapshot
from app.services.strategy.preview import PreviewInvalid, strategy_plan
from app.services.strategy.resolution import ResolvedLeg, market_source, resolve_legs

logger = logging.getLogger(__name__)

IDEMPOTENCY_KEY_MAX = 64


@dataclass(frozen=True)
class _Sized:
    """One account's outcome: lots per leg, or why it is skipped."""

    account_id: int
    name: str
    lots: tuple[int, ...]
    skip_reason: str | None = None


def entry_intent_key(run_id: int, account_id: int, leg: int, child: int, attempt: int = 1) -> str:
    """The unique key of an entry child order (models.execution.OrderIntent)."""
    return f"run:{run_id}/acct:{account_id}/leg:{leg}/child:{child}/entry/{attempt}"


def existing_run(user: User, idempotency_key: str) -> StrategyRun | None:
    return db.session.scalar(select(StrategyRun).where(StrategyRun.user_id == user.id,
                                                       StrategyRun.idempotency_key == idempotency_key))


def submit_execution(user: User, strategy: Strategy, *, idempotency_key: str,
                     account_ids: Sequence[int] | None = None, trigger: str = "manual",
                     now: datetime | None = None) -> StrategyRun:
    """Plan one execution of the user's strategy and wake the engine.

    Args:
        user: the owner (the caller found `strategy` through the owner-scoped query).
        strategy: the stored strategy.
        idempotency_key: from the form (a uuid made when the page rendered) or the scheduler.
        account_ids: a subset of the strategy's accounts (default: all of them).
        trigger: "manual" or "scheduled".
        now: the click's instant (aware UTC; default now).
    Returns:
        The run (the existing one for a repeated idempotency key).
    Raises:
        EngineOffline, TradingHalted, ExecutionRefused: nothing was written.
    """
    key = (idempotency_key or "").strip()
    if not key or len(key) > IDEMPOTENCY_KEY_MAX:
        raise ExecutionRefused("The form has expired: reload the page and execute again.")
    found = existing_run(user, key)
    if found is not None:
        return found
    clicked = now or utcnow()
    require_engine_online(clicked)
    require_not_halted()
    try:
        plan = strategy_plan(strategy)
    except PreviewInvalid as exc:
        raise ExecutionRefused(str(exc)) from exc
    settings = _settings(strategy)
    choices = _choices(plan.accounts, account_ids)
    sizable, skipped = split_sizable(user, choices)
    accounts = {a.id: a for a in db.session.scalars(
        select(TradingAccount).where(TradingAccount.user_id == user.id,
                                     TradingAccount.id.in_([c.account_id for c in sizable])))}
    skipped_rows = [_Sized(s.account_id, s.name, (), f"account {s.reason}") for s in skipped]
    usable: list[AccountChoice] = []
    # An account whose daily loss or profit limit was breached takes no new entry until the next
    # IST trading day (the risk monitor blocks it).
    blocked = blocked_accounts(list(accounts), ist_today(clicked))
    for choice in sizable:
        account = accounts.get(choice.account_id)
        if account is None:
            raise ExecutionRefused("An account of this strategy is not one of your accounts.")
        if account.id in blocked:
            skipped_rows.append(_Sized(account.id, account.account_name, (),
                                       f"entries blocked for today: {blocked[account.id]}"))
        elif account.connection_status in (STATUS_DISCONNECTED, STATUS_AUTH_ERROR):
            why = "disconnected" if account.connection_status == STATUS_DISCONNECTED else "its broker login expired"
            skipped_rows.append(_Sized(account.id, account.account_name, (), f"account {why}"))
        else:
            usable.append(choice)
    if not usable:
        reasons = "; ".join(f"{s.name}: {s.skip_reason}" for s in skipped_rows)
        raise ExecutionRefused("No account can trade this strategy" + (f" ({reasons})." if reasons else "."))
    _check_market_hours([accounts[c.account_id] for c in usable], clicked)
    names = {a.id: a.account_name for a in accounts.values()}
    db.session.commit()  # no transaction open across the broker calls below
    legs = _resolve(user, plan.specs, clicked)
    sized = _size(user, plan.profile, plan.allowed_splits, plan.product, legs, usable, names, clicked)
    trading = [s for s in sized if s.skip_reason is None]
    if not trading:
        reasons = "; ".join(f"{s.name}: {s.skip_reason}" for s in [*skipped_rows, *sized])
        raise ExecutionRefused(f"No account can trade this strategy ({reasons}).")
    run = _write(user, strategy, key, trigger, clicked, settings, plan.product, legs, [*sized, *skipped_rows],
                 plan.allowed_splits)
    wake_engine("entry")
    return run


def _settings(strategy: Strategy) -> dict[str, object]:
    return {"failure_policy": strategy.failure_policy, "retry_limit": strategy.retry_limit,
            "resend_not_placed": strategy.resend_not_placed,
            "limit_timeout_seconds": strategy.limit_timeout_seconds, "limit_fallback": strategy.limit_fallback,
            "risk_settings": risk_snapshot(strategy)}


def _choices(stored: Sequence[AccountChoice], account_ids: Sequence[int] | None) -> list[AccountChoice]:
    if account_ids is None:
        chosen = list(stored)
    else:
        wanted = list(dict.fromkeys(int(i) for i in account_ids))
        by_id = {c.account_id: c for c in stored}
        unknown = [i for i in wanted if i not in by_id]
        if unknown:
            raise ExecutionRefused("Choose among the strategy's own accounts.")
        chosen = [by_id[i] for i in wanted]
    if not chosen:
        raise ExecutionRefused("No accounts are chosen: tick at least one account.")
    return chosen


def require_retry_allowed(account: TradingAccount, run: StrategyRun, moment: datetime) -> None:
    """A manual retry of an account's failed entry legs is a new entry on that account: the gates
    Execute applies to it (its daily-limit block, its connection, market hours, the run's legs not
    expired). Raises ExecutionRefused with the reason."""
    blocked = blocked_accounts([account.id], ist_today(moment))
    if account.id in blocked:
        raise ExecutionRefused(f"{account.account_name}: entries blocked for today: {blocked[account.id]}")
    if account.connection_status in (STATUS_DISCONNECTED, STATUS_AUTH_ERROR):
        why = "is disconnected" if account.connection_status == STATUS_DISCONNECTED else "has an expired broker login"
        raise ExecutionRefused(f"{account.account_name} {why}: nothing was sent.")
    _check_market_hours([account], moment)
    for leg in run.legs:
        if expiry_close(leg.expiry) <= moment:
            raise ExecutionRefused(f"Leg {leg.number} ({leg.symbol}) has expired: its failed legs are not sent again.")


def _check_market_hours(accounts: Sequence[TradingAccount], moment: datetime) -> None:
    """Real accounts trade only in market hours (the trading calendar). A paper account follows
    its paper broker's own hours (24x7 by default; the broker refuses orders itself when set to real)."""
    if all(a.is_paper for a in accounts):
        return
    from app.services.calendar import market_is_open

    if not market_is_open("NSE", moment):
        raise ExecutionRefused("The market is closed (NSE F&O trades 09:15–15:30 IST on trading days): "
                               "nothing was sent.")


def _resolve(user: User, specs: Sequence, moment: datetime) -> list[ResolvedLeg]:
    source = market_source(user)
    if source.client is None:
        raise ExecutionRefused(f"The market-data account is unavailable: {source.error}")
    resolution = resolve_legs(source.client, specs, now=moment, source=source.name)
    if resolution.error:
        raise ExecutionRefused(f"The market-data account is unavailable: {resolution.error}")
    if resolution.errors:
        raise ExecutionRefused("Some legs could not be resolved: " + "; ".join(e.message for e in resolution.errors))
    legs = resolution.resolved
    for leg in legs:
        if leg.expires_at <= moment:
            raise ExecutionRefused(f"Leg {leg.number} ({leg.symbol}) has expired: choose another expiry.")
    return legs


def _sizing_legs(legs: Sequence[ResolvedLeg]) -> list[SizingLeg]:
    return [SizingLeg(leg.spec.underlying, leg.spec.kind, leg.spec.action, leg.option_type, leg.spec.lots,
                      leg.lot_size, leg.freeze_qty) for leg in legs]


def _size(user: User, profile: RiskProfile, allowed_splits: int, product: str, legs: Sequence[ResolvedLeg],
          choices: Sequence[AccountChoice], names: dict[int, str], moment: datetime) -> list[_Sized]:
    sizing_legs = _sizing_legs(legs)
    if profile is RiskProfile.FIXED_LOTS:
        out = []
        for choice in choices:
            try:
                lots, reason = fixed_lots(sizing_legs, Decimal(choice.multiplier), allowed_splits)
            except DomainError as exc:
                lots, reason = [0] * len(legs), str(exc)
            out.append(_Sized(choice.account_id, names[choice.account_id], tuple(lots), reason))
        return out
    contract_legs = [ContractLeg(s, leg.symbol, leg.exchange) for s, leg in zip(sizing_legs, legs, strict=True)]
    try:
        result = size_accounts(user, contract_legs, profile, choices, allowed_splits=allowed_splits,
                               today=expiry_reference_day(moment), product=product)
    except (AccountNotFound, MarginUnavailable, DomainError) as exc:
        raise ExecutionRefused(f"The accounts could not be sized: {exc}") from exc
    out = []
    for row in result.rows:
        if row.sizing is None:
            out.append(_Sized(row.account_id, row.name, (), f"no sizing: {row.error}"))
        elif row.sizing.skip_reason:
            out.append(_Sized(row.account_id, row.name, (), row.sizing.skip_reason))
        else:
            out.append(_Sized(row.account_id, row.name, tuple(leg.lots for leg in row.sizing.legs)))
    return out


def _write(user: User, strategy: Strategy, key: str, trigger: str, clicked: datetime, settings: dict[str, object],
           product: str, legs: Sequence[ResolvedLeg], sized: Sequence[_Sized], allowed_splits: int) -> StrategyRun:
    """The run, its legs, accounts and planned intents in one transaction (or nothing at all)."""
    sizing_legs = _sizing_legs(legs)
    user_id = user.id
    try:
        run = StrategyRun(user_id=user_id, strategy_id=strategy.id, strategy_name=strategy.name, idempotency_key=key,
                          trigger=trigger, status=RunStatus.ENTERING, product=product, clicked_at=clicked,
                          trading_day=ist_today(clicked), source=None, **settings)
        db.session.add(run)
        for leg in legs:
            run.legs.append(RunLeg(number=leg.number, label=leg.spec.label, underlying=leg.spec.underlying,
                                   symbol=leg.symbol, exchange=leg.exchange, action=leg.spec.action.value,
                                   lots=leg.spec.lots, lot_size=leg.lot_size, freeze_qty=leg.freeze_qty,
                                   tick_size=leg.tick_size, order_type=leg.spec.order_type.value,
                                   limit_buffer_pct=leg.spec.limit_buffer_pct, ltp=leg.ltp, expiry=leg.expiry))
        db.session.flush()
        # Every run account first (one flush: one multi-row INSERT), then every intent (another).
        accounts = []
        for row in sized:
            skipped = row.skip_reason is not None
            account = RunAccount(run_id=run.id, account_id=row.account_id, account_name=row.name,
                                 status=RunAccountStatus.SKIPPED if skipped else RunAccountStatus.PLANNED,
                                 skip_reason=row.skip_reason, strategy_lots=0 if skipped else 1)
            run.accounts.append(account)
            accounts.append(account)
        db.session.flush()
        intents = []
        for row, account in zip(sized, accounts, strict=True):
            if row.skip_reason is not None:
                continue
            for leg, sizing_leg, lots in zip(legs, sizing_legs, row.lots, strict=True):
                if lots == 0:
                    continue
                for child, quantity in enumerate(leg_size(sizing_leg, lots).child_quantities):
                    limit = leg.limit_price
                    intents.append({
                        "intent_key": entry_intent_key(run.id, row.account_id, leg.number, child),
                        "user_id": user_id, "account_id": row.account_id, "run_id": run.id,
                        "run_account_id": account.id, "leg_number": leg.number, "child": child, "attempt": 1,
                        "purpose": Purpose.ENTRY, "phase": entry_phase(leg.spec.action.value), "symbol": leg.symbol,
                        "exchange": leg.exchange, "product": product, "action": leg.spec.action.value,
                        "quantity": quantity, "price_type": "LIMIT" if limit is not None else "MARKET",
                        "price": limit})
        # One multi-row INSERT for every intent (hundreds per Execute: the unit of work's objects
        # were most of the request's time); the columns' defaults (planned, times) apply as usual.
        if intents:
            db.session.execute(insert(OrderIntent), intents)
        planned = len(intents)
        audit.record("strategy_executed", category="trading", user=user, commit=False,
                     details={"strategy_id": strategy.id, "run_id": run.id, "trigger": trigger,
                              "accounts": sum(1 for r in sized if r.skip_reason is None),
                              "skipped": sum(1 for r in sized if r.skip_reason is not None), "intents": planned,
                              "allowed_splits": allowed_splits})
        run_id = run.id
        db.session.commit()
    except IntegrityError:
        # The same form submitted twice at once: the other request's run won the unique key.
        db.session.rollback()
        found = existing_run(user, key)
        if found is None:
            raise
        return found
    except Exception:
        db.session.rollback()  # nothing half-written stays
        raise
    logger.info("run %s planned: %d intents", run_id, planned)
    return run
