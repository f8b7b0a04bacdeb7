"""Strike selection on real, uneven strike lists."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from app.domain.errors import StrikeUnavailable
from app.domain.instruments import OptionType
from app.domain.strikes import (
    StrikeMethod,
    StrikeRule,
    atm_strike,
    chain_window,
    inside_window,
    offset_strike,
    premium_near_strike,
    select_strike,
    specific_strike,
)

# Uneven like a real chain: 50 near the money, wider further out (given unsorted on purpose).
STRIKES = [D(k) for k in (26000, 25000, 25500, 25800, 25900, 25950, 26050, 26100, 26200, 26500, 27000)]
CE, PE = OptionType.CE, OptionType.PE
ITM, OTM = StrikeMethod.ITM, StrikeMethod.OTM


@pytest.mark.parametrize(("spot", "expected"), [
    (D("25974"), D(25950)),
    (D("25975"), D(25950)),     # tie between 25950 and 26000: lower wins
    (D("25975.01"), D(26000)),
    (D("26150"), D(26100)),     # tie across an uneven 100 gap
    (D("26350"), D(26200)),     # tie across a 300 gap
    (D("26350.05"), D(26500)),
    (D("24000"), D(25000)),     # below the list: its lowest strike
    (D("28000"), D(27000)),
    (D("26000"), D(26000)),
])
def test_atm_strike_nearest_spot_tie_lower(spot, expected):
    assert atm_strike(STRIKES, spot) == expected


@pytest.mark.parametrize(("option_type", "method", "offset", "expected"), [
    (CE, ITM, 1, D(25950)),
    (CE, ITM, 3, D(25800)),
    (CE, ITM, 5, D(25000)),
    (CE, OTM, 1, D(26050)),
    (CE, OTM, 4, D(26500)),
    (CE, OTM, 5, D(27000)),
    (PE, ITM, 1, D(26050)),
    (PE, ITM, 5, D(27000)),
    (PE, OTM, 1, D(25950)),
    (PE, OTM, 2, D(25900)),
    (PE, OTM, 5, D(25000)),
])
def test_offset_strike_walks_real_list_by_type(option_type, method, offset, expected):
    assert offset_strike(STRIKES, D("26010"), option_type, method, offset) == expected


@pytest.mark.parametrize(("option_type", "method", "offset", "message"), [
    (CE, OTM, 6, "OTM6 CE is off the strike list: only 5 strike\\(s\\) above ATM 26000"),
    (CE, ITM, 6, "ITM6 CE is off the strike list: only 5 strike\\(s\\) below ATM 26000"),
    (PE, ITM, 6, "ITM6 PE is off the strike list: only 5 strike\\(s\\) above ATM 26000"),
    (PE, OTM, 20, "OTM20 PE is off the strike list: only 5 strike\\(s\\) below ATM 26000"),
])
def test_offset_strike_off_the_list_raises_strike_unavailable(option_type, method, offset, message):
    with pytest.raises(StrikeUnavailable, match=message):
        offset_strike(STRIKES, D("26010"), option_type, method, offset)


@pytest.mark.parametrize("offset", [0, 21, -1, True, 2.0])
def test_offset_strike_offset_outside_1_to_20_raises_value_error(offset):
    with pytest.raises(ValueError, match="offset must be a whole number from 1 to 20"):
        offset_strike(STRIKES, D("26010"), CE, ITM, offset)


def test_offset_strike_atm_method_raises_value_error():
    with pytest.raises(ValueError, match="ITM or OTM"):
        offset_strike(STRIKES, D("26010"), CE, StrikeMethod.ATM, 1)


def test_atm_strike_empty_list_raises_strike_unavailable():
    with pytest.raises(StrikeUnavailable, match="empty"):
        atm_strike([], D("26000"))


@pytest.mark.parametrize(("wanted", "expected"), [(D(26050), D(26050)), (D("26050.00"), D(26050)), (26500, D(26500))])
def test_specific_strike_listed_returns_it(wanted, expected):
    assert specific_strike(STRIKES, wanted) == expected


def test_specific_strike_not_listed_raises_strike_unavailable():
    with pytest.raises(StrikeUnavailable, match="strike 26075 is not listed for this expiry \\(25000 … 27000\\)"):
        specific_strike(STRIKES, D(26075))


QUOTES = {D(25900): D(160), D(25950): D(130), D(26000): D(100), D(26050): D(70), D(26100): D(45),
          D(26200): D(0), D(26500): None}


@pytest.mark.parametrize(("target", "expected"), [
    (D(100), D(26000)),        # exact
    (D(115), D(26000)),        # 130 and 100 both 15 away: the cheaper (100)
    (D("57.5"), D(26100)),     # 70 and 45 both 12.5 away: the cheaper (45)
    (D("57.49"), D(26100)),
    (D("57.51"), D(26050)),
    (D(1), D(26100)),          # the zero and missing quotes are not candidates
    (D(500), D(25900)),
])
def test_premium_near_strike_nearest_premium_tie_cheaper(target, expected):
    assert premium_near_strike(QUOTES, target) == expected


def test_premium_near_strike_equal_premiums_takes_lower_strike():
    assert premium_near_strike({D(26100): D(100), D(26000): D(100)}, D(90)) == D(26000)


@pytest.mark.parametrize("target", [D(0), D(-5), True, None])
def test_premium_near_strike_target_not_positive_raises_value_error(target):
    with pytest.raises(ValueError, match="greater than 0"):
        premium_near_strike(QUOTES, target)


def test_premium_near_strike_no_usable_quotes_raises_strike_unavailable():
    with pytest.raises(StrikeUnavailable, match="no strike has a quote"):
        premium_near_strike({D(26000): D(0), D(26100): None}, D(50))


@pytest.mark.parametrize(("rule", "option_type", "expected"), [
    (StrikeRule(StrikeMethod.ATM), CE, D(26000)),
    (StrikeRule(StrikeMethod.ITM, offset=2), CE, D(25900)),
    (StrikeRule(StrikeMethod.OTM, offset=2), PE, D(25900)),
    (StrikeRule(StrikeMethod.STRIKE, strike=D(26200)), PE, D(26200)),
    (StrikeRule(StrikeMethod.PREMIUM_NEAR, target_premium=D(72)), CE, D(26050)),
])
def test_select_strike_dispatches_by_method(rule, option_type, expected):
    assert select_strike(rule, strikes=STRIKES, spot=D("26010"), option_type=option_type, quotes=QUOTES) == expected


def test_select_strike_premium_near_ignores_quotes_off_the_list():
    quotes = {D(26000): D(100), D(26025): D(90)}  # 26025 is not a listed strike
    rule = StrikeRule(StrikeMethod.PREMIUM_NEAR, target_premium=D(90))
    assert select_strike(rule, strikes=STRIKES, spot=D(26000), option_type=CE, quotes=quotes) == D(26000)


def test_select_strike_premium_near_without_quotes_raises_strike_unavailable():
    rule = StrikeRule(StrikeMethod.PREMIUM_NEAR, target_premium=D(90))
    with pytest.raises(StrikeUnavailable, match="needs the quotes"):
        select_strike(rule, strikes=STRIKES, spot=D(26000), option_type=CE)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"method": "itm"}, "offset must be a whole number from 1 to 20"),
    ({"method": "otm", "offset": 21}, "offset must be a whole number from 1 to 20"),
    ({"method": "atm", "offset": 1}, "atm takes no offset"),
    ({"method": "strike"}, "a specific strike must be a positive price"),
    ({"method": "strike", "strike": D(0)}, "a specific strike must be a positive price"),
    ({"method": "atm", "strike": D(26000)}, "atm takes no strike price"),
    ({"method": "premium_near", "target_premium": D(0)}, "the target premium must be greater than 0"),
    ({"method": "premium_near"}, "the target premium must be greater than 0"),
    ({"method": "itm", "offset": 1, "target_premium": D(5)}, "itm takes no target premium"),
    ({"method": "nearest"}, "nearest"),
])
def test_strike_rule_bad_parameters_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StrikeRule(**kwargs)


@pytest.mark.parametrize(("rule", "label"), [
    (StrikeRule("atm"), "ATM"),
    (StrikeRule("itm", offset=3), "ITM3"),
    (StrikeRule("otm", offset=20), "OTM20"),
    (StrikeRule("strike", strike=D(26000)), "strike 26000"),
    (StrikeRule("premium_near", target_premium=D(120)), "premium ≈ 120"),
])
def test_strike_rule_label_names_method(rule, label):
    assert rule.label == label


@pytest.mark.parametrize("bad", [D("NaN"), D("sNaN"), D("Infinity"), D("-Infinity"), D(0), D(-1)])
def test_strike_rule_with_non_finite_or_non_positive_price_raises_value_error(bad):
    with pytest.raises(ValueError):
        StrikeRule(StrikeMethod.STRIKE, strike=bad)
    with pytest.raises(ValueError):
        StrikeRule(StrikeMethod.PREMIUM_NEAR, target_premium=bad)


def _rule(text: str) -> StrikeRule:
    method, _, value = text.partition(" ")
    if method in ("itm", "otm"):
        return StrikeRule(StrikeMethod(method), offset=int(value))
    if method == "strike":
        return StrikeRule(StrikeMethod.STRIKE, strike=D(value))
    if method == "premium_near":
        return StrikeRule(StrikeMethod.PREMIUM_NEAR, target_premium=D(value))
    return StrikeRule(StrikeMethod.ATM)


@pytest.mark.parametrize(("rules", "expected"), [
    (["atm"], 2),                                 # ATM alone: the margin each side
    (["otm 2", "otm 4", "otm 2", "otm 4"], 6),    # an iron condor: the widest offset + 2
    (["itm 3", "atm", "otm 1"], 5),
    (["otm 20"], 22),                             # the widest offset there is: within OpenAlgo's 100
    (["otm 2", "strike 26000"], None),            # a specific strike may lie anywhere on the list
    (["atm", "premium_near 40"], None),           # premium-near compares every candidate
    ([], 2),
])
def test_chain_window_is_the_widest_offset_plus_the_margin_or_the_whole_list(rules, expected):
    assert chain_window([_rule(r) for r in rules]) == expected


WINDOW = [D(k) for k in (25900, 25950, 26000, 26050, 26100)]


@pytest.mark.parametrize(("strikes", "spot", "inside"), [
    (WINDOW, D("26010"), True),     # ATM 26000, the middle
    (WINDOW, D("25930"), True),     # ATM 25950: one strike in from the lower end
    (WINDOW, D("25924"), False),    # ATM 25900: the lower end; the nearest may lie below it
    (WINDOW, D("26100"), False),    # ATM 26100: the upper end
    (WINDOW, D("27000"), False),    # the spot far above the window
    ([D(26000)], D("26000"), False),
    ([], D("26000"), False),
])
def test_a_window_is_trusted_only_with_its_atm_strictly_inside(strikes, spot, inside):
    assert inside_window(strikes, spot) is inside
