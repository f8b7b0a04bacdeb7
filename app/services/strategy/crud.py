"""Create, read, update and delete a user's strategies.

Callers validate first (app/strategy/forms.py builds a `StrategySpec` only from a valid
form); this module writes a whole strategy in one transaction, always through a query
scoped to its owner, and serialises it in the JSON API's shape.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import time
from decimal import Decimal
from typing import Any

from flask import abort
from sqlalchemy import Select, select, update
from sqlalchemy.orm import selectinload

from app.domain.expiries import ExpiryChoice
from app.domain.instruments import Action, InstrumentKind, OptionType
from app.domain.risk_settings import DEFAULT_ACTION, DEFAULT_SCOPE, RiskAction, RiskScope
from app.domain.sizing import RiskProfile
from app.domain.strategy_settings import (
    DEFAULT_SPLITS,
    MARKET_CLOSE,
    MARKET_OPEN,
    FailurePolicy,
    LegRiskUnit,
    LimitFallback,
    MarketCondition,
    OrderType,
    Product,
    SupertrendExit,
    SupertrendTimeframe,
    TrailingType,
)
from app.domain.strikes import StrikeRule
from app.exceptions import AlgoMirrorError
from app.extensions import db
from app.models.execution import RunStatus, StrategyRun
from app.models.strategies import Strategy, StrategyAccount, StrategyLeg
from app.models.users import User
from app.services import audit
from app.services.accounts import owned_accounts

logger = logging.getLogger(__name__)

DERIVATIVES_EXCHANGE = "NFO"  # the calendar's F&O session bounds a strategy's times


@dataclass(frozen=True)
class LegSpec:
    position: int
    underlying: str
    instrument: InstrumentKind
    expiry_choice: ExpiryChoice
    strike: StrikeRule | None  # None for a future
    option_type: OptionType | None  # None for a future
    action: Action
    lots: int
    order_type: OrderType
    limit_buffer_pct: Decimal | None
    stop_loss: tuple[LegRiskUnit, Decimal] | None
    target: tuple[LegRiskUnit, Decimal] | None


@dataclass(frozen=True)
class AccountSpec:
    account_id: int
    lot_multiplier: Decimal
    capital_cap: Decimal | None


@dataclass(frozen=True)
class StrategySpec:
    """A validated strategy, as the builder's form produces it."""

    name: str
    description: str
    market_condition: MarketCondition
    risk_profile: RiskProfile
    product: Product
    entry_time: time
    exit_time: time
    square_off_time: time
    max_loss: Decimal | None
    max_profit: Decimal | None
    trailing_type: TrailingType | None
    trailing_value: Decimal | None
    supertrend_enabled: bool
    supertrend_period: int
    supertrend_multiplier: Decimal
    supertrend_timeframe: SupertrendTimeframe
    supertrend_exit: SupertrendExit
    legs: tuple[LegSpec, ...]
    accounts: tuple[AccountSpec, ...]
    allowed_splits: int = DEFAULT_SPLITS
    # Execution settings (issue 9): copied onto each run at submit time.
    failure_policy: FailurePolicy = FailurePolicy.REPORT
    retry_limit: int = 2
    resend_not_placed: bool = True
    limit_timeout_seconds: int = 30
    limit_fallback: LimitFallback = LimitFallback.CANCEL
    auto_entry: bool = False
    # Risk engine (issue 10): scope of the thresholds and each rule's breach action.
    risk_scope: RiskScope = DEFAULT_SCOPE
    max_loss_action: RiskAction = DEFAULT_ACTION
    max_profit_action: RiskAction = DEFAULT_ACTION
    trailing_action: RiskAction = DEFAULT_ACTION
    supertrend_action: RiskAction = DEFAULT_ACTION


def regular_session() -> tuple[time, time]:
    """The F&O regular session (IST) from the trading calendar, else DOMAIN.md's 09:15–15:30."""
    from app.services.calendar import get_calendar

    try:
        schedule = get_calendar().schedule_for(DERIVATIVES_EXCHANGE)
    except Exception:  # the builder must work with an unreadable calendar: fall back to the defaults
        logger.warning("Trading calendar unavailable; using %s-%s for strategy times", MARKET_OPEN, MARKET_CLOSE)
        return MARKET_OPEN, MARKET_CLOSE
    sessions = [schedule.session_on(day) for day in range(5)] if schedule is not None else []
    found = [s for s in sessions if s is not None]
    if not found:
        return MARKET_OPEN, MARKET_CLOSE
    return min(s.start for s in found), max(s.end for s in found)


def own_account_names(user: User) -> dict[int, str]:
    """{account id: name} of the user's accounts (the only ones a strategy may run on)."""
    return {a.id: a.account_name for a in db.session.scalars(owned_accounts(user))}


