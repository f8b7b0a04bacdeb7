"""The risk engine's vocabulary (issue 10): rule scopes, breach actions and risk event types.

Pure values shared by the rules (app/domain/risk_rules.py), the builder, the RiskEvent model and
the risk monitor. DOMAIN.md "Risk management semantics" defines them.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum


class RiskScope(StrEnum):
    """Per account: each account's copy of the run exits on its own P&L against thresholds scaled
    to its size. Combined: the summed P&L of all accounts against the summed thresholds; all exit
    together."""

    PER_ACCOUNT = "per_account"
    COMBINED = "combined"


class RiskAction(StrEnum):
    """What a breached rule does: close everything in scope, close only the losing legs, or only
    tell the trader (once per breach)."""

    CLOSE_ALL = "close_all"
    CLOSE_PARTIAL = "close_partial"
    ALERT_ONLY = "alert_only"


class RiskEventType(StrEnum):
    MAX_LOSS = "max_loss"
    MAX_PROFIT = "max_profit"
    TRAILING_SL = "trailing_sl"
    LEG_SL = "leg_sl"
    LEG_TP = "leg_tp"
    ACCOUNT_LOSS_LIMIT = "account_loss_limit"
    ACCOUNT_PROFIT_LIMIT = "account_profit_limit"
    SUPERTREND = "supertrend"
    SQUARE_OFF = "square_off"
    KILL_SWITCH = "kill_switch"
    MANUAL_EXIT = "manual_exit"
    PRICES_UNRELIABLE = "prices_unreliable"


# --- What a risk event records (issue 10, the RiskEvent model) ------------------------------------

class RiskEventAction(StrEnum):
    """What was done about a decision: one of the breach actions, or that the rule held (a bad
    price, a missing history) or that nothing needed doing (e.g. the run was already flat)."""

    CLOSE_ALL = "close_all"
    CLOSE_PARTIAL = "close_partial"
    ALERT_ONLY = "alert_only"
    HELD = "held"
    NONE = "none"


class RiskEventOutcome(StrEnum):
    """How the exit intents a risk event names ended; updated as they settle."""

    PENDING = "pending"
    FILLED = "filled"
    PARTIAL = "partial"
    FAILED = "failed"


DEFAULT_SCOPE = RiskScope.PER_ACCOUNT
DEFAULT_ACTION = RiskAction.CLOSE_ALL

# The strategy-level rules whose breach action the trader chooses in the builder. Leg stops and
# targets always close their own leg; account limits always close the account's runs.
RULES_WITH_ACTION: tuple[RiskEventType, ...] = (
    RiskEventType.MAX_LOSS,
    RiskEventType.MAX_PROFIT,
    RiskEventType.TRAILING_SL,
    RiskEventType.SUPERTREND,
)

SCOPE_LABELS: dict[RiskScope, str] = {
    RiskScope.PER_ACCOUNT: "Per account (thresholds scale with each account's size; each exits on its own P&L)",
    RiskScope.COMBINED: "Combined (summed P&L against summed thresholds; all accounts exit together)",
}
ACTION_LABELS: dict[RiskAction, str] = {
    RiskAction.CLOSE_ALL: "Close all legs",
    RiskAction.CLOSE_PARTIAL: "Close the losing legs only",
    RiskAction.ALERT_ONLY: "Alert only (send nothing)",
}
EVENT_TYPE_LABELS: dict[RiskEventType, str] = {
    RiskEventType.MAX_LOSS: "Max loss",
    RiskEventType.MAX_PROFIT: "Max profit",
    RiskEventType.TRAILING_SL: "Trailing stop",
    RiskEventType.LEG_SL: "Leg stop loss",
    RiskEventType.LEG_TP: "Leg target",
    RiskEventType.ACCOUNT_LOSS_LIMIT: "Account daily loss limit",
    RiskEventType.ACCOUNT_PROFIT_LIMIT: "Account daily profit limit",
    RiskEventType.SUPERTREND: "Supertrend",
    RiskEventType.SQUARE_OFF: "Square-off",
    RiskEventType.KILL_SWITCH: "Kill switch",
    RiskEventType.MANUAL_EXIT: "Manual exit",
    RiskEventType.PRICES_UNRELIABLE: "Prices unreliable",
}

# Numeric(14, 2): twelve integer digits; ₹10,000 crore is far beyond any account.
MAX_DAILY_LIMIT = Decimal("100000000000")


def daily_limit_problem(value: Decimal | None) -> str | None:
    """Check an account's daily loss or profit limit (₹ of the IST trading day's P&L).

    Args:
        value: the limit; None means "no limit".
    Returns:
        None when the value is absent or a finite amount > 0 with at most 2 decimals; otherwise
        the message a form shows beside the field. A limit of 0 would block every entry at the
        first tick, so it is refused rather than read as "off".
    """
    if value is None:
        return None
    if not value.is_finite():
        return "Enter a number."
    if value <= 0:
        return "Must be greater than 0 (leave empty for no limit)."
    if value > MAX_DAILY_LIMIT:
        return f"Must be at most {MAX_DAILY_LIMIT:,}."
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        return "Use at most 2 decimal places."
    return None

