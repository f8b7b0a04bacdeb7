"""size_accounts(): the one per-account sizing, used by the margin calculator, the strategy
preview and the executor, so that their numbers are the same.

It takes the strategy's legs (app/domain/sizing.py SizingLeg, each with its contract when
resolved), computes the margin of one strategy lot once (the broker's basket figure through
the market-data account when every leg has a contract and the broker answers `/margin`, else
the margin table at today's expiry / non-expiry rates), reads every chosen account's funds in
parallel through the account refresher (an account that fails or does not answer in time is
an error row and never holds up the others; no database transaction is held while waiting),
and sizes each account with app/domain/sizing.py size_account.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import wait
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import select

from app.broker.client import MarginNotSupported, MarginPosition, OpenAlgoClient
from app.broker.errors import BrokerError
from app.domain.errors import DomainError
from app.domain.legs import expiry_reference_day
from app.domain.margin import (
    AVAILABLE_MARGIN_FORMULA,
    MarginRates,
    StrategyLotMargin,
    available_margin,
    strategy_lot_margin,
)
from app.domain.sizing import AccountSizing, RiskProfile, SizingLeg, size_account
from app.extensions import db
from app.models.accounts import TradingAccount
from app.models.types import utcnow
from app.models.users import User
from app.services.account_data import FetchResult, refresher
from app.services.accounts import owned_accounts
from app.services.dashboard import funds_from_cache
from app.services.margin.contracts import ExpiryDay, expiry_today
from app.services.margin.tables import UnknownRow, margin_rows

logger = logging.getLogger(__name__)


class AccountNotFound(LookupError):
    """An account id that is not one of the user's active accounts (never says whose it is)."""

    def __init__(self, account_ids: Sequence[int]):
        super().__init__(f"not one of your active accounts: {', '.join(str(i) for i in account_ids)}")
        self.account_ids = tuple(account_ids)


class MarginUnavailable(Exception):
    """The margin of one strategy lot cannot be known (no table rows, no margin needed)."""


@dataclass(frozen=True)
class ContractLeg:
    """A leg as sizing takes it: the domain's SizingLeg, plus its contract once resolved.

    The broker's basket margin needs every leg's symbol and exchange; without them the
    margin table is used.
    """

    leg: SizingLeg
    symbol: str | None = None
    exchange: str | None = None


@dataclass(frozen=True)
class AccountChoice:
    """An account to size, with its strategy settings (multiplier for fixed lots, capital cap)."""

    account_id: int
    multiplier: Decimal = Decimal(1)
    capital_cap: Decimal | None = None


@dataclass(frozen=True)
class AccountRow:
    """One account's line: its sizing, or the error that prevented it."""

    account_id: int
    name: str
    is_paper: bool
    available_margin: Decimal | None
    sizing: AccountSizing | None
    error: str | None = None


@dataclass(frozen=True)
class SizingResult:
    """Everything a page (or the executor) shows or uses about a sizing."""

    margin: StrategyLotMargin
    expiry_days: dict[str, ExpiryDay]
    rows: tuple[AccountRow, ...]
    notes: tuple[str, ...] = field(default=())
    formula: str = AVAILABLE_MARGIN_FORMULA


def owned_active_accounts(user: User, account_ids: Sequence[int]) -> list[TradingAccount]:
    """The user's own active accounts with these ids, in the order given.

    Raises:
        AccountNotFound: an id is unknown, deleted, inactive or another user's.
    """
    wanted = list(dict.fromkeys(account_ids))
    rows = {a.id: a for a in db.session.scalars(
        owned_accounts(user, include_inactive=False).where(TradingAccount.id.in_(wanted)))}
    missing = [i for i in wanted if i not in rows]
    if missing:
        raise AccountNotFound(missing)
    return [rows[i] for i in wanted]


@dataclass(frozen=True)
class SkippedAccount:
    """One of the user's own chosen accounts that is not sized, and why ("inactive", "deleted")."""

    account_id: int
    name: str
    is_paper: bool
    reason: str


def split_sizable(user: User, accounts: Sequence[AccountChoice]) -> tuple[list[AccountChoice], list[SkippedAccount]]:
    """The chosen accounts that can be sized, and the user's own inactive or deleted ones.

    A stored strategy keeps its accounts when one is deactivated or deleted; its preview sizes
    the others and shows each of these as a skipped row. An id that is not the user's at all
    stays in the first list, so that size_accounts still refuses it (AccountNotFound).
    """
    ids = [a.account_id for a in accounts]
    rows = {a.id: a for a in db.session.scalars(
        select(TradingAccount).where(TradingAccount.user_id == user.id, TradingAccount.id.in_(ids)))}
    sizable: list[AccountChoice] = []
    skipped: list[SkippedAccount] = []
    for choice in accounts:
        row = rows.get(choice.account_id)
        if row is None or (row.deleted_at is None and row.is_active):
            sizable.append(choice)
        else:
            skipped.append(SkippedAccount(row.id, row.account_name, row.is_paper,
                                          "deleted" if row.deleted_at is not None else "inactive"))
    return sizable, skipped


