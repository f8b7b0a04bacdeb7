"""Margin figures derived from an account's /funds answer: one definition each (LESSONS.md)."""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

AVAILABLE_MARGIN_FORMULA = "available margin = available cash + collateral (both from OpenAlgo /funds)"


class FundsLike(Protocol):
    @property
    def available_cash(self) -> Decimal: ...
    @property
    def collateral(self) -> Decimal: ...
    @property
    def utilised_debits(self) -> Decimal: ...
    @property
    def m2m_realized(self) -> Decimal: ...
    @property
    def m2m_unrealized(self) -> Decimal: ...


def available_margin(funds: FundsLike) -> Decimal:
    """Margin the account can still use.

    OpenAlgo's `availablecash` is already net of what open positions use (`utiliseddebits`),
    and pledged holdings add `collateral`. This is the only place the formula lives.
    """
    return funds.available_cash + funds.collateral


def used_margin(funds: FundsLike) -> Decimal:
    return funds.utilised_debits


def todays_pnl(funds: FundsLike) -> Decimal:
    """Realized plus unrealized mark-to-market for the current trading day."""
    return funds.m2m_realized + funds.m2m_unrealized
