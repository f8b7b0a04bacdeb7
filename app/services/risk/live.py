"""The risk monitor's live view of a run, for the run page (StrategyRun.risk_state["live"]).

The monitor lives in the leader process; the pages are served by any web worker. So after each
evaluation it writes what a trader watches (P&L per account and combined, the max loss and
profit lines, the trailing stops' peak and stop, each leg's stop and target, each price's age)
into the run's row, at most once a second (docs/risk.md "Risk monitor"). JSON of strings.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from app.domain.price_guard import PriceCheck
from app.domain.risk_rules import (
    RunEvaluation,
    leg_stop_price,
    leg_target_price,
)
from app.services.risk.book import RunBook


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value.quantize(Decimal("0.01")), "f")


def _line(value: Decimal | None, sign: int) -> str | None:
    return None if value is None else _text(sign * value)


def live_view(book: RunBook, result: RunEvaluation | None, checks: dict[tuple[str, str], PriceCheck],
              now: datetime, reason: str = "", chart: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the run page shows of the monitor; `result` None when the rules held; `chart` the
    net premium's closed candles with the Supertrend line (runs with a Supertrend exit)."""
    settings = book.settings
    names = {a.account_id: a.account_name for a in book.accounts}
    prices = [{"symbol": s, "exchange": e, "ltp": _text(c.price), "usable": c.usable, "reason": c.reason,
               "age_s": None if c.age is None else round(c.age.total_seconds(), 1)}
              for (s, e), c in sorted(checks.items())]
    view: dict[str, Any] = {"evaluated_at": now.isoformat(timespec="seconds"), "reliable": result is not None,
                            "reason": reason, "prices": prices, "units": [], "legs": [], "combined_pnl": None,
                            "chart": chart}
    if result is None:
        return view
    view["combined_pnl"] = _text(result.combined_pnl)
    pnls = dict(result.account_pnls)
    trailing = dict(result.state.trailing)
    if settings is None:
        view["units"] = [{"name": names.get(a, str(a)), "pnl": _text(p)} for a, p in pnls.items()]
        return view
    deciding = [a for a in book.accounts if a.account_id in pnls]
    for limits in result.limits:  # the thresholds the rules were evaluated against
        trail = trailing.get(limits.key)
        pnl = result.combined_pnl if limits.key is None else pnls[limits.key]
        view["units"].append({
            "name": "Combined" if limits.key is None else names.get(limits.key, str(limits.key)), "pnl": _text(pnl),
            "max_loss": _line(limits.max_loss, -1), "max_profit": _line(limits.max_profit, 1),
            "trailing": None if trail is None else {"armed": trail.armed, "peak": _text(trail.peak),
                                                    "stop": _text(trail.stop)}})
    for account in deciding:
        for position in account.positions(book.legs, {k: c.price for k, c in checks.items() if c.price}):
            rule = settings.leg_rule(position.leg_number)
            entry = position.entry_price
            if rule is None or entry is None or position.open_quantity == 0:
                continue
            view["legs"].append({
                "account": account.account_name, "leg": position.leg_number,
                "entry": _text(entry), "ltp": _text(position.ltp),
                "stop": _text(leg_stop_price(position.action, entry, *rule.stop_loss)) if rule.stop_loss else None,
                "target": _text(leg_target_price(position.action, entry, *rule.target)) if rule.target else None})
    return view
