"""Strategy-level vocabulary and the rules on a strategy's times (issue 8, DOMAIN.md).

Pure: no Flask, no database. The leg vocabulary (underlyings, option type, action, strike
rules, expiry choices) lives in instruments.py, strikes.py and expiries.py.
"""

from __future__ import annotations

from datetime import time
from enum import StrEnum

# DOMAIN.md "Market hours": NSE/BSE F&O regular session, IST wall-clock.
MARKET_OPEN = time(9, 15)
MARKET_CLOSE = time(15, 30)

MAX_LEGS = 20
MIN_LEGS = 1

# Allowed splits: a leg above the freeze quantity is sent as at most this many child orders
# (DOMAIN.md "Contract settings"), which caps a leg at max lots per order × allowed splits.
# Every child order counts against the account's 10 orders/s, so the cap is kept small.
MIN_SPLITS = 1
MAX_SPLITS = 20
DEFAULT_SPLITS = 5


class MarketCondition(StrEnum):
    """On which days a strategy may enter."""

    ANY = "any"
    EXPIRY = "expiry"
    NON_EXPIRY = "non_expiry"


class Product(StrEnum):
    """OpenAlgo product: intraday or carry-forward."""

    MIS = "MIS"
    NRML = "NRML"


class OrderType(StrEnum):
    """How a leg's entry order is priced: at market, or a limit at LTP ± a buffer %."""

    MARKET = "MARKET"
    LIMIT = "LIMIT"


class TrailingType(StrEnum):
    """Distance of a trailing stop (DOMAIN.md "Risk management semantics")."""

    AMOUNT = "amount"
    PERCENTAGE = "percentage"
    POINTS = "points"


class SupertrendTimeframe(StrEnum):
    M1 = "1m"
    M3 = "3m"
    M5 = "5m"
    M10 = "10m"
    M15 = "15m"
    M30 = "30m"
    H1 = "1h"


class SupertrendExit(StrEnum):
    """Breakout: exit when the net-premium trend turns bullish; breakdown: when it turns bearish."""

    BREAKOUT = "breakout"
    BREAKDOWN = "breakdown"


class LegRiskUnit(StrEnum):
    """A leg's stop loss or target, in premium points or percent of the entry price."""

    POINTS = "points"
    PERCENTAGE = "percentage"


def time_problems(entry: time | None, exit_: time | None, square_off: time | None,
                  market_open: time = MARKET_OPEN, market_close: time = MARKET_CLOSE) -> dict[str, str]:
    """Check a strategy's entry, exit and square-off times.

    Args:
        entry, exit_, square_off: IST wall-clock times (None = missing; reported elsewhere).
        market_open, market_close: the regular session, IST.
    Returns:
        {"entry_time" | "exit_time" | "square_off_time": message} for each problem, empty
        when entry < exit <= square-off and all three lie within [open, close]. Each time is
        reported once: a time outside the session is not also called out of order.
    """
    problems: dict[str, str] = {}
    hours = f"{market_open:%H:%M}–{market_close:%H:%M} IST"
    named = {"entry_time": entry, "exit_time": exit_, "square_off_time": square_off}
    for name, value in named.items():
        if value is not None and not market_open <= value <= market_close:
            problems[name] = f"Choose a time within market hours ({hours})."
    if entry is not None and exit_ is not None and "exit_time" not in problems and "entry_time" not in problems:
        if not entry < exit_:
            problems["exit_time"] = "The exit time must be after the entry time."
    if exit_ is not None and square_off is not None and "square_off_time" not in problems \
            and "exit_time" not in problems and square_off < exit_:
        problems["square_off_time"] = "The square-off time must be at or after the exit time."
    return problems


# Execution settings of a strategy (issue 9, docs/execution.md).
MAX_RETRIES = 5
MIN_LIMIT_TIMEOUT = 1
MAX_LIMIT_TIMEOUT = 600


class FailurePolicy(StrEnum):
    """What the engine does when part of an account's entry fails (LESSONS.md "Orders")."""

    REPORT = "report"  # leave what filled, flag the account
    RETRY = "retry"  # re-send a rejected leg up to retry_limit times when the rejection is not final
    UNWIND = "unwind"  # close what this account filled in this run


class LimitFallback(StrEnum):
    """An entry LIMIT order still unfilled after the strategy's limit timeout."""

    CANCEL = "cancel"  # cancel it and report
    MARKET = "market"  # cancel it and send the rest as a MARKET order
