"""What the risk monitor watches, read from the database: the open runs with their fills.

`load_books` reads every run that holds something (open, entering with fills, or closing), with
per account and leg the entry fills and the closing fills of the current run only (LESSONS.md
"Data": all-time P&L kept triggers firing), the run's rule snapshot and the monitor's saved state.
`day_realized` adds, for the account daily limits, what the day's flat runs and the closed parts
of open runs have realized. Everything returned is plain frozen data: evaluation never touches the ORM.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, func, select

from app.domain.instruments import Action
from app.domain.order_lifecycle import TERMINAL
from app.domain.risk_pnl import Fill, Fills, LegPosition, average_fill_price, filled_quantity, leg_pnl
from app.domain.risk_rules import RunRiskSettings
from app.extensions import db
from app.models.accounts import TradingAccount
from app.models.execution import OrderIntent, Purpose, RunAccount, RunAccountStatus, RunLeg, RunStatus, StrategyRun
from app.services.risk.snapshot import SupertrendSettings, run_settings, supertrend_settings

logger = logging.getLogger(__name__)

WATCHED_RUNS = (RunStatus.ENTERING, RunStatus.OPEN, RunStatus.CLOSING)
# Accounts whose part the rules may still close (a closing or closed part is the exit manager's).
DECIDING_ACCOUNTS = (RunAccountStatus.ENTERING, RunAccountStatus.OPEN, RunAccountStatus.PARTIAL)


@dataclass(frozen=True)
class LegInfo:
    number: int
    symbol: str
    exchange: str
    action: Action
    base_quantity: int  # lots per strategy lot × lot size
    lots: int = 1  # per strategy lot (the net premium's weight)


@dataclass(frozen=True)
class AccountBook:
    run_account_id: int
    account_id: int
    account_name: str
    status: str
    quantity_per_leg: int  # the account's planned quantity of the run's first leg
    # By leg number; loaded as Fills, so their checks and sums are made once per load, not per tick.
    entry_fills: dict[int, tuple[Fill, ...]] = field(default_factory=dict)
    exit_fills: dict[int, tuple[Fill, ...]] = field(default_factory=dict)
    unpriced: bool = False  # a fill's price is unknown: the rules hold for this run
    _held: dict[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Checked and summed once per load (Fills), not on every tick's evaluation.
        object.__setattr__(self, "entry_fills", {leg: Fills(f) for leg, f in self.entry_fills.items()})
        object.__setattr__(self, "exit_fills", {leg: Fills(f) for leg, f in self.exit_fills.items()})
        legs = set(self.entry_fills) | set(self.exit_fills)
        object.__setattr__(self, "_held", {leg: filled_quantity(self.entry_fills.get(leg, ()))
                                           - filled_quantity(self.exit_fills.get(leg, ())) for leg in legs})

    @property
    def deciding(self) -> bool:
        return self.status in DECIDING_ACCOUNTS

    def held(self, leg: int) -> int:
        return self._held.get(leg, 0)

    def positions(self, legs: tuple[LegInfo, ...], prices: dict[tuple[str, str], Decimal]) -> list[LegPosition]:
        """Its legs with the given usable prices (an open leg without one raises ValueError)."""
        return [LegPosition(leg.number, leg.action, self.entry_fills.get(leg.number, ()),
                            self.exit_fills.get(leg.number, ()),
                            prices.get((leg.symbol, leg.exchange)) if self.held(leg.number) else None)
                for leg in legs if self.entry_fills.get(leg.number)]


@dataclass(frozen=True)
class RunBook:
    run_id: int
    user_id: int
    strategy_id: int | None
    strategy_name: str
    status: str
    trading_day: date
    legs: tuple[LegInfo, ...]
    accounts: tuple[AccountBook, ...]
    settings: RunRiskSettings | None
    supertrend: SupertrendSettings | None
    state: dict[str, Any]
    entered_at: datetime | None = None  # the click (the entry's candle starts the Supertrend watch)
    _instruments: frozenset[tuple[str, str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_instruments", frozenset(
            (leg.symbol, leg.exchange) for leg in self.legs if any(a.held(leg.number) for a in self.accounts)))

    def instruments(self) -> frozenset[tuple[str, str]]:
        """The (symbol, exchange) of every leg some account still holds (fixed per load)."""
        return self._instruments

    @property
    def holds(self) -> bool:
        return bool(self.instruments())


def _fills(rows: list[OrderIntent]
           ) -> tuple[dict[int, dict[int, list[Fill]]], dict[int, dict[int, list[Fill]]], set[int]]:
    """Entry and closing fills per run account and leg, and the run accounts with a fill of unknown price."""
    unpriced: set[int] = set()
    entries: dict[int, dict[int, list[Fill]]] = defaultdict(lambda: defaultdict(list))
    closes: dict[int, dict[int, list[Fill]]] = defaultdict(lambda: defaultdict(list))
    for intent in rows:
        if not intent.filled_quantity or intent.run_account_id is None or intent.leg_number is None:
            continue
        if intent.filled_quantity < 0:  # never written by the lifecycle: one bad row must not stop the monitor
            logger.error("intent %s has a negative filled quantity %s", intent.id, intent.filled_quantity)
            unpriced.add(intent.run_account_id)
            continue
        price = intent.average_price if intent.average_price is not None else intent.price
        if price is None or not Decimal(price).is_finite() or price <= 0:
            # Held all the same (the quantity is real); the rules hold until the price is known.
            logger.warning("intent %s filled %s without a usable price", intent.id, intent.filled_quantity)
            unpriced.add(intent.run_account_id)
            price = Decimal(0)
        side = entries if intent.purpose == Purpose.ENTRY else closes
        side[intent.run_account_id][intent.leg_number].append((intent.filled_quantity, Decimal(price)))
    return entries, closes, unpriced


def run_signatures() -> dict[int, tuple[Any, ...]]:
    """{run id: what its book is made of} for every watched run: its status, its intents' count,
    filled sum, finished and unpriced counts and last change, and how many of its accounts are
    deciding. The monitor reloads exactly the runs whose signature moved. Sums and counts, not only
    the latest time: a fill whose transaction commits late carries an earlier updated_at than one
    already seen, but it always changes the filled sum; a price arriving for an unpriced fill
    changes the unpriced count."""
    finished = [s.value for s in TERMINAL]
    intents = {row[0]: tuple(row[1:]) for row in db.session.execute(
        select(OrderIntent.run_id, func.count(OrderIntent.id), func.coalesce(func.sum(OrderIntent.filled_quantity), 0),
               func.sum(case((OrderIntent.state.in_(finished), 1), else_=0)),
               func.sum(case((and_(OrderIntent.filled_quantity > 0, OrderIntent.average_price.is_(None)), 1),
                             else_=0)),
               func.max(OrderIntent.updated_at))
        .join(StrategyRun, StrategyRun.id == OrderIntent.run_id)
        .where(StrategyRun.status.in_(WATCHED_RUNS)).group_by(OrderIntent.run_id))}
    deciding = dict(db.session.execute(
        select(RunAccount.run_id, func.count(RunAccount.id)).join(StrategyRun)
        .where(StrategyRun.status.in_(WATCHED_RUNS), RunAccount.status.in_(DECIDING_ACCOUNTS))
        .group_by(RunAccount.run_id)).all())
    runs = db.session.execute(select(StrategyRun.id, StrategyRun.status).where(StrategyRun.status.in_(WATCHED_RUNS)))
    return {run_id: (status, intents.get(run_id), deciding.get(run_id, 0)) for run_id, status in runs}


def _books(runs: list[StrategyRun]) -> list[RunBook]:
    if not runs:
        return []
    ids = [r.id for r in runs]
    legs_by_run: dict[int, list[RunLeg]] = defaultdict(list)
    for leg in db.session.scalars(select(RunLeg).where(RunLeg.run_id.in_(ids)).order_by(RunLeg.number)):
        legs_by_run[leg.run_id].append(leg)
    accounts_by_run: dict[int, list[RunAccount]] = defaultdict(list)
    for ra in db.session.scalars(select(RunAccount).where(RunAccount.run_id.in_(ids)).order_by(RunAccount.id)):
        accounts_by_run[ra.run_id].append(ra)
    rows = list(db.session.scalars(select(OrderIntent).where(OrderIntent.run_id.in_(ids))))
    entries, closes, unpriced = _fills(rows)
    first_leg_planned: dict[int, int] = defaultdict(int)
    for intent in rows:
        if intent.purpose == Purpose.ENTRY and intent.attempt == 1 and intent.leg_number == 1 \
                and intent.run_account_id is not None:
            first_leg_planned[intent.run_account_id] += intent.quantity
    books = []
    for run in runs:
        legs = tuple(LegInfo(leg.number, leg.symbol, leg.exchange, Action(leg.action), leg.lots * leg.lot_size,
                             leg.lots) for leg in legs_by_run[run.id])
        if not legs:
            continue
        accounts = tuple(
            AccountBook(ra.id, ra.account_id, ra.account_name, ra.status,
                        first_leg_planned.get(ra.id) or legs[0].base_quantity,
                        {n: Fills(f) for n, f in entries[ra.id].items()},
                        {n: Fills(f) for n, f in closes[ra.id].items()}, ra.id in unpriced)
            for ra in accounts_by_run[run.id] if ra.status != RunAccountStatus.SKIPPED)
        try:
            settings = run_settings(run.risk_settings, legs[0].base_quantity)
            supertrend = supertrend_settings(run.risk_settings)
        except (ValueError, KeyError, ArithmeticError) as exc:  # a snapshot the rules refuse: say so, loudly
            logger.error("run %s: risk settings unreadable (%s): only account limits apply", run.id, exc)
            settings, supertrend = None, None
        books.append(RunBook(run.id, run.user_id, run.strategy_id, run.strategy_name, run.status, run.trading_day,
                             legs, accounts, settings, supertrend, dict(run.risk_state or {}),
                             run.entered_at or run.clicked_at))
    return books


def load_books(run_ids: set[int] | None = None) -> list[RunBook]:
    """Every watched run (of `run_ids`, when given) that holds something on some account."""
    query = select(StrategyRun).where(StrategyRun.status.in_(WATCHED_RUNS))
    if run_ids is not None:
        if not run_ids:
            return []
        query = query.where(StrategyRun.id.in_(run_ids))
    runs = list(db.session.scalars(query.order_by(StrategyRun.id)))
    return [book for book in _books(runs) if book.holds]


def day_accounts(day: date) -> set[int]:
    """The accounts in any run of `day` (IST trading day), flat ones too: the daily limits' scope."""
    return set(db.session.scalars(select(RunAccount.account_id).distinct().join(StrategyRun).where(
        StrategyRun.trading_day == day, RunAccount.status != RunAccountStatus.SKIPPED)))


