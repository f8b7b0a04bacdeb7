"""The daily limits' view of parts that no longer decide: exact values, in memory (no broker)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

from app.domain.instruments import Action
from app.domain.price_guard import check_price
from app.services.risk.book import AccountBook, LegInfo, RunBook, day_realized
from app.services.risk.daily_limits import _open_pnl

DAY = date(2026, 1, 5)
NOW = datetime(2026, 1, 5, 5, 0, tzinfo=UTC)
LEGS = (LegInfo(1, "SBIN", "NSE", Action.BUY, 10),)


def _book(run_id: int, *parts: AccountBook, day: date = DAY) -> RunBook:
    return RunBook(run_id=run_id, user_id=1, strategy_id=None, strategy_name="t", status="open", trading_day=day,
                   legs=LEGS, accounts=parts, settings=None, supertrend=None, state={})


def _part(account_id: int, status: str, entries, exits, *, unpriced: bool = False) -> AccountBook:
    return AccountBook(account_id * 10, account_id, f"acct {account_id}", status, 10, entries, exits, unpriced)


def _priced(price: str):
    return lambda symbol, exchange, now: check_price(D(price), now, now)


def test_a_part_being_closed_counts_its_open_units_at_the_price_and_its_closed_units_as_realized(app):
    closing = _part(7, "closing", {1: ((10, D("800")),)}, {1: ((4, D("760")),)})
    books = {1: _book(1, closing, _part(8, "open", {1: ((10, D("800")),)}, {}))}
    found = day_realized({7, 8}, DAY, books)
    assert found.totals == {7: D("-160")} and found.unpriced == frozenset()  # 4 × (760 − 800); 8 decides
    assert _open_pnl(list(books.values()), 7, NOW, _priced("750"), deciding=False) == D("-300")  # 6 × −50
    assert _open_pnl(list(books.values()), 8, NOW, _priced("750"), deciding=True) == D("-500")


def test_a_fill_of_unknown_price_makes_the_accounts_day_unknown(app):
    unknown = _part(7, "closed", {1: ((10, D("800")),)}, {1: ((10, D("0")),)}, unpriced=True)
    found = day_realized({7}, DAY, {1: _book(1, unknown, _part(8, "open", {1: ((10, D("800")),)}, {}))})
    assert found.unpriced == frozenset({7})
    closing = _part(7, "closing", {1: ((10, D("800")),)}, {1: ((4, D("0")),)}, unpriced=True)
    assert _open_pnl([_book(2, closing)], 7, NOW, _priced("750"), deciding=False) is None


def test_closed_parts_of_a_run_carried_from_another_day_are_not_todays(app):
    closed = _part(7, "closed", {1: ((10, D("800")),)}, {1: ((10, D("700")),)})
    other = _part(8, "open", {1: ((10, D("800")),)}, {})
    assert day_realized({7}, DAY, {1: _book(1, closed, other, day=date(2026, 1, 2))}).totals == {}
    assert day_realized({7}, DAY, {1: _book(1, closed, other)}).totals == {7: D("-1000")}


def test_an_unusable_price_leaves_the_open_units_unknown(app):
    closing = _part(7, "closing", {1: ((10, D("800")),)}, {1: ((4, D("760")),)})
    stale = lambda symbol, exchange, now: check_price(None, None, now)  # noqa: E731
    assert _open_pnl([_book(1, closing)], 7, NOW, stale, deciding=False) is None
