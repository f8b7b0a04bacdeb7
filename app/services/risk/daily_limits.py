"""The account daily loss and profit limits, as the risk monitor keeps them (DOMAIN.md "Risk").

An account's P&L of the IST trading day is the P&L of its deciding parts of the watched runs and
the open units of its parts being closed (all priced now), plus what the rest of its day realized
(`book.day_realized`: flat runs, and the closed units of parts that no longer decide). A breach
blocks the account's entries for the day and closes its part of every open run
(`actions.close_account_runs`); an account with nothing open whose day realized a breach is blocked
on the next refresh. A fill of unknown price anywhere in the account's day holds its limits.
A run carried from an earlier day (NRML) counts with its P&L since its entry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal

from app.domain.expiries import ist_today
from app.domain.price_guard import PriceCheck
from app.domain.risk_pnl import leg_pnl
from app.domain.risk_rules import evaluate_account_limits
from app.extensions import db
from app.services.risk import actions
from app.services.risk.book import AccountBook, RunBook, account_limits, day_accounts, day_realized
from app.services.risk.events import blocked_accounts

logger = logging.getLogger(__name__)

PriceOf = Callable[[str, str, datetime], PriceCheck]


class DailyLimits:
    def __init__(self) -> None:
        self.limits: dict[int, tuple[Decimal | None, Decimal | None]] = {}  # account → (loss, profit)
        self.realized: dict[int, Decimal] = {}
        self.unpriced: frozenset[int] = frozenset()  # accounts whose realized day is not known
        self.blocked: set[int] = set()

    def reload(self, books: dict[int, RunBook], day: date) -> None:
        """The limits and realized P&L of every account in the watched runs or in any run of `day`
        (when the books changed: a run that went flat moves its realized P&L here)."""
        accounts = {a.account_id for b in books.values() for a in b.accounts} | day_accounts(day)
        self.limits = account_limits(accounts)
        found = day_realized(set(self.limits), day, books)
        self.realized, self.unpriced = found.totals, found.unpriced

    def read_blocks(self, books: dict[int, RunBook], day: date, retry_after: timedelta) -> None:
        """Which accounts are blocked today (every refresh); block those whose flat day breached,
        and close again what a blocked account still holds with no exit closing it."""
        self.blocked = set(blocked_accounts(self.limits, day)) if self.limits else set()
        for account_id in sorted(self.blocked):
            try:
                actions.close_blocked_account_again(account_id, day, list(books.values()), retry_after)
            except Exception:  # one account's failure must not stop the refresh (asked again next time)
                db.session.rollback()
                logger.exception("account %s: blocked account's close not asked again", account_id)
        open_parts = {a.account_id for b in books.values() for a in b.accounts if a.deciding or _holds(a, b)}
        for account_id in sorted(set(self.limits) - open_parts - self.blocked - self.unpriced):
            # Nothing open anywhere: no tick will ever touch it, its realized day alone decides.
            loss, profit = self.limits[account_id]
            verdict = evaluate_account_limits(account_id, self.realized.get(account_id, Decimal(0)), loss, profit,
                                              day)
            if not verdict.closes_all_runs:
                continue
            try:
                actions.close_account_runs(account_id, day, verdict.decision, [])
                self.blocked.add(account_id)
            except Exception:  # one account's write must not stop the refresh (asked again next time)
                db.session.rollback()
                logger.exception("account %s: daily limit block not written", account_id)

    def check(self, books: dict[int, RunBook], run_ids: set[int], account_pnl: dict[int, Decimal],
              unreliable: set[int], now: datetime, price_of: PriceOf) -> None:
        """After an evaluation of `run_ids` (`account_pnl`: their deciding parts' P&L per account;
        `unreliable`: accounts of runs that could not be priced): the limits of their accounts."""
        if not self.limits:
            return
        day = ist_today(now)
        touched = {a.account_id for r in run_ids if (b := books.get(r)) for a in b.accounts}
        for account_id in sorted(touched & set(self.limits) - self.blocked - unreliable - self.unpriced):
            mine = [b for b in books.values() if any(a.account_id == account_id for a in b.accounts)]
            deciding = [b for b in mine if _part(b, account_id, deciding=True) is not None]
            others = _open_pnl([b for b in deciding if b.run_id not in run_ids], account_id, now, price_of,
                               deciding=True)
            closing = _open_pnl(mine, account_id, now, price_of, deciding=False)
            if others is None or closing is None:
                continue  # a run of the account has no usable price now: the next tick decides
            total = account_pnl.get(account_id, Decimal(0)) + others + closing + self.realized.get(account_id,
                                                                                                  Decimal(0))
            loss, profit = self.limits[account_id]
            verdict = evaluate_account_limits(account_id, total, loss, profit, day)
            if verdict.closes_all_runs:
                self.blocked.add(account_id)
                actions.close_account_runs(account_id, day, verdict.decision, deciding)


def _part(book: RunBook, account_id: int, *, deciding: bool) -> AccountBook | None:
    return next((a for a in book.accounts if a.account_id == account_id and a.deciding == deciding), None)


def _holds(part: AccountBook, book: RunBook) -> bool:
    return any(part.held(leg.number) for leg in book.legs)


def _open_pnl(books: list[RunBook], account_id: int, now: datetime, price_of: PriceOf, *,
              deciding: bool) -> Decimal | None:
    """At usable prices: Σ P&L of the account's deciding parts of these runs (`deciding`), or Σ of
    the open units' P&L of its parts being closed (their closed units are in the realized day).
    None when a price it needs is not usable."""
    total = Decimal(0)
    for book in books:
        part = _part(book, account_id, deciding=deciding)
        if part is None or (not deciding and not _holds(part, book)):
            continue
        if part.unpriced:
            return None
        checks = {(s, e): price_of(s, e, now) for s, e in book.instruments()}
        if any(not c.usable for c in checks.values()):
            return None
        prices = {k: c.price for k, c in checks.items() if c.price is not None}
        for leg in part.positions(book.legs, prices):
            pnl = leg_pnl(leg)
            total += pnl.total if deciding else pnl.unrealized
    return total
