"""Live P&L: per leg from averaged split fills, realized and open parts, per account, combined,
and the entry premium value of a percentage trailing stop."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from app.domain.instruments import Action
from app.domain.risk_pnl import (
    LegPnl,
    LegPosition,
    account_pnl,
    average_fill_price,
    combined_pnl,
    entry_premium_value,
    leg_pnl,
)


def test_average_fill_price_weights_split_children_by_quantity():
    # (175500 + 177255 + 39897) / 3900
    assert average_fill_price([(1755, D("100.00")), (1755, D("101.00")), (390, D("102.30"))]) == D("100.68")
    assert average_fill_price([(65, D("100")), (65, D("102"))]) == D("101")


def test_average_fill_price_ignores_unfilled_children_and_is_none_when_nothing_filled():
    assert average_fill_price([(0, D("0")), (75, D("12.5"))]) == D("12.5")
    assert average_fill_price([]) is None
    assert average_fill_price([(0, D("10"))]) is None


@pytest.mark.parametrize("fill", [(-1, D("10")), (1, D("NaN")), (1, D("-0.05")), (1, 10.0), (True, D("1"))])
def test_average_fill_price_bad_fill_is_refused(fill):
    with pytest.raises(ValueError):
        average_fill_price([fill])


def test_leg_pnl_buy_open_uses_ltp_minus_average_entry():
    leg = LegPosition(1, Action.BUY, [(65, D("100.00")), (65, D("102.00"))], ltp=D("110.00"))
    assert leg_pnl(leg) == LegPnl(1, D("0"), D("1170.00"))  # (110 − 101) × 130


def test_leg_pnl_sell_open_uses_entry_minus_ltp():
    leg = LegPosition(2, Action.SELL, [(75, D("200"))], ltp=D("180.50"))
    assert leg_pnl(leg).total == D("1462.50")  # (200 − 180.50) × 75
    assert leg_pnl(LegPosition(2, Action.SELL, [(75, D("200"))], ltp=D("200.05"))).total == D("-3.75")


def test_leg_pnl_sell_partly_closed_splits_realized_at_exit_fills_and_open_at_ltp():
    leg = LegPosition(1, Action.SELL, [(100, D("50"))], [(20, D("59")), (20, D("61"))], ltp=D("55"))
    pnl = leg_pnl(leg)
    assert leg.open_quantity == 60
    assert pnl.realized == D("-400")  # (50 − 60) × 40
    assert pnl.unrealized == D("-300")  # (50 − 55) × 60
    assert pnl.total == D("-700")


def test_leg_pnl_fully_closed_needs_no_price():
    leg = LegPosition(3, Action.BUY, [(50, D("10")), (50, D("12"))], [(100, D("15"))])
    assert leg_pnl(leg) == LegPnl(3, D("400"), D("0"))  # (15 − 11) × 100


def test_leg_pnl_total_is_exact_when_the_average_does_not_terminate():
    # entry average 100.666…; the total must still be exactly 102 + 2 × 103 − 302 = 6
    leg = LegPosition(1, Action.BUY, [(1, D("100")), (2, D("101"))], [(1, D("102"))], ltp=D("103"))
    pnl = leg_pnl(leg)
    assert pnl.total == D("6")
    assert pnl.realized + pnl.unrealized == D("6")


def test_leg_pnl_closed_more_than_entered_values_the_opposite_position_at_ltp():
    # a duplicate exit: long 65 @100 sold twice at 90; now short 65, LTP 95
    leg = LegPosition(1, Action.BUY, [(65, D("100"))], [(65, D("90")), (65, D("90"))], ltp=D("95"))
    pnl = leg_pnl(leg)
    assert leg.open_quantity == -65
    assert (pnl.realized, pnl.unrealized, pnl.total) == (D("-650"), D("-325"), D("-975"))


def test_leg_with_nothing_filled_yet_is_zero():
    assert leg_pnl(LegPosition(1, Action.SELL, [])).total == D("0")


def test_open_leg_without_price_is_refused():
    with pytest.raises(ValueError, match="no price"):
        LegPosition(1, Action.BUY, [(65, D("100"))])


@pytest.mark.parametrize("ltp", [D("0"), D("-1"), D("NaN"), D("Infinity")])
def test_unusable_ltp_is_refused(ltp):
    with pytest.raises(ValueError):
        LegPosition(1, Action.BUY, [(65, D("100"))], ltp=ltp)


def test_account_and_combined_pnl_are_sums():
    account_a = [LegPosition(1, Action.SELL, [(65, D("100"))], ltp=D("90")),  # +650
                 LegPosition(2, Action.BUY, [(65, D("40"))], ltp=D("35.5"))]  # −292.50
    account_b = [LegPosition(1, Action.SELL, [(130, D("101"))], [(130, D("95"))])]  # +780 realized
    assert account_pnl(account_a) == D("357.50")
    assert account_pnl(account_b) == D("780")
    assert account_pnl([]) == D("0")
    assert combined_pnl([account_pnl(account_a), account_pnl(account_b)]) == D("1137.50")


def test_entry_premium_value_short_straddle_sums_premium_received():
    legs = [LegPosition(1, Action.SELL, [(65, D("120"))], ltp=D("1")),
            LegPosition(2, Action.SELL, [(65, D("100"))], ltp=D("1"))]
    assert entry_premium_value(legs) == D("14300")


def test_entry_premium_value_iron_condor_is_the_net_credit_and_counts_closed_legs():
    legs = [LegPosition(1, Action.SELL, [(65, D("100"))], ltp=D("1")),
            LegPosition(2, Action.BUY, [(65, D("40"))], [(65, D("20"))]),  # closed since: still counts
            LegPosition(3, Action.SELL, [(65, D("90"))], ltp=D("1")),
            LegPosition(4, Action.BUY, [(65, D("30"))], ltp=D("1"))]
    assert entry_premium_value(legs) == D("7800")  # (100 + 90 − 40 − 30) × 65


def test_entry_premium_value_of_a_debit_is_positive():
    assert entry_premium_value([LegPosition(1, Action.BUY, [(65, D("50"))], ltp=D("1"))]) == D("3250")
    assert entry_premium_value([]) == D("0")
