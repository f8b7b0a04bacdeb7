"""The account daily loss and profit limits, as the risk monitor keeps them (DOMAIN.md "Risk").

An account's P&L of the IST trading day is the P&L of its deciding parts of the watched runs (all
priced now) plus what the rest of its day realized (`book.day_realized`: flat runs, and closed or
closing parts of runs other accounts still hold). A breach blocks the account's entries for the day
and closes its part of every open run (`actions.close_account_runs`); an account with nothing open
whose day realized a breach is blocked on the next refresh.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

from app.domain.expiries import ist_today
from app.domain.price_guard import PriceCheck
from app.domain.risk_pnl import leg_pnl
from app.domain.risk_rules import evaluate_account_limits
from app.services.risk import actions
from app.services.risk.book import RunBook, account_limits, day_accounts, day_realized
from app.services.risk.events import blocked_accounts

PriceOf = Callable[[str, str, datetime], PriceCheck]


class DailyLimits:
    def __init__(self) -> None:
        self.limits: dict[int, tuple[Decimal | None, Decimal | None]] = {}  # account → (loss, profit)
        self.realized: dict[int, Decimal] = {}
        self.blocked: set[int] = set()

    def reload(self, books: dict[int, RunBook], day: date) -> None:
        """The limits and realized P&L of every account in the watched runs or in any run of `day`
        (when the books changed: a run that went flat moves its realized P&L here)."""
        accounts = {a.account_id for b in books.values() for a in b.accounts} | day_accounts(day)
        self.limits = account_limits(accounts)
        self.realized = day_realized(set(self.limits), day, books) if self.limits else {}

    def read_blocks(self, books: dict[int, RunBook], day: date) -> None:
        """Which accounts are blocked today (every refresh); block those whose flat day breached."""
        self.blocked = set(blocked_accounts(self.limits, day)) if self.limits else set()
        live = {a.account_id for b in books.values() for a in b.accounts if a.deciding}
        for account_id in sorted(set(self.limits) - live - self.blocked):
            # No deciding part anywhere: no tick will ever touch it, its realized day alone decides.
            loss, profit = self.limits[account_id]
            verdict = evaluate_account_limits(account_id, self.realized.get(account_id, Decimal(0)), loss, profit,
                                              day)
            if verdict.closes_all_runs:
                self.blocked.add(account_id)
                actions.close_account_runs(account_id, day, verdict.decision, [])

    def check(self, books: dict[int, RunBook], run_ids: set[int], account_pnl: dict[int, Decimal],
              unreliable: set[int], now: datetime, price_of: PriceOf) -> None:
        """After an evaluation of `run_ids` (`account_pnl`: their deciding parts' P&L per account;
        `unreliable`: accounts of runs that could not be priced): the limits of their accounts."""
        if not self.limits:
            return
        day = ist_today(now)
        touched = {a.account_id for r in run_ids if (b := books.get(r)) for a in b.accounts}
        for account_id in sorted(touched & set(self.limits) - self.blocked - unreliable):
            runs = [b for b in books.values() if any(a.account_id == account_id and a.deciding for a in b.accounts)]
            others = _priced_parts([b for b in runs if b.run_id not in run_ids], account_id, now, price_of)
            if others is None:
                continue  # another run of the account has no usable price now: the next tick decides
            total = account_pnl.get(account_id, Decimal(0)) + others + self.realized.get(account_id, Decimal(0))
            loss, profit = self.limits[account_id]
            verdict = evaluate_account_limits(account_id, total, loss, profit, day)
            if verdict.closes_all_runs:
                self.blocked.add(account_id)
                actions.close_account_runs(account_id, day, verdict.decision, runs)


def _priced_parts(books: list[RunBook], account_id: int, now: datetime, price_of: PriceOf) -> Decimal | None:
    """Σ P&L of the account's deciding parts of these runs at usable prices; None when one is unpriced."""
    total = Decimal(0)
    for book in books:
        checks = {(s, e): price_of(s, e, now) for s, e in book.instruments()}
        if any(not c.usable for c in checks.values()):
            return None
        prices = {k: c.price for k, c in checks.items() if c.price is not None}
        part = next(a for a in book.accounts if a.account_id == account_id and a.deciding)
        total += sum((leg_pnl(leg).total for leg in part.positions(book.legs, prices)), Decimal(0))
    return total
