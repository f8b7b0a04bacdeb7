"""The built-in strategy templates, as plain data (seeded by migration 0005).

Each spec has the JSON API's shape without name and accounts. All legs are NIFTY, current
week, one lot, at market; the strikes are placed along the real strike list (ATM / OTM n),
never at fixed distances in points. Entries at 09:20 IST (after the opening auction
settles), exits at 15:00, square-off at 15:15 (before the brokers' own auto square-off).
"""

from __future__ import annotations

from typing import Any

_TIMES = {"entry_time": "09:20", "exit_time": "15:00", "square_off_time": "15:15"}


def _leg(action: str, option_type: str, method: str, offset: int | None = None) -> dict[str, Any]:
    return {"underlying": "NIFTY", "instrument": "option", "expiry_choice": "current_week",
            "strike_method": method, "strike_offset": offset, "option_type": option_type,
            "action": action, "lots": 1, "order_type": "MARKET"}


def _spec(*legs: dict[str, Any]) -> dict[str, Any]:
    return {"market_condition": "any", "risk_profile": "fixed_lots", "product": "MIS", **_TIMES,
            "legs": list(legs)}


BUILTIN_TEMPLATES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("Short straddle", "Sell the ATM call and the ATM put: collects the most premium, unlimited risk both ways.",
     _spec(_leg("SELL", "CE", "atm"), _leg("SELL", "PE", "atm"))),
    ("Short strangle", "Sell a call and a put 4 strikes out of the money: a wider profit zone than the straddle.",
     _spec(_leg("SELL", "CE", "otm", 4), _leg("SELL", "PE", "otm", 4))),
    ("Iron condor", "Short strangle 2 strikes out, hedged by calls and puts 6 strikes out: limited risk.",
     _spec(_leg("SELL", "CE", "otm", 2), _leg("BUY", "CE", "otm", 6),
           _leg("SELL", "PE", "otm", 2), _leg("BUY", "PE", "otm", 6))),
    ("Iron butterfly", "Short ATM straddle hedged by calls and puts 4 strikes out: limited risk.",
     _spec(_leg("SELL", "CE", "atm"), _leg("BUY", "CE", "otm", 4),
           _leg("SELL", "PE", "atm"), _leg("BUY", "PE", "otm", 4))),
    ("Bull call spread", "Buy the ATM call, sell a call 2 strikes out: a cheaper bullish bet with capped profit.",
     _spec(_leg("BUY", "CE", "atm"), _leg("SELL", "CE", "otm", 2))),
    ("Bear put spread", "Buy the ATM put, sell a put 2 strikes out: a cheaper bearish bet with capped profit.",
     _spec(_leg("BUY", "PE", "atm"), _leg("SELL", "PE", "otm", 2))),
    ("Long straddle", "Buy the ATM call and the ATM put: profits from a large move either way.",
     _spec(_leg("BUY", "CE", "atm"), _leg("BUY", "PE", "atm"))),
)
