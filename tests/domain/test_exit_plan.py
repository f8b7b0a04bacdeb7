"""Close orders for held quantities: phases, splits at the freeze quantity, the broker cap."""

from __future__ import annotations

import pytest

from app.domain.exit_plan import CloseOrder, Holding, cap_at_broker, close_children, plan_close_orders


def test_plan_iron_condor_shorts_first_then_longs_with_exact_children():
    holdings = [
        Holding(1, "NIFTYCE27000", "NFO", "NRML", 3900, 65, 1755),  # long wing
        Holding(2, "NIFTYCE26500", "NFO", "NRML", -3900, 65, 1755),  # short
        Holding(3, "NIFTYPE25500", "NFO", "NRML", 0, 65, 1755),  # flat: nothing
        Holding(4, "NIFTYPE25000", "NFO", "NRML", 130, 65, 1755),
    ]
    assert plan_close_orders(holdings) == (
        CloseOrder(2, 1, "NIFTYCE26500", "NFO", "NRML", "BUY", 1755, 0),
        CloseOrder(2, 2, "NIFTYCE26500", "NFO", "NRML", "BUY", 1755, 0),
        CloseOrder(2, 3, "NIFTYCE26500", "NFO", "NRML", "BUY", 390, 0),
        CloseOrder(1, 1, "NIFTYCE27000", "NFO", "NRML", "SELL", 1755, 1),
        CloseOrder(1, 2, "NIFTYCE27000", "NFO", "NRML", "SELL", 1755, 1),
        CloseOrder(1, 3, "NIFTYCE27000", "NFO", "NRML", "SELL", 390, 1),
        CloseOrder(4, 1, "NIFTYPE25000", "NFO", "NRML", "SELL", 130, 1),
    )


def test_plan_nothing_held_is_empty():
    assert plan_close_orders([Holding(1, "X", "NFO", "MIS", 0, 65, 1755)]) == ()


@pytest.mark.parametrize(("quantity", "lot", "freeze", "expected"), [
    (0, 65, 1755, ()),
    (65, 65, 1755, (65,)),
    (1755, 65, 1755, (1755,)),
    (1820, 65, 1755, (1755, 65)),
    (1200, 30, 600, (600, 600)),
    (10, 1, 0, (10,)),  # an equity without a freeze limit: one order
    (2500, 1, 1000, (1000, 1000, 500)),  # not whole lots of a freeze that is: chunks
    (100, 65, 1755, (100,)),  # odd fills below the freeze: one order
])
def test_close_children_exact_splits(quantity, lot, freeze, expected):
    assert close_children(quantity, lot, freeze) == expected


def test_close_children_negative_is_refused():
    with pytest.raises(ValueError):
        close_children(-65, 65, 1755)


@pytest.mark.parametrize(("held", "broker", "expected"), [
    (-130, -130, -130),
    (-130, -65, -65),  # the broker holds less: close only that
    (-65, -130, -65),  # another run holds the rest: close ours
    (130, 0, 0),
    (130, -65, 0),  # opposite sign: closing would open a new position
    (0, 65, 0),
    (65, 65, 65),
])
def test_cap_at_broker_never_more_than_the_broker_holds_same_sign(held, broker, expected):
    assert cap_at_broker(held, broker) == expected