def _basket_margin(client: OpenAlgoClient | None, legs: Sequence[ContractLeg],
                   product: str) -> tuple[Decimal | None, str | None]:
    """The broker's `/margin` for one strategy lot's basket, or None and why not."""
    if client is None:
        return None, None
    if not all(leg.symbol and leg.exchange for leg in legs):
        return None, None
    positions = [MarginPosition(symbol=str(leg.symbol), exchange=str(leg.exchange), action=leg.leg.action.value,
                                quantity=leg.leg.lots * leg.leg.lot_size, product=product) for leg in legs]
    try:
        answer = client.basket_margin(positions)
    except MarginNotSupported:
        return None, "the broker has no margin API: the margin table is used"
    except (BrokerError, ValueError) as exc:
        logger.info("Basket margin unavailable (%s); the margin table is used", exc)
        return None, f"the broker's basket margin is unavailable ({exc}): the margin table is used"
    if answer.total <= 0:
        return None, "the broker's basket margin was 0: the margin table is used"
    return answer.total, None


def strategy_margin(client: OpenAlgoClient | None, legs: Sequence[ContractLeg], *, today: date,
                    product: str = "MIS") -> tuple[StrategyLotMargin, dict[str, ExpiryDay], str | None]:
    """Margin of one strategy lot (basket first, table fallback), each underlying's expiry day
    (known only when the table was used), and why the broker's figure was not used.

    Raises:
        MarginUnavailable: the table is needed and has no rows for an underlying, or gives 0.
    """
    days = {leg.leg.underlying: ExpiryDay(False, False) for leg in legs}
    table: dict[str, Any] = {}
    for name in days:  # database reads first, then the broker calls without a transaction open
        try:
            table[name] = margin_rows(name)
        except UnknownRow as exc:
            table[name] = exc
    db.session.commit()
    basket, why = _basket_margin(client, legs, product)
    rates: dict[str, MarginRates] = {}
    if basket is None:
        for name in days:
            days[name] = expiry_today(client, name, today)
            try:
                if isinstance(table[name], UnknownRow):
                    raise table[name]
                rates[name] = MarginRates.from_table(table[name], expiry_day=days[name].expiry_day)
            except (UnknownRow, DomainError) as exc:
                raise MarginUnavailable(str(exc)) from exc
    try:
        return strategy_lot_margin([leg.leg for leg in legs], rates, basket), days, why
    except DomainError as exc:
        raise MarginUnavailable(str(exc)) from exc


def _wait_seconds() -> float:
    # A refresh reads funds, positions and holdings one after another; allow all three a full
    # read timeout before the account becomes an error row.
    cfg = current_app.config
    return float(cfg["BROKER_CONNECT_TIMEOUT"] + 3 * cfg["BROKER_READ_TIMEOUT"])


def _fetch_funds(accounts: list[TradingAccount], wait_seconds: float) -> dict[int, FetchResult | str]:
    """Every account's fresh funds in parallel: a FetchResult, or an error text."""
    futures = refresher().refresh([a.id for a in accounts])
    db.session.commit()  # no transaction (or pooled connection) held while the brokers answer
    wait(list(futures.values()), timeout=wait_seconds)
    out: dict[int, FetchResult | str] = {}
    for account_id, future in futures.items():
        if not future.done():
            out[account_id] = f"no answer within {wait_seconds:g} s"
            continue
        result = future.result()
        out[account_id] = result if result.error is None and result.funds else (result.error or "no funds data")
    return out


