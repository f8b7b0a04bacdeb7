"""Freeze splitting and per-account sizing: decision tables with exact values."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from app.domain.errors import SizingError
from app.domain.instruments import Action, InstrumentKind, OptionType
from app.domain.margin import MarginRates, MarginSource, StrategyLotMargin, strategy_lot_margin
from app.domain.margin_defaults import MARGIN_DEFAULTS
from app.domain.sizing import (
    Binding,
    LegSize,
    RiskProfile,
    SizingLeg,
    max_lots_per_order,
    size_account,
    split_lots,
    split_quantity,
)

BUY, SELL = Action.BUY, Action.SELL
CE, PE = OptionType.CE, OptionType.PE
FIXED, CONSERVATIVE, BALANCED, AGGRESSIVE = (RiskProfile.FIXED_LOTS, RiskProfile.CONSERVATIVE,
                                             RiskProfile.BALANCED, RiskProfile.AGGRESSIVE)
CONTRACTS = {"NIFTY": (65, 1755), "BANKNIFTY": (30, 600), "SENSEX": (20, 1000)}


def opt(action, option_type, lots=1, underlying="NIFTY"):
    lot_size, freeze = CONTRACTS[underlying]
    return SizingLeg(underlying, InstrumentKind.OPTION, action, option_type, lots, lot_size, freeze)


def table_margin_of(legs, expiry_day=False):
    rates = {name: MarginRates.from_table(rows, expiry_day=expiry_day) for name, rows in MARGIN_DEFAULTS.items()}
    return strategy_lot_margin(legs, rates)


STRADDLE = (opt(SELL, CE), opt(SELL, PE))                # ₹3,20,000 per strategy lot off expiry
STRADDLE_MARGIN = table_margin_of(STRADDLE)
SHORT_CALL = (opt(SELL, CE),)                            # ₹2,50,000
IRON_CONDOR = (opt(SELL, PE), opt(BUY, PE), opt(SELL, CE), opt(BUY, CE))


# --- freeze splitting ---------------------------------------------------------------------

@pytest.mark.parametrize(("lot_size", "freeze", "expected"), [
    (65, 1755, 27), (30, 600, 20), (20, 1000, 50), (75, 1800, 24), (35, 900, 25), (60, 1200, 20),
    (120, 2800, 23), (65, 65, 1),
])
def test_max_lots_per_order_floor_of_freeze_over_lot(lot_size, freeze, expected):
    assert max_lots_per_order(lot_size, freeze) == expected


@pytest.mark.parametrize(("lot_size", "freeze"), [(65, 50), (0, 1755), (65, 0), (-65, 1755)])
def test_max_lots_per_order_bad_contract_raises_sizing_error(lot_size, freeze):
    with pytest.raises(SizingError):
        max_lots_per_order(lot_size, freeze)


@pytest.mark.parametrize(("quantity", "lot_size", "freeze", "expected"), [
    (3900, 65, 1755, (1755, 1755, 390)),       # 60 lots -> 27 + 27 + 6
    (1755, 65, 1755, (1755,)),
    (1820, 65, 1755, (1755, 65)),
    (65, 65, 1755, (65,)),
    (0, 65, 1755, ()),
    (1200, 30, 600, (600, 600)),
    (1020, 20, 1000, (1000, 20)),
    (3510, 65, 1755, (1755, 1755)),
])
def test_split_quantity_whole_lots_within_freeze(quantity, lot_size, freeze, expected):
    children = split_quantity(quantity, lot_size, freeze)
    assert children == expected
    assert sum(children) == quantity


@pytest.mark.parametrize("quantity", [100, -65, 65.0])
def test_split_quantity_not_whole_lots_raises_sizing_error(quantity):
    with pytest.raises(SizingError, match="not a whole number of lots of 65"):
        split_quantity(quantity, 65, 1755)


def test_split_lots_largest_first():
    assert split_lots(60, 27) == (27, 27, 6)
    assert split_lots(54, 27) == (27, 27)


# --- margin-based profiles ----------------------------------------------------------------

@pytest.mark.parametrize(("profile", "available", "cap", "splits", "lots", "used", "usable", "binding"), [
    (CONSERVATIVE, D(1000000), None, 2, 1, D(320000), D(400000), Binding.PROFILE),
    (BALANCED, D(1000000), None, 2, 2, D(640000), D(650000), Binding.PROFILE),
    (AGGRESSIVE, D(1000000), None, 2, 2, D(640000), D(800000), Binding.PROFILE),
    (AGGRESSIVE, D(10000000), None, 2, 25, D(8000000), D(8000000), Binding.PROFILE),
    (BALANCED, D(1000000), D(500000), 2, 1, D(320000), D(500000), Binding.CAPITAL_CAP),
    (BALANCED, D(1000000), D(1000000), 2, 2, D(640000), D(650000), Binding.PROFILE),    # cap above the profile
    (BALANCED, D(1000000), D(650000), 2, 2, D(640000), D(650000), Binding.PROFILE),     # equal: the profile
    (AGGRESSIVE, D(50000000), None, 2, 54, D(17280000), D(40000000), Binding.FREEZE_SPLITS),  # 27 × 2
    (AGGRESSIVE, D(50000000), None, 3, 81, D(25920000), D(40000000), Binding.FREEZE_SPLITS),
    (AGGRESSIVE, D(50000000), D(16000000), 2, 50, D(16000000), D(16000000), Binding.CAPITAL_CAP),
])
def test_size_account_margin_profiles_decision_table(profile, available, cap, splits, lots, used, usable, binding):
    sizing = size_account(STRADDLE, profile, margin=STRADDLE_MARGIN, available_margin=available,
                          allowed_splits=splits, capital_cap=cap)
    assert sizing.skip_reason is None
    assert sizing.strategy_lots == lots
    assert [leg.lots for leg in sizing.legs] == [lots, lots]
    assert [leg.quantity for leg in sizing.legs] == [lots * 65, lots * 65]
    assert sizing.margin_used == used
    assert sizing.usable_margin == usable
    assert sizing.binding is binding


def test_size_account_freeze_cap_splits_children():
    sizing = size_account(STRADDLE, AGGRESSIVE, margin=STRADDLE_MARGIN, available_margin=D(50000000),
                          allowed_splits=3)
    assert sizing.legs[0] == LegSize(81, 5265, (1755, 1755, 1755))
    assert sizing.legs[0].child_orders == 3


def test_size_account_partial_last_child():
    sizing = size_account(SHORT_CALL, AGGRESSIVE, margin=table_margin_of(SHORT_CALL), available_margin=D(9400000),
                          allowed_splits=3)
    # 80 % of 94,00,000 = 75,20,000; ÷ 2,50,000 = 30 lots = 1950 units -> 27 + 3 lots
    assert sizing.legs == (LegSize(30, 1950, (1755, 195)),)
    assert sizing.binding is Binding.PROFILE


def test_size_account_ratio_legs_keep_ratio_and_cap_by_largest_leg():
    legs = (opt(BUY, CE), opt(SELL, CE, 2, "NIFTY"), opt(BUY, CE))   # butterfly 1:2:1, ₹5,00,000 per strategy lot
    margin = table_margin_of(legs)
    assert margin.amount == D(500000)
    sizing = size_account(legs, AGGRESSIVE, margin=margin, available_margin=D(100000000), allowed_splits=1)
    # 27 lots per order × 1 split: the 2-lot leg allows 13 strategy lots
    assert sizing.strategy_lots == 13
    assert [leg.lots for leg in sizing.legs] == [13, 26, 13]
    assert sizing.binding is Binding.FREEZE_SPLITS


def test_size_account_iron_condor_sizes_wings_with_their_sold_legs():
    margin = table_margin_of(IRON_CONDOR)
    sizing = size_account(IRON_CONDOR, BALANCED, margin=margin, available_margin=D(2000000), allowed_splits=2)
    assert margin.amount == D(320000)
    assert [leg.lots for leg in sizing.legs] == [4, 4, 4, 4]   # 13,00,000 ÷ 3,20,000
    assert sizing.margin_used == D(1280000)


def test_size_account_basket_margin_used_when_given():
    margin = StrategyLotMargin(D("82500.50"), MarginSource.BROKER_BASKET)
    sizing = size_account(IRON_CONDOR, BALANCED, margin=margin, available_margin=D(1000000), allowed_splits=2)
    assert sizing.strategy_lots == 7                            # 6,50,000 ÷ 82,500.50 = 7.87
    assert sizing.margin_used == D("577503.50")
    assert sizing.margin.source is MarginSource.BROKER_BASKET


@pytest.mark.parametrize(("legs", "profile", "available", "cap", "reason", "binding"), [
    (SHORT_CALL, BALANCED, D(120000), None, "available ₹1,20,000 < ₹2,50,000 for one lot", Binding.PROFILE),
    (STRADDLE, BALANCED, D(400000), None,
     "usable ₹2,60,000 (65 % of available ₹4,00,000) < ₹3,20,000 for one lot", Binding.PROFILE),
    (STRADDLE, CONSERVATIVE, D(700000), None,
     "usable ₹2,80,000 (40 % of available ₹7,00,000) < ₹3,20,000 for one lot", Binding.PROFILE),
    (STRADDLE, BALANCED, D(1000000), D(0), "capital cap ₹0 < ₹3,20,000 for one lot", Binding.CAPITAL_CAP),
    (STRADDLE, AGGRESSIVE, D(1000000), D(300000), "capital cap ₹3,00,000 < ₹3,20,000 for one lot",
     Binding.CAPITAL_CAP),
    (STRADDLE, AGGRESSIVE, D(100000), D(50000), "available ₹1,00,000 < ₹3,20,000 for one lot",
     Binding.CAPITAL_CAP),
    (STRADDLE, BALANCED, D(-5000), None, "available -₹5,000 < ₹3,20,000 for one lot", Binding.PROFILE),
    (SHORT_CALL, BALANCED, D("120000.75"), None, "available ₹1,20,000.75 < ₹2,50,000.00 for one lot",
     Binding.PROFILE),
])
def test_size_account_zero_lots_skipped_with_rupee_reason(legs, profile, available, cap, reason, binding):
    sizing = size_account(legs, profile, margin=table_margin_of(legs), available_margin=available,
                          allowed_splits=2, capital_cap=cap)
    assert sizing.skipped
    assert sizing.skip_reason == reason
    assert sizing.binding is binding
    assert sizing.strategy_lots == 0
    assert sizing.margin_used == D(0)
    assert all(leg == LegSize(0, 0, ()) for leg in sizing.legs)


def test_size_account_one_strategy_lot_above_freeze_cap_skipped():
    legs = (opt(SELL, CE, 30),)
    sizing = size_account(legs, AGGRESSIVE, margin=table_margin_of(legs), available_margin=D(100000000),
                          allowed_splits=1)
    assert sizing.skip_reason == "leg 1: one strategy lot needs 30 lots, above 27 lots per order × 1 order(s)"
    assert sizing.binding is Binding.FREEZE_SPLITS


# --- fixed lots ---------------------------------------------------------------------------

@pytest.mark.parametrize(("legs", "multiplier", "expected_lots", "used"), [
    (STRADDLE, D(1), [1, 1], D(320000)),
    (STRADDLE, D(3), [3, 3], D(960000)),
    ((opt(SELL, CE, 2), opt(BUY, CE, 2)), D("1.5"), [3, 3], D(750000)),     # 3 sold lots, wings hedged
    ((opt(SELL, CE, 3), opt(SELL, PE, 1)), D(2), [6, 2], D(1640000)),     # 2 × (1 pair + 2 singles)
    ((opt(SELL, CE, 1, "BANKNIFTY"),), D(25), [25], D(6250000)),
    # 1.5 × an iron condor of 1 lot per leg trades 1 lot per leg: the margin of 1 strategy lot, not 1.5.
    ((opt(SELL, CE, 1), opt(BUY, CE, 1), opt(SELL, PE, 1), opt(BUY, PE, 1)), D("1.5"), [1, 1, 1, 1],
     D(320000)),
])
def test_size_account_fixed_lots_times_multiplier(legs, multiplier, expected_lots, used):
    sizing = size_account(legs, FIXED, margin=table_margin_of(legs), available_margin=D(10000000),
                          allowed_splits=2, multiplier=multiplier)
    assert sizing.skip_reason is None
    assert [leg.lots for leg in sizing.legs] == expected_lots
    assert [leg.quantity for leg in sizing.legs] == [n * leg.lot_size for n, leg in zip(expected_lots, legs,
                                                                                          strict=True)]
    assert sizing.binding is Binding.FIXED
    assert sizing.strategy_lots is None
    assert sizing.usable_margin is None
    assert sizing.margin_used == used
    assert sizing.warnings == ()


def test_size_account_fixed_lots_banknifty_split_into_children():
    legs = (opt(SELL, CE, 1, "BANKNIFTY"),)
    sizing = size_account(legs, FIXED, margin=table_margin_of(legs), available_margin=D(10000000),
                          allowed_splits=2, multiplier=D(25))
    assert sizing.legs == (LegSize(25, 750, (600, 150)),)


def test_size_account_fixed_lots_short_of_margin_warns_not_skips():
    sizing = size_account(STRADDLE, FIXED, margin=STRADDLE_MARGIN, available_margin=D(500000),
                          allowed_splits=2, multiplier=D(3))
    assert not sizing.skipped
    assert sizing.warnings == ("available ₹5,00,000 < ₹9,60,000 needed for the fixed size",)


@pytest.mark.parametrize(("legs", "multiplier", "splits", "reason"), [
    (SHORT_CALL, D("0.5"), 2, "leg 1: 1 lot(s) × multiplier 0.5 rounds down to 0 lots"),
    (SHORT_CALL, D(60), 2, "leg 1: 60 lots exceed 27 lots per order × 2 order(s) = 54"),
    ((opt(SELL, CE), opt(SELL, PE, 1, "BANKNIFTY")), D(21), 1,
     "leg 2: 21 lots exceed 20 lots per order × 1 order(s) = 20"),
])
def test_size_account_fixed_lots_unplaceable_skipped(legs, multiplier, splits, reason):
    sizing = size_account(legs, FIXED, margin=table_margin_of(legs), available_margin=D(100000000),
                          allowed_splits=splits, multiplier=multiplier)
    assert sizing.skip_reason == reason
    assert sizing.binding is Binding.FIXED
    assert sizing.margin_used == D(0)


# --- bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "message"), [
    ({"allowed_splits": 0}, "allowed splits must be a whole number >= 1"),
    ({"capital_cap": D(-1)}, "the capital cap cannot be negative"),
    ({"profile": FIXED, "multiplier": D(0)}, "the lot multiplier must be greater than 0"),
    ({"profile": FIXED, "multiplier": D(-2)}, "the lot multiplier must be greater than 0"),
    ({"legs": ()}, "at least one leg"),
])
def test_size_account_bad_input_raises_sizing_error(kwargs, message):
    args = {"legs": STRADDLE, "profile": BALANCED, "margin": STRADDLE_MARGIN, "available_margin": D(1000000),
            "allowed_splits": 2, **kwargs}
    with pytest.raises(SizingError, match=message):
        size_account(args.pop("legs"), args.pop("profile"), **args)


def test_size_account_unknown_profile_raises_value_error():
    with pytest.raises(ValueError, match="reckless"):
        size_account(STRADDLE, "reckless", margin=STRADDLE_MARGIN, available_margin=D(1), allowed_splits=1)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"lots": 0}, "leg lots must be a whole number >= 1"),
    ({"lots": 1.5}, "leg lots must be a whole number >= 1"),
    ({"freeze_qty": 50}, "freeze quantity 50 is below one lot of 65"),
    ({"option_type": None}, "an option leg needs CE or PE"),
])
def test_sizing_leg_bad_values_raise_sizing_error(kwargs, message):
    args = {"underlying": "NIFTY", "kind": InstrumentKind.OPTION, "action": SELL, "option_type": CE, "lots": 1,
            "lot_size": 65, "freeze_qty": 1755, **kwargs}
    with pytest.raises(SizingError, match=message):
        SizingLeg(**args)


@pytest.mark.parametrize(("percent", "lots", "reason"), [
    (D(95), 2, None),            # grade A: 9,50,000 ÷ 3,20,000
    (D(65), 2, None),
    (D(36), 1, None),            # grade C: 3,60,000
    (D(30), 0, "usable ₹3,00,000 (30 % of available ₹10,00,000) < ₹3,20,000 for one lot"),
    (D(100), 3, None),
])
def test_size_account_usable_percent_replaces_profile_share(percent, lots, reason):
    sizing = size_account(STRADDLE, BALANCED, margin=STRADDLE_MARGIN, available_margin=D(1000000),
                          allowed_splits=2, usable_percent=percent)
    assert (sizing.strategy_lots, sizing.skip_reason) == (lots, reason)
    assert sizing.usable_margin == D(1000000) * percent / 100


@pytest.mark.parametrize(("profile", "percent", "message"), [
    (BALANCED, D(0), "above 0 % and at most 100 %"),
    (BALANCED, D(101), "above 0 % and at most 100 %"),
    (FIXED, D(95), "fixed lots use no share"),
])
def test_size_account_bad_usable_percent_raises_sizing_error(profile, percent, message):
    with pytest.raises(SizingError, match=message):
        size_account(STRADDLE, profile, margin=STRADDLE_MARGIN, available_margin=D(1000000), allowed_splits=2,
                     usable_percent=percent)
