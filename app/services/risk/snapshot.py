"""The risk rules a run was entered with: a snapshot of its strategy's risk settings.

The planner stores `snapshot(strategy)` on the run (StrategyRun.risk_settings) in the same
transaction as its intents, so editing or deleting the strategy later never changes, or removes,
the protection of a run that is already open: the next run takes the new settings. The risk
monitor reads it back with `run_settings`. JSON holds numbers as strings (exact decimals).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from app.domain.risk_rules import LegRiskRule, RunRiskSettings
from app.domain.risk_settings import RiskAction, RiskEventType, RiskScope
from app.domain.strategy_settings import LegRiskUnit, SupertrendExit, SupertrendTimeframe, TrailingType
from app.models.strategies import Strategy

VERSION = 1


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _leg_rule(rule: tuple[LegRiskUnit, Decimal] | None) -> list[str] | None:
    return None if rule is None else [rule[0].value, format(rule[1], "f")]


def snapshot(strategy: Strategy) -> dict[str, Any]:
    """The strategy's risk settings as JSON (leg numbers are the builder's order, from 1)."""
    return {
        "version": VERSION,
        "scope": strategy.scope().value,
        "max_loss": _text(strategy.max_loss),
        "max_loss_action": strategy.breach_action(RiskEventType.MAX_LOSS).value,
        "max_profit": _text(strategy.max_profit),
        "max_profit_action": strategy.breach_action(RiskEventType.MAX_PROFIT).value,
        "trailing_type": strategy.trailing_type or None,
        "trailing_value": _text(strategy.trailing_value) if strategy.trailing_type else None,
        "trailing_action": strategy.breach_action(RiskEventType.TRAILING_SL).value,
        "supertrend": {
            "enabled": bool(strategy.supertrend_enabled), "period": strategy.supertrend_period,
            "multiplier": _text(strategy.supertrend_multiplier), "timeframe": strategy.supertrend_timeframe,
            "exit": strategy.supertrend_exit,
            "action": strategy.breach_action(RiskEventType.SUPERTREND).value,
        },
        "legs": {str(number): {"stop_loss": _leg_rule(leg.stop_loss()), "target": _leg_rule(leg.target())}
                 for number, leg in enumerate(strategy.legs, start=1)},
    }


@dataclass(frozen=True)
class SupertrendSettings:
    period: int
    multiplier: Decimal
    timeframe: SupertrendTimeframe
    exit: SupertrendExit
    action: RiskAction


def _unit_rule(raw: Any) -> tuple[LegRiskUnit, Decimal] | None:
    if not raw:
        return None
    return LegRiskUnit(raw[0]), Decimal(str(raw[1]))


def run_settings(data: dict[str, Any] | None, base_quantity_per_leg: int) -> RunRiskSettings | None:
    """The rules of a run from its snapshot; None when the run has none (entered before issue 10)."""
    if not data:
        return None
    trailing = data.get("trailing_type")
    legs = tuple(LegRiskRule(int(number), _unit_rule(rule.get("stop_loss")), _unit_rule(rule.get("target")))
                 for number, rule in sorted((data.get("legs") or {}).items(), key=lambda item: int(item[0]))
                 if rule.get("stop_loss") or rule.get("target"))
    return RunRiskSettings(
        scope=RiskScope(data.get("scope") or RiskScope.PER_ACCOUNT.value),
        base_quantity_per_leg=base_quantity_per_leg,
        max_loss=_decimal(data.get("max_loss")), max_loss_action=RiskAction(data["max_loss_action"]),
        max_profit=_decimal(data.get("max_profit")), max_profit_action=RiskAction(data["max_profit_action"]),
        trailing_type=TrailingType(trailing) if trailing else None,
        trailing_value=_decimal(data.get("trailing_value")) if trailing else None,
        trailing_action=RiskAction(data["trailing_action"]), leg_rules=legs)


def supertrend_settings(data: dict[str, Any] | None) -> SupertrendSettings | None:
    """The run's Supertrend exit, or None when it has none."""
    raw = (data or {}).get("supertrend") or {}
    if not raw.get("enabled"):
        return None
    return SupertrendSettings(period=int(raw["period"]), multiplier=Decimal(str(raw["multiplier"])),
                              timeframe=SupertrendTimeframe(raw["timeframe"]), exit=SupertrendExit(raw["exit"]),
                              action=RiskAction(raw["action"]))