def owned_strategies(user: User) -> Select[Strategy]:
    """Every query for a user's strategies starts here."""
    return (select(Strategy).where(Strategy.user_id == user.id)
            .options(selectinload(Strategy.legs), selectinload(Strategy.accounts))
            .order_by(Strategy.name, Strategy.id))


def get_owned(user: User, strategy_id: int) -> Strategy:
    """The user's strategy, or 404 (another user's id is never confirmed)."""
    strategy = db.session.scalar(owned_strategies(user).where(Strategy.id == strategy_id))
    if strategy is None:
        abort(404)
    return strategy


def _apply(strategy: Strategy, spec: StrategySpec) -> None:
    strategy.name = spec.name
    strategy.description = spec.description
    strategy.market_condition = spec.market_condition.value
    strategy.risk_profile = spec.risk_profile.value
    strategy.product = spec.product.value
    strategy.allowed_splits = spec.allowed_splits
    strategy.entry_time, strategy.exit_time, strategy.square_off_time = (
        spec.entry_time, spec.exit_time, spec.square_off_time)
    strategy.max_loss, strategy.max_profit = spec.max_loss, spec.max_profit
    strategy.trailing_type = spec.trailing_type.value if spec.trailing_type else None
    strategy.trailing_value = spec.trailing_value
    strategy.supertrend_enabled = spec.supertrend_enabled
    strategy.supertrend_period = spec.supertrend_period
    strategy.supertrend_multiplier = spec.supertrend_multiplier
    strategy.supertrend_timeframe = spec.supertrend_timeframe.value
    strategy.supertrend_exit = spec.supertrend_exit.value
    strategy.failure_policy = spec.failure_policy.value
    strategy.retry_limit = spec.retry_limit
    strategy.resend_not_placed = spec.resend_not_placed
    strategy.limit_timeout_seconds = spec.limit_timeout_seconds
    strategy.limit_fallback = spec.limit_fallback.value
    strategy.auto_entry = spec.auto_entry
    strategy.risk_scope = spec.risk_scope.value
    strategy.max_loss_action = spec.max_loss_action.value
    strategy.max_profit_action = spec.max_profit_action.value
    strategy.trailing_action = spec.trailing_action.value
    strategy.supertrend_action = spec.supertrend_action.value


def _leg_row(leg: LegSpec) -> StrategyLeg:
    rule = leg.strike
    return StrategyLeg(
        position=leg.position, underlying=leg.underlying, instrument=leg.instrument.value,
        expiry_choice=leg.expiry_choice.value,
        strike_method=rule.method.value if rule else None, strike_offset=rule.offset if rule else None,
        strike_price=rule.strike if rule else None, target_premium=rule.target_premium if rule else None,
        option_type=leg.option_type.value if leg.option_type else None, action=leg.action.value, lots=leg.lots,
        order_type=leg.order_type.value, limit_buffer_pct=leg.limit_buffer_pct,
        stop_loss_unit=leg.stop_loss[0].value if leg.stop_loss else None,
        stop_loss_value=leg.stop_loss[1] if leg.stop_loss else None,
        target_unit=leg.target[0].value if leg.target else None,
        target_value=leg.target[1] if leg.target else None)


def _check_accounts(user: User, spec: StrategySpec) -> None:
    own = own_account_names(user)
    stray = [a.account_id for a in spec.accounts if a.account_id not in own]
    if stray:  # the form checks this too; never trust a caller to have used it
        abort(400, description="A strategy can only run on your own accounts.")


def create_strategy(user: User, spec: StrategySpec) -> Strategy:
    """Write a new strategy with its legs and accounts (one transaction)."""
    _check_accounts(user, spec)
    strategy = Strategy(user_id=user.id)
    _apply(strategy, spec)
    strategy.legs = [_leg_row(leg) for leg in spec.legs]
    strategy.accounts = [StrategyAccount(account_id=a.account_id, lot_multiplier=a.lot_multiplier,
                                         capital_cap=a.capital_cap) for a in spec.accounts]
    db.session.add(strategy)
    db.session.flush()
    audit.record("strategy_created", category="strategy", user=user, commit=False,
                 details={"strategy_id": strategy.id, "name": strategy.name, "legs": len(spec.legs)})
    db.session.commit()
    return strategy


def update_strategy(user: User, strategy: Strategy, spec: StrategySpec) -> Strategy:
    """Replace a strategy's settings, legs and accounts (one transaction)."""
    if strategy.user_id != user.id:
        abort(404)
    _check_accounts(user, spec)
    _apply(strategy, spec)
    # Legs are replaced as a whole: flush the removals first, so that the new rows' positions
    # never collide with old ones under the (strategy, position) unique constraint.
    strategy.legs.clear()
    strategy.accounts.clear()
    db.session.flush()
    strategy.legs.extend(_leg_row(leg) for leg in spec.legs)
    strategy.accounts.extend(StrategyAccount(account_id=a.account_id, lot_multiplier=a.lot_multiplier,
                                             capital_cap=a.capital_cap) for a in spec.accounts)
    audit.record("strategy_updated", category="strategy", user=user, commit=False,
                 details={"strategy_id": strategy.id, "name": strategy.name, "legs": len(spec.legs)})
    db.session.commit()
    return strategy


