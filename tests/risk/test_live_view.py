"""The run page's live view of the monitor (StrategyRun.risk_state["live"]): exact values, in memory.

The lines a trader watches must be the lines that fire: the max loss and profit of a combined unit
are the sum of each account's rounded threshold, as the rules evaluate them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

from app.domain.instruments import Action
from app.domain.price_guard import check_price
from app.domain.risk_rules import AccountPosition, LegRiskRule, RunRiskSettings, evaluate_run
from app.domain.risk_settings import RiskScope
from app.domain.strategy_settings import LegRiskUnit, TrailingType
from app.services.risk.book import AccountBook, LegInfo, RunBook
from app.services.risk.live import live_view

NOW = datetime(2026, 1, 5, 5, 0, tzinfo=UTC)
SHORT_CE = ("NIFTY05JAN2624000CE", "NFO")
LONG_PE = ("NIFTY05JAN2623000PE", "NFO")
LEGS = (LegInfo(1, *SHORT_CE, Action.SELL, 65), LegInfo(2, *LONG_PE, Action.BUY, 65))


def _book(scope: RiskScope) -> RunBook:
    settings = RunRiskSettings(
        scope=scope, base_quantity_per_leg=195, max_loss=D("1000"), max_profit=D("1000"),
        trailing_type=TrailingType.AMOUNT, trailing_value=D("300"),
        leg_rules=(LegRiskRule(1, stop_loss=(LegRiskUnit.POINTS, D("20")), target=(LegRiskUnit.PERCENTAGE, D("50"))),))
    parts = tuple(AccountBook(10 + n, n, f"acct {n}", "open", 65, {1: ((65, D("100")),), 2: ((65, D("50")),)}, {})
                  for n in (1, 2))  # each account a third of the base size
    return RunBook(run_id=1, user_id=1, strategy_id=1, strategy_name="condor", status="open",
                   trading_day=date(2026, 1, 5), legs=LEGS, accounts=parts, settings=settings, supertrend=None,
                   state={})


def _view(book: RunBook, short_ltp: str, state=None):
    checks = {SHORT_CE: check_price(D(short_ltp), NOW - timedelta(seconds=2.5), NOW),
              LONG_PE: check_price(D("50"), NOW - timedelta(seconds=40), NOW, timedelta(seconds=60))}
    prices = {key: check.price for key, check in checks.items()}
    positions = [AccountPosition(a.account_id, a.quantity_per_leg, a.positions(book.legs, prices))
                 for a in book.accounts]
    result = evaluate_run(book.settings, book.run_id, positions, state)
    return result, live_view(book, result, checks, NOW)


def test_a_combined_unit_shows_the_sum_of_each_accounts_rounded_thresholds_and_its_trailing_stop():
    result, view = _view(_book(RiskScope.COMBINED), "99")  # each account +₹65 on the short, 0 on the hedge
    [unit] = view["units"]
    # ₹1,000 at a third of the base size is ₹333.33 per account: the combined line is −₹666.66
    # (not −₹666.67, which two thirds of ₹1,000 would round to); the trailing amount ₹300 → ₹200.
    assert unit == {"name": "Combined", "pnl": "130.00", "max_loss": "-666.66", "max_profit": "666.66",
                    "trailing": {"armed": True, "peak": "130.00", "stop": "-70.00"}}
    assert view["combined_pnl"] == "130.00" and view["reliable"] is True and result.exits == ()


def test_the_shown_max_loss_line_is_the_threshold_that_fires():
    book = _book(RiskScope.COMBINED)
    result, view = _view(book, "106")  # −₹6 × 130 = −₹780
    [exit_] = result.exits
    assert exit_.decision.event_type == "max_loss" and exit_.decision.threshold == D("-666.66")
    assert view["units"][0]["max_loss"] == format(exit_.decision.threshold, "f")


def test_per_account_units_leg_stops_and_targets_and_the_prices_age():
    first, _ = _view(_book(RiskScope.PER_ACCOUNT), "95")  # peak +₹325 per account
    _, view = _view(_book(RiskScope.PER_ACCOUNT), "99", first.state)  # back to +₹65: the stop is not lowered
    assert [(u["name"], u["pnl"], u["max_loss"], u["max_profit"], u["trailing"]) for u in view["units"]] == [
        ("acct 1", "65.00", "-333.33", "333.33", {"armed": True, "peak": "325.00", "stop": "225.00"}),
        ("acct 2", "65.00", "-333.33", "333.33", {"armed": True, "peak": "325.00", "stop": "225.00"})]
    # The short's stop 20 points above its entry of 100, its target 50% below; the hedge has no rule.
    assert view["legs"] == [
        {"account": f"acct {n}", "leg": 1, "entry": "100.00", "ltp": "99.00", "stop": "120.00", "target": "50.00"}
        for n in (1, 2)]
    assert [(p["symbol"], p["ltp"], p["age_s"], p["usable"]) for p in view["prices"]] == [
        ("NIFTY05JAN2623000PE", "50.00", 40.0, True), ("NIFTY05JAN2624000CE", "99.00", 2.5, True)]


def test_held_rules_show_the_reason_and_no_units():
    book = _book(RiskScope.COMBINED)
    checks = {SHORT_CE: check_price(D("0"), NOW, NOW), LONG_PE: check_price(D("50"), NOW, NOW)}
    view = live_view(book, None, checks, NOW, "NFO:NIFTY05JAN2624000CE: price 0 is not positive")
    assert view["reliable"] is False and view["units"] == [] and view["combined_pnl"] is None
    assert view["reason"].startswith("NFO:NIFTY05JAN2624000CE") and view["prices"][1]["usable"] is False
