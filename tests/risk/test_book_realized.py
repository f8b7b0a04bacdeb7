"""What an account's part of a run has realized (the daily limits' closed parts), exact values."""

from __future__ import annotations

from decimal import Decimal as D

from app.domain.instruments import Action
from app.services.risk.book import AccountBook, LegInfo, realized

LEGS = (LegInfo(1, "SBIN", "NSE", Action.BUY, 10), LegInfo(2, "RELIANCE", "NSE", Action.SELL, 5))


def _part(entries, exits) -> AccountBook:
    return AccountBook(1, 7, "One", "closing", 10, entries, exits)


def test_a_flat_leg_realizes_its_whole_pnl_at_the_fill_prices():
    part = _part({1: ((6, D("800")), (4, D("801")))}, {1: ((10, D("760.5")),)})
    assert realized(part, LEGS) == D("-399.0")  # 7,605 − (4,800 + 3,204)


def test_a_partly_closed_leg_realizes_only_its_closed_units():
    part = _part({1: ((10, D("800")),), 2: ((5, D("2500")),)}, {1: ((4, D("760")),), 2: ((2, D("2450")),)})
    # SBIN long: 4 × (760 − 800) = −160; RELIANCE short: 2 × (2,500 − 2,450) = +100
    assert realized(part, LEGS) == D("-60")


def test_nothing_closed_nothing_realized_and_unpriced_fills_are_left_out():
    assert realized(_part({1: ((10, D("800")),)}, {}), LEGS) == 0
    assert realized(_part({1: ((10, D("0")),)}, {1: ((5, D("790")),)}), LEGS) == 0


def test_a_fill_row_the_lifecycle_never_writes_marks_its_account_unpriced_instead_of_stopping_the_refresh():
    from app.models.execution import OrderIntent
    from app.services.risk.book import _fills

    def row(intent_id, qty, price):
        return OrderIntent(id=intent_id, run_account_id=3, leg_number=1, purpose="entry", action="BUY",
                           filled_quantity=qty, average_price=price)

    entries, _closes, unpriced = _fills([row(1, 10, D("800")), row(2, -5, D("801")), row(3, 4, D("NaN"))])
    assert unpriced == {3}
    assert dict(entries[3]) == {1: [(10, D("800")), (4, D("0"))]}  # the bad quantity left out, the bad price held at 0
    AccountBook(3, 7, "One", "open", 10, {1: tuple(entries[3][1])}, {})  # a book is built from them
