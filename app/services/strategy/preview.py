"""The preview of a strategy before execution: resolved legs, payoff, greeks and sizing.

One preview = one resolution through the user's market-data account (resolution.py), then:
- payoff at expiry (exact) and today (T+0, Black-76 on the chain's IVs, time to the 15:30 IST
  expiry) of ONE strategy lot (every leg at its own lots), with breakevens, max profit and
  max loss ("unlimited" where it is), and the position's net greeks at the spot
  (app/domain/payoff.py);
- the sizing of every account of the strategy (margin/sizing.py size_accounts, the same
  function the calculator and the executor use).

When a leg does not resolve, the preview says which and why and shows no payoff and no
sizing: nothing is priced from stale or partial data. Nothing is cached.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from app.broker.client import OpenAlgoClient
from app.domain import formatting as fmt
from app.domain.errors import DomainError
from app.domain.expiries import format_expiry
from app.domain.instruments import InstrumentKind
from app.domain.legs import LegSpec, expiry_reference_day
from app.domain.money import format_inr
from app.domain.payoff import (
    PayoffLeg,
    analyze_payoff,
    chart_range,
    payoff_at_expiry,
    payoff_today,
    position_greeks,
    price_grid,
)
from app.domain.sizing import RiskProfile, SizingLeg
from app.models.strategies import Strategy, StrategyLeg
from app.models.types import utcnow
from app.models.users import User
from app.services.margin.sizing import (
    AccountChoice,
    AccountNotFound,
    ContractLeg,
    MarginUnavailable,
    result_as_json,
    size_accounts,
    skipped_as_json,
    split_sizable,
)
from app.services.strategy.resolution import (
    LegError,
    Resolution,
    ResolvedLeg,
    failed_resolution,
    market_source,
    resolve_legs,
)

logger = logging.getLogger(__name__)

CHART_POINTS = 101


def leg_spec(row: StrategyLeg) -> LegSpec:
    """The domain leg of a stored leg row (the resolver never sees the ORM)."""
    return LegSpec(row.underlying, row.kind(), row.expiry(), row.rule(), row.option(), row.side(), row.lots,
                   row.order(), row.limit_buffer_pct)


@dataclass(frozen=True)
class _Plan:
    """What a preview needs from the stored strategy, read before any broker call."""

    strategy_id: int
    name: str
    profile: RiskProfile
    product: str
    allowed_splits: int
    specs: tuple[LegSpec, ...]
    accounts: tuple[AccountChoice, ...]


class PreviewInvalid(ValueError):
    """The stored strategy cannot be previewed as it is (a leg no longer validates): a 422."""


def strategy_plan(strategy: Strategy) -> _Plan:
    """What a preview or an execution needs from the stored strategy, read before any broker call.

    Raises:
        PreviewInvalid: a stored leg no longer validates, or there are no legs.
    """
    return _plan(strategy)


def _plan(strategy: Strategy) -> _Plan:
    specs = []
    for number, row in enumerate(sorted(strategy.legs, key=lambda r: r.position), start=1):
        try:
            specs.append(leg_spec(row))
        except ValueError as exc:  # stored before a rule tightened, or edited outside the app
            raise PreviewInvalid(f"Leg {number}: {exc}. Edit the leg and save the strategy again.") from exc
    if not specs:
        raise PreviewInvalid("The strategy has no legs.")
    return _Plan(strategy.id, strategy.name, strategy.profile(), strategy.product_type().value,
                 strategy.allowed_splits, tuple(specs),
                 tuple(AccountChoice(a.account_id, a.lot_multiplier, a.capital_cap) for a in strategy.accounts))


def build_preview(user: User, strategy: Strategy, *, now: datetime | None = None) -> dict[str, Any]:
    """The preview of one of the user's strategies, as JSON-ready data.

    Args:
        user: the owner (the caller found `strategy` through the owner-scoped query).
        strategy: the stored strategy.
        now: the valuation instant (aware UTC; default: now).
    Returns:
        {"status": "ok" | "error", "error", "source_down", "strategy", "source", "resolved_at",
         "legs", "payoff", "sizing"}; on "error", "payoff" and "sizing" are None, and
        "source_down" says whether the market-data account itself failed (docs/strategies.md).
    Raises:
        PreviewInvalid: a stored leg no longer validates, or there are no legs.
    """
    moment = now or utcnow()
    plan = _plan(strategy)  # read every stored value now: the commit below expires the rows
    source = market_source(user)
    if source.client is None:
        resolution = failed_resolution(plan.specs, moment, source.name, source.error or "No market-data account.")
    else:
        resolution = resolve_legs(source.client, plan.specs, now=moment, source=source.name)
    body: dict[str, Any] = {
        "strategy": {"id": plan.strategy_id, "name": plan.name, "risk_profile": plan.profile.value,
                     "product": plan.product, "allowed_splits": plan.allowed_splits},
        "source": resolution.source, "resolved_at": moment.astimezone(UTC).isoformat(),
        "legs": [_leg_json(leg) for leg in resolution.legs], "payoff": None, "sizing": None,
    }
    if not resolution.ok:
        return {"status": "error", "error": _summary(resolution), "source_down": resolution.error is not None,
                **body}
    legs = resolution.resolved
    body["payoff"] = payoff_json(legs, moment)
    body["sizing"] = _sizing(user, plan, legs, source.client, moment)
    return {"status": "ok", "error": None, "source_down": False, **body}


def _summary(resolution: Resolution) -> str:
    if resolution.error:
        return resolution.error
    return "Some legs could not be resolved: " + "; ".join(e.message for e in resolution.errors)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _leg_json(leg: ResolvedLeg | LegError) -> dict[str, Any]:
    spec = leg.spec
    base = {"number": leg.number, "label": spec.label, "underlying": spec.underlying, "kind": spec.kind.value,
            "action": spec.action.value, "lots": spec.lots, "order_type": spec.order_type.value}
    if isinstance(leg, LegError):
        return {**base, "status": "error", "reason": leg.reason.value, "message": leg.message}
    return {**base, "status": "resolved", "symbol": leg.symbol, "exchange": leg.exchange,
            "expiry": leg.expiry.isoformat(), "expiry_code": format_expiry(leg.expiry),
            "strike": _text(leg.strike), "option_type": None if leg.option_type is None else leg.option_type.value,
            "ltp": str(leg.ltp), "limit_price": _text(leg.limit_price), "quote_source": leg.quote_source,
            "iv": _text(leg.iv), "delta": _text(leg.delta), "gamma": _text(leg.gamma), "theta": _text(leg.theta),
            "vega": _text(leg.vega), "lot_size": leg.lot_size, "lot_source": leg.lot_source,
            "freeze_qty": leg.freeze_qty, "quantity": leg.quantity, "spot": str(leg.spot) if leg.spot > 0 else None,
            "display": {"strike": fmt.strike(leg.strike) if leg.strike is not None else "FUT",
                        "ltp": fmt.indian_number(leg.ltp, 2),
                        "limit_price": fmt.indian_number(leg.limit_price, 2) if leg.limit_price else "MARKET",
                        "iv": fmt.fixed(leg.iv, 2), "delta": fmt.fixed(leg.delta, 4),
                        "gamma": fmt.fixed(leg.gamma, 6), "theta": fmt.fixed(leg.theta, 2),
                        "vega": fmt.fixed(leg.vega, 2), "expiry": leg.expiry.strftime("%d %b %Y"),
                        "quantity": fmt.indian_number(leg.quantity)}}


def payoff_legs(legs: list[ResolvedLeg]) -> list[PayoffLeg]:
    """One strategy lot of resolved legs as payoff legs, entered at their LTPs."""
    return [PayoffLeg(leg.spec.action, leg.option_type, leg.strike, leg.ltp, leg.quantity, leg.iv,
                      leg.expires_at) for leg in legs]


def _spot(legs: list[ResolvedLeg]) -> Decimal:
    """The underlying's price from the chain answers; futures-only positions use the future's LTP."""
    spots = [leg.spot for leg in legs if leg.spot > 0]
    return spots[0] if spots else legs[0].ltp


def payoff_json(legs: list[ResolvedLeg], now: datetime) -> dict[str, Any]:
    """Payoff at expiry and T+0, breakevens, extremes and net greeks of one strategy lot.

    Several underlyings in one strategy have no single price axis, and legs of different expiries
    (calendar, diagonal) no single expiry: the payoff is then left out with a note (the legs and
    sizing still show).
    """
    underlyings = {leg.spec.underlying for leg in legs}
    if len(underlyings) > 1:
        names = ", ".join(sorted(underlyings))
        return {"available": False, "note": f"No single payoff for several underlyings ({names})."}
    expiries = {leg.expiry for leg in legs}
    if len(expiries) > 1:  # a calendar or diagonal spread: "at expiry" would treat every leg as expiring at once
        dates = ", ".join(sorted(d.strftime("%d %b %Y") for d in expiries))
        return {"available": False, "note": f"The legs expire on different dates ({dates}): no single payoff "
                                            "at expiry is shown for calendar or diagonal spreads."}
    items = payoff_legs(legs)
    spot = _spot(legs)
    summary = analyze_payoff(items)
    low, high = chart_range(items, spot)
    prices = price_grid(low.quantize(Decimal(1)), high.quantize(Decimal(1)), CHART_POINTS)
    at_expiry = payoff_at_expiry(items, prices)
    note = None
    today: tuple[Decimal, ...] | None = None
    greeks = None
    missing_iv = [leg.number for leg in legs if leg.spec.kind is InstrumentKind.OPTION and leg.iv is None]
    if missing_iv:
        note = f"No implied volatility for leg(s) {', '.join(map(str, missing_iv))}: no T+0 curve or greeks."
    else:
        try:
            today = payoff_today(items, prices, now)
            g = position_greeks(items, spot, now)
            greeks = {"delta": str(g.delta), "gamma": str(g.gamma), "theta": str(g.theta), "vega": str(g.vega)}
        except ValueError as exc:  # e.g. a leg already past its expiry instant
            note = f"No T+0 curve: {exc}"
    display = {
        "spot": fmt.indian_number(spot, 2),
        "max_profit": "Unlimited" if summary.max_profit is None else format_inr(summary.max_profit, 2),
        "max_loss": "Unlimited" if summary.max_loss is None else format_inr(summary.max_loss, 2),
        "breakevens": [fmt.indian_number(b, 2) for b in summary.breakevens] or ["none"],
        "greeks": None if greeks is None else {
            "delta": fmt.fixed(Decimal(greeks["delta"]), 2), "gamma": fmt.fixed(Decimal(greeks["gamma"]), 4),
            "theta": format_inr(Decimal(greeks["theta"]), 2), "vega": format_inr(Decimal(greeks["vega"]), 2)},
    }
    return {
        "available": True, "note": note, "underlying": next(iter(underlyings)), "spot": str(spot), "display": display,
        "basis": "one strategy lot (every leg at its own lots), entered at the LTPs shown",
        "breakevens": [str(b.quantize(Decimal('0.01'))) for b in summary.breakevens],
        "max_profit": _text(summary.max_profit), "max_loss": _text(summary.max_loss),
        "profit_unlimited": summary.profit_unlimited, "loss_unlimited": summary.loss_unlimited,
        "greeks": greeks,
        "points": [{"price": str(p), "expiry": str(e), "today": None if today is None else str(today[i]),
                    "display": {"price": fmt.indian_number(p, 0), "expiry": format_inr(e, 0),
                                "today": "" if today is None else format_inr(today[i], 0)}}
                   for i, (p, e) in enumerate(zip(prices, at_expiry, strict=True))],
    }


def _sizing(user: User, plan: _Plan, legs: list[ResolvedLeg], client: OpenAlgoClient | None,
            now: datetime) -> dict[str, Any]:
    if not plan.accounts:
        return {"error": "No accounts are chosen for this strategy.", "accounts": []}
    order = [a.account_id for a in plan.accounts]
    sizable, skipped = split_sizable(user, plan.accounts)  # an inactive or deleted account is its own row
    skipped_rows = {s.account_id: skipped_as_json(s) for s in skipped}
    if not sizable:
        return {"error": "No sizing: none of this strategy's accounts is active.",
                "accounts": _with_display({"accounts": list(skipped_rows.values())})["accounts"]}
    plan = replace(plan, accounts=tuple(sizable))
    contract_legs = [ContractLeg(SizingLeg(leg.spec.underlying, leg.spec.kind, leg.spec.action, leg.option_type,
                                           leg.spec.lots, leg.lot_size, leg.freeze_qty), leg.symbol, leg.exchange)
                     for leg in legs]
    try:
        result = size_accounts(user, contract_legs, plan.profile, plan.accounts, client=client,
                               allowed_splits=plan.allowed_splits,
                               today=expiry_reference_day(now), product=plan.product)
    except (AccountNotFound, MarginUnavailable, DomainError) as exc:
        logger.info("Preview of strategy %s: no sizing (%s)", plan.strategy_id, exc)
        return {"error": f"No sizing: {exc}", "accounts": []}
    sized = result_as_json(result)
    rows = {row["account_id"]: row for row in sized["accounts"]} | skipped_rows
    sized["accounts"] = [rows[i] for i in dict.fromkeys(order)]
    return {"error": None, **_with_display(sized)}


def _inr(value: str | None) -> str:
    return fmt.MISSING if value is None else format_inr(Decimal(value), 0)


LEG_TOTALS = ("lots", "quantity", "child_orders")


def _leg_display(leg: dict[str, Any]) -> dict[str, str]:
    return {**{key: fmt.indian_number(leg[key]) for key in LEG_TOTALS},
            "child_quantities": " + ".join(fmt.indian_number(q) for q in leg["child_quantities"])}


def _trades(row: dict[str, Any]) -> bool:
    """The account would place orders: sized, not skipped, and some leg has lots."""
    return not row.get("error") and not row.get("skip_reason") and any(leg["lots"] for leg in row.get("legs") or [])


def _total(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The total row: margin used, and each leg's lots, quantity and child orders, summed over
    the accounts that trade (skipped and failed accounts add nothing)."""
    trading = [row for row in rows if _trades(row)]
    margin = sum((Decimal(row["margin_used"]) for row in trading), Decimal(0))
    count = len(trading[0]["legs"]) if trading else 0
    legs = [{key: sum(row["legs"][i][key] for row in trading) for key in LEG_TOTALS} for i in range(count)]
    return {"accounts": len(trading), "margin_used": str(margin.quantize(Decimal("0.01"))), "legs": legs,
            "display": {"margin_used": format_inr(margin, 0),
                        "legs": [{key: fmt.indian_number(leg[key]) for key in LEG_TOTALS} for leg in legs]}}


def _with_display(sizing: dict[str, Any]) -> dict[str, Any]:
    """The sizing JSON with display forms beside its exact values (₹ amounts; each leg's lots,
    quantity and child orders), and the total row."""
    sizing["display"] = {"margin_per_strategy_lot": _inr(sizing.get("margin_per_strategy_lot"))}
    rows = sizing.get("accounts", [])
    for row in rows:
        row["display"] = {key: _inr(row.get(key)) for key in ("available_margin", "usable_margin", "margin_used")}
        row["display"]["legs"] = [_leg_display(leg) for leg in row.get("legs") or []]
    sizing["total"] = _total(rows)
    return sizing
