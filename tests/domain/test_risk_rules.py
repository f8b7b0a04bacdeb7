"""Risk rules as decision tables: thresholds exactly at, a paisa inside and a paisa past; the
trailing stop; leg stops and targets; account limits; scopes, actions, order and reset."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D
from fractions import Fraction

import pytest

from app.domain.instruments import Action
from app.domain.price_guard import PriceProblem, assess_prices, check_price
from app.domain.risk_pnl import LegPosition
from app.domain.risk_rules import (
    HOLD,
    UNARMED,
    AccountPosition,
    BreachLatch,
    Decision,
    LegRiskRule,
    LegToClose,
    RunRiskSettings,
    TrailingState,
    advance_trailing,
    evaluate_account_limits,
    evaluate_run,
    initial_state,
    leg_stop_loss_rule,
    leg_stop_price,
    leg_target_price,
    leg_target_rule,
    max_loss_rule,
    max_profit_rule,
    scale_threshold,
    size_factor,
    trailing_distance,
    trailing_stop_rule,
)
from app.domain.risk_settings import RiskAction, RiskEventType, RiskScope
from app.domain.strategy_settings import LegRiskUnit, TrailingType

CLOSE_ALL, CLOSE_PARTIAL, ALERT = RiskAction.CLOSE_ALL, RiskAction.CLOSE_PARTIAL, RiskAction.ALERT_ONLY
POINTS, PCT = LegRiskUnit.POINTS, LegRiskUnit.PERCENTAGE


# --- max loss / max profit ---------------------------------------------------------------------

@pytest.mark.parametrize(("pnl", "breached"), [
    (D("-5000.00"), True), (D("-4999.99"), False), (D("-5000.01"), True), (D("0"), False), (D("100"), False),
])
def test_max_loss_exactly_at_the_line_breaches(pnl, breached):
    decision = max_loss_rule(pnl, D("5000"), CLOSE_ALL)
    assert decision.breached is breached
    if breached:
        assert decision == Decision(RiskEventType.MAX_LOSS, CLOSE_ALL,
                                    f"Max loss: P&L -₹{-pnl:,.2f} ≤ -₹5,000.00", D("-5000"), pnl)
    else:
        assert decision == HOLD


@pytest.mark.parametrize(("pnl", "breached"), [
    (D("3000.00"), True), (D("2999.99"), False), (D("3000.01"), True), (D("-3000"), False),
])
def test_max_profit_exactly_at_the_line_breaches(pnl, breached):
    decision = max_profit_rule(pnl, D("3000"), ALERT)
    assert decision.breached is breached
    if breached:
        assert (decision.event_type, decision.action, decision.threshold, decision.current_value) == \
            (RiskEventType.MAX_PROFIT, ALERT, D("3000"), pnl)


def test_rule_off_holds_and_bad_thresholds_are_refused():
    assert max_loss_rule(D("-1000000"), None, CLOSE_ALL) == HOLD
    assert max_profit_rule(D("1000000"), None, CLOSE_ALL) == HOLD
    for bad in (D("0"), D("-1"), D("NaN")):
        with pytest.raises(ValueError):
            max_loss_rule(D("0"), bad, CLOSE_ALL)
        with pytest.raises(ValueError):
            max_profit_rule(D("0"), bad, CLOSE_ALL)


# --- scaling -----------------------------------------------------------------------------------

def test_size_factor_is_exact():
    assert size_factor(130, 65) == 2
    assert size_factor(65, 195) == Fraction(1, 3)
    with pytest.raises(ValueError):
        size_factor(0, 65)
    with pytest.raises(ValueError):
        size_factor(65, 0)


@pytest.mark.parametrize(("value", "factor", "expected"), [
    (D("5000"), Fraction(2), D("10000.00")),
    (D("5000"), Fraction(1), D("5000.00")),
    (D("1000"), Fraction(1, 3), D("333.33")),
    (D("1000"), Fraction(2, 3), D("666.67")),
    (D("1000.05"), Fraction(1, 2), D("500.03")),  # 500.025: half up
    (D("0.03"), Fraction(1, 2), D("0.02")),
    (D("0.45"), Fraction(1, 30), D("0.02")),  # exactly 0.015: a rounded 1/30 would give 0.01
    (D("1000"), D("1.5"), D("1500.00")),
    (D("1000"), 3, D("3000.00")),
])
def test_scale_threshold_rounds_half_up_to_the_paisa(value, factor, expected):
    assert scale_threshold(value, factor) == expected


# --- trailing stop ----------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "value", "premium", "qty", "expected"), [
    (TrailingType.AMOUNT, D("500"), D("14300"), 65, D("500")),
    (TrailingType.PERCENTAGE, D("10"), D("14300"), 65, D("1430")),
    (TrailingType.PERCENTAGE, D("100"), D("7800"), 65, D("7800")),
    (TrailingType.POINTS, D("5"), D("14300"), 65, D("325")),
    (TrailingType.POINTS, D("2.5"), D("0"), 130, D("325.0")),
])
def test_trailing_distance_amount_percentage_points(kind, value, premium, qty, expected):
    assert trailing_distance(kind, value, premium, qty) == expected


@pytest.mark.parametrize(("kind", "value", "premium", "qty"), [
    (TrailingType.PERCENTAGE, D("100.01"), D("100"), 1),
    (TrailingType.AMOUNT, D("0"), D("100"), 1),
    (TrailingType.POINTS, D("-1"), D("100"), 1),
    (TrailingType.AMOUNT, D("1"), D("-1"), 1),
    (TrailingType.POINTS, D("1"), D("1"), -1),
])
def test_trailing_distance_bad_values_are_refused(kind, value, premium, qty):
    with pytest.raises(ValueError):
        trailing_distance(kind, value, premium, qty)


@pytest.mark.parametrize(("pnl", "expected"), [
    (D("0"), UNARMED),  # zero does not arm
    (D("-100"), UNARMED),
    (D("0.01"), TrailingState(True, D("0.01"), D("-499.99"))),
])
def test_trailing_arms_only_when_pnl_is_above_zero(pnl, expected):
    assert advance_trailing(UNARMED, pnl, D("500")) == expected


def test_trailing_follows_the_peak_and_never_lowers_the_stop():
    distance = D("500")
    state = advance_trailing(UNARMED, D("1000"), distance)
    assert state == TrailingState(True, D("1000"), D("500"))
    state = advance_trailing(state, D("800"), distance)  # a dip: nothing moves
    assert state == TrailingState(True, D("1000"), D("500"))
    state = advance_trailing(state, D("1200"), distance)  # a new high: trail up
    assert state == TrailingState(True, D("1200"), D("700"))
    state = advance_trailing(state, D("1200"), D("1000"))  # a wider distance never lowers the stop
    assert state == TrailingState(True, D("1200"), D("700"))
    state = advance_trailing(state, D("-50"), distance)  # stays armed below zero
    assert state == TrailingState(True, D("1200"), D("700"))


def test_trailing_distance_must_be_positive():
    with pytest.raises(ValueError):
        advance_trailing(UNARMED, D("1"), D("0"))


@pytest.mark.parametrize(("pnl", "breached"), [
    (D("700.00"), True), (D("700.01"), False), (D("699.99"), True), (D("-1000"), True),
])
def test_trailing_stop_fires_at_or_below_the_stop(pnl, breached):
    state = TrailingState(True, D("1200"), D("700"))
    decision = trailing_stop_rule(state, pnl, CLOSE_ALL)
    assert decision.breached is breached
    if breached:
        assert (decision.event_type, decision.threshold, decision.current_value) == \
            (RiskEventType.TRAILING_SL, D("700"), pnl)
        assert decision.reason == f"Trailing stop: P&L {'-' if pnl < 0 else ''}₹{abs(pnl):,.2f} ≤ stop ₹700.00 " \
                                  "(peak ₹1,200.00)"


def test_trailing_stop_unarmed_never_fires():
    assert trailing_stop_rule(UNARMED, D("-100000"), CLOSE_ALL) == HOLD


def test_trailing_sequence_arm_trail_fire():
    distance, state, fired = D("300"), UNARMED, []
    for pnl in [D("-200"), D("0"), D("100"), D("600"), D("450"), D("301"), D("300")]:
        state = advance_trailing(state, pnl, distance)
        fired.append(trailing_stop_rule(state, pnl, CLOSE_ALL).breached)
    assert fired == [False, False, False, False, False, False, True]
    assert state == TrailingState(True, D("600"), D("300"))


# --- leg stop loss and target ----------------------------------------------------------------

@pytest.mark.parametrize(("action", "entry", "unit", "value", "stop", "target"), [
    (Action.BUY, D("100"), POINTS, D("20"), D("80"), D("120")),
    (Action.SELL, D("200"), POINTS, D("30"), D("230"), D("170")),
    (Action.BUY, D("100"), PCT, D("10"), D("90"), D("110")),
    (Action.SELL, D("200"), PCT, D("50"), D("300"), D("100")),
    (Action.SELL, D("80"), PCT, D("150"), D("200"), D("-40")),  # a 150% stop on a short is allowed
])
def test_leg_stop_and_target_prices(action, entry, unit, value, stop, target):
    assert leg_stop_price(action, entry, unit, value) == stop
    assert leg_target_price(action, entry, unit, value) == target


@pytest.mark.parametrize(("action", "unit", "value", "ltp", "breached"), [
    (Action.BUY, POINTS, D("20"), D("80.00"), True),
    (Action.BUY, POINTS, D("20"), D("80.01"), False),
    (Action.BUY, POINTS, D("20"), D("79.99"), True),
    (Action.BUY, PCT, D("10"), D("90.00"), True),
    (Action.BUY, PCT, D("10"), D("90.01"), False),
    (Action.BUY, PCT, D("10"), D("89.99"), True),
    (Action.SELL, POINTS, D("20"), D("120.00"), True),
    (Action.SELL, POINTS, D("20"), D("119.99"), False),
    (Action.SELL, POINTS, D("20"), D("120.01"), True),
    (Action.SELL, PCT, D("50"), D("150.00"), True),
    (Action.SELL, PCT, D("50"), D("149.99"), False),
    (Action.SELL, PCT, D("50"), D("150.01"), True),
])
def test_leg_stop_loss_decision_table(action, unit, value, ltp, breached):
    decision = leg_stop_loss_rule(2, action, D("100"), ltp, unit, value)
    assert decision.breached is breached
    if breached:
        assert (decision.event_type, decision.action, decision.current_value) == \
            (RiskEventType.LEG_SL, CLOSE_PARTIAL, ltp)
        assert decision.threshold == leg_stop_price(action, D("100"), unit, value)


@pytest.mark.parametrize(("action", "unit", "value", "ltp", "breached"), [
    (Action.BUY, POINTS, D("20"), D("120.00"), True),
    (Action.BUY, POINTS, D("20"), D("119.99"), False),
    (Action.BUY, POINTS, D("20"), D("120.01"), True),
    (Action.BUY, PCT, D("25"), D("125.00"), True),
    (Action.BUY, PCT, D("25"), D("124.99"), False),
    (Action.SELL, POINTS, D("20"), D("80.00"), True),
    (Action.SELL, POINTS, D("20"), D("80.01"), False),
    (Action.SELL, POINTS, D("20"), D("79.99"), True),
    (Action.SELL, PCT, D("25"), D("75.00"), True),
    (Action.SELL, PCT, D("25"), D("75.01"), False),
    (Action.SELL, PCT, D("25"), D("74.99"), True),
])
def test_leg_target_decision_table(action, unit, value, ltp, breached):
    decision = leg_target_rule(2, action, D("100"), ltp, unit, value)
    assert decision.breached is breached
    if breached:
        assert (decision.event_type, decision.action, decision.threshold) == \
            (RiskEventType.LEG_TP, CLOSE_PARTIAL, leg_target_price(action, D("100"), unit, value))


def test_leg_rule_reason_names_leg_side_and_numbers():
    decision = leg_stop_loss_rule(2, Action.SELL, D("100"), D("130"), PCT, D("30"))
    assert decision.reason == "Leg 2 (SELL) stop loss: LTP 130 ≥ 130 (entry 100, 30%)"


def test_leg_rule_value_must_be_positive():
    with pytest.raises(ValueError):
        leg_stop_price(Action.BUY, D("100"), POINTS, D("0"))
    with pytest.raises(ValueError):
        LegRiskRule(1, target=(PCT, D("-5")))


# --- account daily limits --------------------------------------------------------------------

TODAY = date(2026, 1, 5)


@pytest.mark.parametrize(("day_pnl", "event"), [
    (D("-10000.00"), RiskEventType.ACCOUNT_LOSS_LIMIT),
    (D("-9999.99"), None),
    (D("-10000.01"), RiskEventType.ACCOUNT_LOSS_LIMIT),
    (D("20000.00"), RiskEventType.ACCOUNT_PROFIT_LIMIT),
    (D("19999.99"), None),
    (D("20000.01"), RiskEventType.ACCOUNT_PROFIT_LIMIT),
])
def test_account_daily_limits_decision_table(day_pnl, event):
    verdict = evaluate_account_limits(7, day_pnl, D("10000"), D("20000"), TODAY)
    assert verdict.decision.event_type is event
    assert verdict.blocks_entries is (event is not None)
    assert verdict.closes_all_runs is (event is not None)
    assert (verdict.account_id, verdict.trading_day) == (7, TODAY)
    if event is not None:
        assert verdict.decision.action is CLOSE_ALL
        assert verdict.decision.current_value == day_pnl
        assert "entries blocked until the next trading day" in verdict.decision.reason


def test_account_without_limits_holds():
    assert not evaluate_account_limits(7, D("-1000000"), None, None, TODAY).blocks_entries


# --- notify once per breach ------------------------------------------------------------------

def test_breach_latch_notifies_once_and_rearms_when_cleared():
    latch, notified = BreachLatch(), []
    for breached in [["a"], ["a"], ["a", "b"], [], ["a"]]:
        latch, new = latch.observe(breached)
        notified.append(sorted(new))
    assert notified == [["a"], [], ["b"], [], ["a"]]


# --- a run: scopes, actions, order, reset ---------------------------------------------------

def sell(leg: int, qty: int, entry: str, ltp: str) -> LegPosition:
    return LegPosition(leg, Action.SELL, [(qty, D(entry))], ltp=D(ltp))


def straddle(account_id: int, qty: int, ce_ltp: str, pe_ltp: str) -> AccountPosition:
    """Short straddle sold at 100 / 100; P&L = (100 − ce) × qty + (100 − pe) × qty."""
    return AccountPosition(account_id, qty, [sell(1, qty, "100", ce_ltp), sell(2, qty, "100", pe_ltp)])


def settings(scope: RiskScope = RiskScope.PER_ACCOUNT, **values) -> RunRiskSettings:
    return RunRiskSettings(scope=scope, base_quantity_per_leg=65, **values)


def test_per_account_scope_scales_thresholds_and_each_account_decides_alone():
    rules = settings(max_loss=D("650"))
    small = straddle(1, 65, "110", "100")  # −650 against −650: breach
    large = straddle(2, 130, "110", "99.99")  # −1298.70 against −1300: hold
    result = evaluate_run(rules, 10, [small, large], None)
    assert [(d.unit, d.decision.event_type, d.decision.threshold, d.decision.current_value) for d in result.exits] \
        == [(1, RiskEventType.MAX_LOSS, D("-650.00"), D("-650"))]
    assert result.exits[0].account_ids == (1,)
    assert result.account_pnls == ((1, D("-650")), (2, D("-1298.70")))
    assert result.combined_pnl == D("-1948.70")


def test_per_account_scope_large_account_breaches_at_its_scaled_line():
    result = evaluate_run(settings(max_loss=D("650")), 10, [straddle(2, 130, "110", "100")], None)
    assert [(d.unit, d.decision.threshold, d.decision.current_value) for d in result.exits] == \
        [(2, D("-1300.00"), D("-1300"))]


def test_per_account_scale_by_a_third_rounds_the_threshold():
    rules = RunRiskSettings(RiskScope.PER_ACCOUNT, base_quantity_per_leg=3, max_loss=D("100"))
    leg = LegPosition(1, Action.BUY, [(1, D("100"))], ltp=D("66.67"))  # −33.33 against −33.33
    assert [d.decision.threshold for d in evaluate_run(rules, 1, [AccountPosition(5, 1, [leg])], None).exits] \
        == [D("-33.33")]
    leg = LegPosition(1, Action.BUY, [(1, D("100"))], ltp=D("66.68"))  # −33.32: hold
    assert evaluate_run(rules, 1, [AccountPosition(5, 1, [leg])], None).exits == ()


@pytest.mark.parametrize(("pe_ltp", "breached"), [("99.99", False), ("100", True), ("100.01", True)])
def test_combined_scope_sums_pnl_against_summed_thresholds_one_decision_for_all(pe_ltp, breached):
    rules = settings(RiskScope.COMBINED, max_loss=D("650"))
    accounts = [straddle(1, 65, "110", "100"), straddle(2, 130, "110", pe_ltp)]  # −650 + (−1300 ± 1.30)
    result = evaluate_run(rules, 10, accounts, None)
    if not breached:
        assert result.exits == ()
        return
    (decision,) = result.exits
    assert (decision.unit, decision.account_ids, decision.close_all_legs) == (None, (1, 2), True)
    assert decision.decision.threshold == D("-1950.00")  # 650 + 1300
    assert decision.decision.current_value == result.combined_pnl


def test_close_all_closes_every_leg_close_partial_only_losing_legs():
    account = straddle(1, 65, "110", "95")  # CE −650, PE +325: P&L −325
    (full,) = evaluate_run(settings(max_loss=D("325")), 1, [account], None).exits
    assert (full.close_all_legs, full.legs_to_close, full.sends_orders) == (True, (), True)
    (partial,) = evaluate_run(settings(max_loss=D("325"), max_loss_action=CLOSE_PARTIAL), 1, [account], None).exits
    assert (partial.close_all_legs, partial.legs_to_close) == (False, (LegToClose(1, 1),))
    assert partial.decision.action is CLOSE_PARTIAL


def test_close_partial_in_combined_scope_lists_each_accounts_losing_legs():
    rules = settings(RiskScope.COMBINED, max_loss=D("100"), max_loss_action=CLOSE_PARTIAL)
    accounts = [straddle(1, 65, "110", "95"), straddle(2, 65, "99", "102")]  # A: CE loses; B: PE loses
    (decision,) = evaluate_run(rules, 1, accounts, None).exits
    assert decision.legs_to_close == (LegToClose(1, 1), LegToClose(2, 2))


def test_close_partial_leaves_a_leg_at_exactly_zero():
    rules = settings(max_loss=D("650"), max_loss_action=CLOSE_PARTIAL)
    (decision,) = evaluate_run(rules, 1, [straddle(1, 65, "110", "100")], None).exits  # CE −650, PE 0
    assert decision.legs_to_close == (LegToClose(1, 1),)


def test_close_partial_with_no_losing_leg_sends_nothing():
    (decision,) = evaluate_run(settings(max_profit=D("650"), max_profit_action=CLOSE_PARTIAL), 1,
                               [straddle(1, 65, "95", "95")], None).exits
    assert decision.legs_to_close == ()
    assert not decision.sends_orders


def test_alert_only_sends_nothing_and_notifies_once_per_breach():
    rules = settings(max_loss=D("650"), max_loss_action=ALERT)
    state, notified = None, []
    for ce in ["110", "111", "109", "112"]:  # breach, still, cleared, again
        result = evaluate_run(rules, 1, [straddle(1, 65, ce, "100")], state)
        state = result.state
        assert result.exits == ()
        notified.append([a.decision.event_type for a in result.alerts_to_notify])
    assert notified == [[RiskEventType.MAX_LOSS], [], [], [RiskEventType.MAX_LOSS]]


def test_exit_is_new_only_on_its_first_evaluation():
    rules, state, new = settings(max_loss=D("650")), None, []
    for ce in ["110", "110", "105", "110"]:
        result = evaluate_run(rules, 1, [straddle(1, 65, ce, "100")], state)
        state = result.state
        new.append([d.new for d in result.exits])
    assert new == [[True], [False], [], [True]]


def test_two_rules_on_one_tick_give_one_exit_the_first_in_order():
    rules = settings(max_loss=D("650"), trailing_type=TrailingType.AMOUNT, trailing_value=D("1000"),
                     trailing_action=CLOSE_PARTIAL)
    armed = evaluate_run(rules, 1, [straddle(1, 65, "99", "99")], None)  # +130: stop −870
    assert armed.state.trailing_for(1) == TrailingState(True, D("130"), D("-870"))
    result = evaluate_run(rules, 1, [straddle(1, 65, "114", "100")], armed.state)  # −910: both fire
    assert [d.decision.event_type for d in result.exits] == [RiskEventType.MAX_LOSS]
    assert result.exits[0].close_all_legs


def test_trailing_fires_before_max_profit_and_an_alert_never_blocks_a_closing_rule():
    rules = settings(max_profit=D("1300"), max_profit_action=ALERT,
                     trailing_type=TrailingType.AMOUNT, trailing_value=D("65"))
    first = evaluate_run(rules, 1, [straddle(1, 65, "90", "90")], None)  # +1300
    assert first.exits == ()
    assert [a.decision.event_type for a in first.alerts_to_notify] == [RiskEventType.MAX_PROFIT]
    second = evaluate_run(rules, 1, [straddle(1, 65, "91", "89")], first.state)  # +1300 again: above stop 1235
    assert second.exits == ()
    third = evaluate_run(rules, 1, [straddle(1, 65, "90", "91")], second.state)  # +1235: at the stop
    assert [d.decision.event_type for d in third.exits] == [RiskEventType.TRAILING_SL]
    assert [a.decision.event_type for a in third.alerts] == []  # 1235 < 1300: the alert has cleared


def test_max_loss_alert_only_and_trailing_close_on_one_tick_both_reported():
    rules = settings(max_loss=D("650"), max_loss_action=ALERT,
                     trailing_type=TrailingType.AMOUNT, trailing_value=D("1000"))
    armed = evaluate_run(rules, 1, [straddle(1, 65, "99", "99")], None)  # stop −870
    result = evaluate_run(rules, 1, [straddle(1, 65, "114", "100")], armed.state)  # −910
    assert [d.decision.event_type for d in result.exits] == [RiskEventType.TRAILING_SL]
    assert [a.decision.event_type for a in result.alerts] == [RiskEventType.MAX_LOSS]


@pytest.mark.parametrize(("kind", "value", "stop_small", "stop_large"), [
    (TrailingType.AMOUNT, D("100"), D("0.10"), D("0.20")),  # ₹100 at base, ₹200 for the double account
    (TrailingType.POINTS, D("1"), D("35.10"), D("70.20")),  # 65 / 130 units per leg
    (TrailingType.PERCENTAGE, D("1"), D("-29.90"), D("-59.80")),  # 1% of 13000 / 26000
])
def test_trailing_distance_per_account_scales_with_size(kind, value, stop_small, stop_large):
    rules = settings(trailing_type=kind, trailing_value=value)
    result = evaluate_run(rules, 1, [straddle(1, 65, "99.99", "98.47"), straddle(2, 130, "99.99", "98.47")], None)
    # P&L (0.01 + 1.53) × qty: +100.10 and +200.20
    assert result.state.trailing_for(1).stop == stop_small
    assert result.state.trailing_for(2).stop == stop_large


def test_trailing_distance_combined_sums_the_accounts():
    rules = settings(RiskScope.COMBINED, trailing_type=TrailingType.POINTS, trailing_value=D("1"))
    result = evaluate_run(rules, 1, [straddle(1, 65, "99", "99"), straddle(2, 130, "99", "99")], None)
    assert result.state.trailing_for(None) == TrailingState(True, D("390"), D("195"))  # 390 − 1 × (65 + 130)


def test_leg_rules_close_only_their_leg_per_account():
    rules = settings(leg_rules=(LegRiskRule(1, stop_loss=(PCT, D("30"))), LegRiskRule(2, target=(POINTS, D("50")))))
    accounts = [straddle(1, 65, "130", "60"), straddle(2, 65, "129.99", "50")]
    result = evaluate_run(rules, 1, accounts, None)
    assert [(d.unit, d.decision.event_type, d.legs_to_close, d.close_all_legs) for d in result.exits] == [
        (1, RiskEventType.LEG_SL, (LegToClose(1, 1),), False),
        (2, RiskEventType.LEG_TP, (LegToClose(2, 2),), False),
    ]


def test_leg_rule_under_a_close_all_exit_is_not_repeated():
    rules = settings(max_loss=D("1000"), leg_rules=(LegRiskRule(1, stop_loss=(PCT, D("30"))),))
    result = evaluate_run(rules, 1, [straddle(1, 65, "130", "100")], None)  # −1950, CE at its stop
    assert [d.decision.event_type for d in result.exits] == [RiskEventType.MAX_LOSS]


def test_leg_rule_kept_beside_a_partial_exit_that_does_not_close_its_leg():
    rules = settings(max_loss=D("1000"), max_loss_action=CLOSE_PARTIAL,
                     leg_rules=(LegRiskRule(1, stop_loss=(PCT, D("30"))), LegRiskRule(2, target=(PCT, D("40")))))
    result = evaluate_run(rules, 1, [straddle(1, 65, "130", "60")], None)  # CE −1950, PE +2600 … P&L +650
    assert [d.decision.event_type for d in result.exits] == [RiskEventType.LEG_SL, RiskEventType.LEG_TP]
    result = evaluate_run(rules, 1, [straddle(1, 65, "140", "60")], None)  # −2600 + 2600 = 0 … no max loss
    assert [d.decision.event_type for d in result.exits] == [RiskEventType.LEG_SL, RiskEventType.LEG_TP]
    result = evaluate_run(rules, 1, [straddle(1, 65, "160", "60")], None)  # −3900 + 2600 = −1300
    assert [(d.decision.event_type, d.legs_to_close) for d in result.exits] == [
        (RiskEventType.MAX_LOSS, (LegToClose(1, 1),)),  # the losing CE
        (RiskEventType.LEG_TP, (LegToClose(1, 2),)),  # the PE target, not covered by the partial exit
    ]


def test_closed_leg_has_no_leg_rule_and_a_flat_account_is_not_evaluated():
    closed_ce = LegPosition(1, Action.SELL, [(65, D("100"))], [(65, D("130"))])  # −1950 realized
    flat = AccountPosition(1, 65, [closed_ce])
    rules = settings(max_loss=D("650"), leg_rules=(LegRiskRule(1, stop_loss=(PCT, D("30"))),))
    result = evaluate_run(rules, 1, [flat], None)
    assert result.exits == ()
    assert result.combined_pnl == D("-1950")


def test_combined_counts_a_flat_accounts_realized_pnl_and_closes_the_open_ones():
    flat = AccountPosition(1, 65, [LegPosition(1, Action.SELL, [(65, D("100"))], [(65, D("110"))])])  # −650
    rules = settings(RiskScope.COMBINED, max_loss=D("650"))  # Σ thresholds 1300
    (decision,) = evaluate_run(rules, 1, [flat, straddle(2, 65, "110", "100")], None).exits  # −1300
    assert decision.account_ids == (2,)
    assert decision.decision.threshold == D("-1300.00")


def test_unreliable_prices_hold_every_rule_and_keep_the_state():
    rules = settings(max_loss=D("650"), trailing_type=TrailingType.AMOUNT, trailing_value=D("100"))
    armed = evaluate_run(rules, 1, [straddle(1, 65, "99", "99")], None)
    now = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)
    prices = assess_prices({"CE": check_price(0, now, now), "PE": check_price(D("200"), now, now)})
    assert prices.problems[0][1].problem is PriceProblem.NOT_POSITIVE
    flat_prices = [AccountPosition(1, 65, [sell(1, 65, "100", "200"), sell(2, 65, "100", "200")])]
    result = evaluate_run(rules, 1, flat_prices, armed.state, prices)
    assert (result.held, result.exits, result.alerts, result.account_pnls, result.combined_pnl) == \
        (True, (), (), (), None)
    assert result.hold_reason == "CE: zero or negative price"
    assert result.state is armed.state


def test_new_run_starts_with_a_fresh_state():
    rules = settings(max_loss=D("650"), trailing_type=TrailingType.AMOUNT, trailing_value=D("100"))
    run1 = evaluate_run(rules, 1, [straddle(1, 65, "90", "100")], None)  # +650: armed, stop 550
    run1 = evaluate_run(rules, 1, [straddle(1, 65, "110", "100")], run1.state)  # −650: max loss
    assert run1.state.trailing_for(1) == TrailingState(True, D("650"), D("550"))
    assert [d.new for d in run1.exits] == [True]
    assert initial_state(2).trailing_for(1) == UNARMED
    run2 = evaluate_run(rules, 2, [straddle(1, 65, "99", "100")], run1.state)  # +65 in the new run
    assert run2.state.run_id == 2
    assert run2.state.trailing_for(1) == TrailingState(True, D("65"), D("-35"))
    assert run2.exits == ()
    run2 = evaluate_run(rules, 2, [straddle(1, 65, "110", "100")], run2.state)
    assert [(d.decision.event_type, d.new) for d in run2.exits] == [(RiskEventType.MAX_LOSS, True)]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        settings(trailing_type=TrailingType.AMOUNT)
    with pytest.raises(ValueError):
        settings(trailing_value=D("5"))
    with pytest.raises(ValueError):
        settings(trailing_type=TrailingType.PERCENTAGE, trailing_value=D("100.5"))
    with pytest.raises(ValueError):
        settings(max_loss=D("0"))
    with pytest.raises(ValueError):
        RunRiskSettings(RiskScope.PER_ACCOUNT, base_quantity_per_leg=0)
    with pytest.raises(ValueError):
        evaluate_run(settings(), 1, [straddle(1, 65, "1", "1"), straddle(1, 65, "1", "1")], None)