@dataclass(frozen=True)
class DayRealized:
    totals: dict[int, Decimal]  # account → realized P&L of the day outside its deciding parts
    unpriced: frozenset[int]  # accounts with a fill of unknown price there: their limits hold


def day_realized(account_ids: set[int], day: date, open_books: dict[int, RunBook]) -> DayRealized:
    """Realized P&L per account on `day` of everything the monitor does not price live: the day's
    runs that are no longer watched (read here) and, in the watched `open_books` of that day, the
    parts that no longer decide (closing, closed, unwinding, failed), each counted for what it has
    closed. A part with a fill of unknown price makes its account's total unknown (`unpriced`):
    counting that fill at ₹0 would book its whole premium as a loss or a profit."""
    if not account_ids:
        return DayRealized({}, frozenset())
    runs = list(db.session.scalars(select(StrategyRun).where(
        StrategyRun.trading_day == day, StrategyRun.id.not_in(set(open_books) or {0}),
        StrategyRun.id.in_(select(RunAccount.run_id).where(RunAccount.account_id.in_(account_ids))))))
    total: dict[int, Decimal] = defaultdict(Decimal)
    unpriced: set[int] = set()
    watched_today = [b for b in open_books.values() if b.trading_day == day]
    for book in [*_books(runs), *watched_today]:
        watched = book.run_id in open_books
        for account in book.accounts:
            if account.account_id in account_ids and not (watched and account.deciding):
                if account.unpriced:
                    unpriced.add(account.account_id)
                total[account.account_id] += realized(account, book.legs)
    return DayRealized(dict(total), frozenset(unpriced))


def realized(part: AccountBook, legs: tuple[LegInfo, ...]) -> Decimal:
    """What an account's part of a run has realized: the closed units of each leg at their fill
    prices (a leg still open is valued at its entry average, which leaves its realized part alone)."""
    total = Decimal(0)
    for leg in legs:
        entries = part.entry_fills.get(leg.number, ())
        if not entries:
            continue
        exits = part.exit_fills.get(leg.number, ())
        mark = None
        if part.held(leg.number):
            mark = average_fill_price(entries)
            if mark is None or mark <= 0:
                continue  # unpriced fills: nothing known to have been realized
        total += leg_pnl(LegPosition(leg.number, leg.action, entries, exits, mark)).realized
    return total


def account_limits(account_ids: set[int]) -> dict[int, tuple[Decimal | None, Decimal | None]]:
    """{account id: (daily loss limit, daily profit limit)} of accounts with a limit set."""
    rows = db.session.execute(select(TradingAccount.id, TradingAccount.daily_loss_limit,
                                     TradingAccount.daily_profit_limit).where(TradingAccount.id.in_(account_ids)))
    return {i: (loss, profit) for i, loss, profit in rows if loss is not None or profit is not None}