class StrategyHasOpenRuns(AlgoMirrorError):
    """A strategy whose runs still hold positions cannot be deleted: its exit and square-off
    times are what close them on schedule."""


def delete_strategy(user: User, strategy: Strategy) -> None:
    """Delete a strategy for good. Its closed runs keep their rows (the run's strategy becomes
    none); while a run of it is still open it stays, or the run would never square off.

    Raises:
        StrategyHasOpenRuns: a run of it is entering, open or closing.
    """
    if strategy.user_id != user.id:
        abort(404)
    open_runs = list(db.session.scalars(select(StrategyRun.id).where(
        StrategyRun.strategy_id == strategy.id, StrategyRun.status.not_in([RunStatus.CLOSED, RunStatus.FAILED]))))
    if open_runs:
        raise StrategyHasOpenRuns(
            f"Strategy {strategy.name} has {len(open_runs)} open run(s) ({', '.join(f'#{r}' for r in open_runs)}): "
            "close them first; their exit and square-off times come from this strategy.")
    details = {"strategy_id": strategy.id, "name": strategy.name}
    # The closed runs keep their record without it (ON DELETE SET NULL, said here for SQLite,
    # whose foreign keys the app leaves off).
    db.session.execute(update(StrategyRun).where(StrategyRun.strategy_id == strategy.id).values(strategy_id=None))
    db.session.delete(strategy)
    audit.record("strategy_deleted", category="strategy", user=user, commit=False, details=details)
    db.session.commit()


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def _clock(value: time) -> str:
    return f"{value:%H:%M}"


def leg_dict(leg: StrategyLeg) -> dict[str, Any]:
    """A leg in the JSON API's shape (Decimals as strings, unused parameters null)."""
    return {
        "position": leg.position, "underlying": leg.underlying, "instrument": leg.instrument,
        "expiry_choice": leg.expiry_choice, "strike_method": leg.strike_method, "strike_offset": leg.strike_offset,
        "strike_price": _text(leg.strike_price), "target_premium": _text(leg.target_premium),
        "option_type": leg.option_type, "action": leg.action, "lots": leg.lots, "order_type": leg.order_type,
        "limit_buffer_pct": _text(leg.limit_buffer_pct), "stop_loss_unit": leg.stop_loss_unit,
        "stop_loss_value": _text(leg.stop_loss_value), "target_unit": leg.target_unit,
        "target_value": _text(leg.target_value),
    }


def settings_dict(strategy: Strategy) -> dict[str, Any]:
    """Everything a template keeps of a strategy: settings and legs, no name, no accounts."""
    return {
        "market_condition": strategy.market_condition, "risk_profile": strategy.risk_profile,
        "product": strategy.product, "allowed_splits": strategy.allowed_splits,
        "entry_time": _clock(strategy.entry_time),
        "exit_time": _clock(strategy.exit_time), "square_off_time": _clock(strategy.square_off_time),
        "max_loss": _text(strategy.max_loss), "max_profit": _text(strategy.max_profit),
        "trailing_type": strategy.trailing_type, "trailing_value": _text(strategy.trailing_value),
        "supertrend_enabled": strategy.supertrend_enabled, "supertrend_period": strategy.supertrend_period,
        "supertrend_multiplier": _text(strategy.supertrend_multiplier),
        "supertrend_timeframe": strategy.supertrend_timeframe, "supertrend_exit": strategy.supertrend_exit,
        "failure_policy": strategy.failure_policy, "retry_limit": strategy.retry_limit,
        "resend_not_placed": strategy.resend_not_placed, "limit_timeout_seconds": strategy.limit_timeout_seconds,
        "limit_fallback": strategy.limit_fallback, "auto_entry": strategy.auto_entry,
        "risk_scope": strategy.risk_scope, "max_loss_action": strategy.max_loss_action,
        "max_profit_action": strategy.max_profit_action, "trailing_action": strategy.trailing_action,
        "supertrend_action": strategy.supertrend_action,
        "legs": [leg_dict(leg) for leg in strategy.legs],
    }


def strategy_dict(strategy: Strategy) -> dict[str, Any]:
    """A strategy in the JSON API's shape (what GET returns and PUT accepts)."""
    return {
        "id": strategy.id, "name": strategy.name, "description": strategy.description,
        **settings_dict(strategy),
        "accounts": [{"account_id": a.account_id, "lot_multiplier": _text(a.lot_multiplier),
                      "capital_cap": _text(a.capital_cap)} for a in strategy.accounts],
        "created_at": strategy.created_at.isoformat(), "updated_at": strategy.updated_at.isoformat(),
    }