def size_accounts(user: User, legs: Sequence[ContractLeg], profile: RiskProfile | str,
                  accounts: Sequence[AccountChoice], *, usable_percent: Decimal | None = None,
                  allowed_splits: int = 1, client: OpenAlgoClient | None = None, today: date | None = None,
                  product: str = "MIS", wait_seconds: float | None = None) -> SizingResult:
    """Size each chosen account for a strategy.

    Args:
        user: the owner: only their own active accounts can be sized.
        legs: the strategy's legs (lots per strategy lot; contracts when resolved).
        profile: fixed lots or a margin-based profile.
        accounts: the accounts, each with its multiplier and capital cap.
        usable_percent: replaces the profile's share (a trade-quality grade on the calculator).
        allowed_splits: freeze-split child orders one leg may use.
        client: the market-data account's client (expiry list, basket margin), or None.
        today: the trading session's IST date, legs.expiry_reference_day (default: of now); the
            expiry-day rates apply when it is an expiry day.
        product: MIS or NRML, for the broker's basket margin.
        wait_seconds: how long to wait for the accounts' funds.
    Returns:
        The margin used per strategy lot and one row per account, in the order given.
    Raises:
        AccountNotFound: an account is not the user's, or not active.
        MarginUnavailable: the margin of a strategy lot cannot be known.
        SizingError: inconsistent inputs (no legs, a negative capital cap, ...).
    """
    chosen = RiskProfile(profile)
    owned = owned_active_accounts(user, [a.account_id for a in accounts])
    names = {a.id: (a.account_name, a.is_paper) for a in owned}
    day = today or expiry_reference_day(utcnow())
    margin, days, why = strategy_margin(client, legs, today=day, product=product)  # ends the read transaction
    notes = tuple(n for n in (why, *(d.note for d in days.values())) if n)
    funds = _fetch_funds(owned, _wait_seconds() if wait_seconds is None else wait_seconds)
    rows: list[AccountRow] = []
    for choice in accounts:
        name, is_paper = names[choice.account_id]
        got = funds.get(choice.account_id, "no answer")
        if isinstance(got, str):
            rows.append(AccountRow(choice.account_id, name, is_paper, None, None, got))
            continue
        cached = funds_from_cache(got.funds)
        assert cached is not None
        available = available_margin(cached)
        sizing = size_account([leg.leg for leg in legs], chosen, margin=margin, available_margin=available,
                              allowed_splits=allowed_splits, multiplier=choice.multiplier,
                              capital_cap=choice.capital_cap,
                              usable_percent=None if chosen is RiskProfile.FIXED_LOTS else usable_percent)
        rows.append(AccountRow(choice.account_id, name, is_paper, available, sizing))
    return SizingResult(margin, days, tuple(rows), notes)


def result_as_json(result: SizingResult) -> dict[str, Any]:
    """A sizing result as JSON (amounts as exact strings)."""
    money = _money

    margin = result.margin
    return {
        "formula": result.formula,
        "margin_per_strategy_lot": money(margin.amount),
        "margin_source": margin.source.value,
        "margin_lines": [{"underlying": line.underlying, "trade_type": line.trade_type.value, "lots": line.lots,
                          "rate": money(line.rate), "amount": money(line.amount)} for line in margin.lines],
        "expiry_day": {name: {"expiry_day": d.expiry_day, "known": d.known} for name, d in result.expiry_days.items()},
        "notes": list(result.notes),
        "accounts": [_row_json(row) for row in result.rows],
    }


def skipped_as_json(skipped: SkippedAccount) -> dict[str, Any]:
    """A skipped account as a sizing row (result_as_json's shape): no figures, zero lots, the reason."""
    return {"account_id": skipped.account_id, "name": skipped.name, "is_paper": skipped.is_paper,
            "available_margin": None, "error": None, "usable_margin": None, "lots": None, "strategy_lots": 0,
            "binding": None, "skipped": True, "skip_reason": skipped.reason, "margin_used": None, "legs": [],
            "warnings": []}


def _money(value: Decimal | None) -> str | None:
    """An amount in rupees and paise, exactly ("650000.00")."""
    return None if value is None else str(Decimal(value).quantize(Decimal("0.01")))


def _row_json(row: AccountRow) -> dict[str, Any]:
    base: dict[str, Any] = {"account_id": row.account_id, "name": row.name, "is_paper": row.is_paper,
                            "available_margin": _money(row.available_margin), "error": row.error}
    s = row.sizing
    if s is None:
        return {**base, "usable_margin": None, "lots": None, "strategy_lots": None, "binding": None,
                "skip_reason": None, "margin_used": None, "legs": [], "warnings": []}
    return {**base, "usable_margin": _money(s.usable_margin),
            "strategy_lots": s.strategy_lots, "lots": [leg.lots for leg in s.legs], "binding": s.binding.value,
            "skip_reason": s.skip_reason, "margin_used": _money(s.margin_used), "warnings": list(s.warnings),
            "legs": [{"lots": leg.lots, "quantity": leg.quantity, "child_orders": leg.child_orders,
                      "child_quantities": list(leg.child_quantities)} for leg in s.legs]}
