"""The risk engine's vocabulary (issue 10): rule scopes, breach actions and risk event types.

Pure values shared by the rules (app/domain/risk_rules.py), the builder, the RiskEvent model and
the risk monitor. DOMAIN.md "Risk management semantics" defines them.
"""

from __future__ import annotations

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
