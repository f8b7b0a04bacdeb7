"""Risk settings in the builder: the scope and one breach action per rule are offered, saved and
shown again; every bad risk input is an error beside its field and nothing is saved."""

from __future__ import annotations

import re
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select

from app.domain.risk_settings import RiskAction, RiskEventType, RiskScope
from app.extensions import db
from app.models import Strategy
from tests.support.strategies import body, form_fields, send

ACTION_FIELDS = ("max_loss_action", "max_profit_action", "trailing_action", "supertrend_action")


def _post_builder(client, data: dict, url: str = "/strategy/builder"):
    return client.post(url, data=form_fields(data, client.token("/strategy/builder")))


def _field_error(html: str, name: str) -> str | None:
    match = re.search(rf'data-field-error="{re.escape(name)}"[^>]*>([^<]*)<', html)
    return match.group(1).strip() if match else None


def _selected(html: str, name: str) -> str | None:
    select_html = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', html, re.DOTALL)
    assert select_html is not None, name
    option = re.search(r'<option selected value="([^"]*)"|<option value="([^"]*)" selected', select_html.group(1))
    return next((g for g in option.groups() if g is not None), None) if option else None


def _count() -> int:
    return db.session.scalar(select(func.count()).select_from(Strategy))


def test_builder_offers_scope_and_an_action_per_rule_with_defaults(trader_client):
    html = trader_client.get("/strategy/builder").get_data(as_text=True)

    assert _selected(html, "risk_scope") == "per_account"
    for name in ACTION_FIELDS:
        assert _selected(html, name) == "close_all", name
        assert all(f'value="{a.value}"' in html for a in RiskAction)


def test_builder_saves_scope_and_actions_and_shows_them_again(trader_client):
    data = body(max_loss="5000", max_profit="8000", trailing_type="amount", trailing_value="1500",
                supertrend_enabled=True, risk_scope="combined", max_loss_action="close_partial",
                max_profit_action="alert_only", trailing_action="close_partial", supertrend_action="alert_only")

    response = _post_builder(trader_client, data)

    assert response.status_code == 302
    strategy = db.session.scalar(select(Strategy))
    assert strategy.scope() is RiskScope.COMBINED
    assert [strategy.breach_action(rule) for rule in (RiskEventType.MAX_LOSS, RiskEventType.MAX_PROFIT,
                                                     RiskEventType.TRAILING_SL, RiskEventType.SUPERTREND)] == [
        RiskAction.CLOSE_PARTIAL, RiskAction.ALERT_ONLY, RiskAction.CLOSE_PARTIAL, RiskAction.ALERT_ONLY]
    page = trader_client.get(f"/strategy/{strategy.id}").get_data(as_text=True)
    assert _selected(page, "risk_scope") == "combined"
    assert [_selected(page, name) for name in ACTION_FIELDS] == [
        "close_partial", "alert_only", "close_partial", "alert_only"]


def test_json_api_round_trips_the_risk_settings_and_defaults_them(trader_client):
    created = send(trader_client, "POST", "/api/strategies",
                   body(risk_scope="combined", trailing_action="alert_only")).get_json()

    assert (created["risk_scope"], created["trailing_action"], created["max_loss_action"],
            created["max_profit_action"], created["supertrend_action"]) == (
        "combined", "alert_only", "close_all", "close_all", "close_all")


@pytest.mark.parametrize("rule", [RiskEventType.LEG_SL, RiskEventType.LEG_TP, RiskEventType.ACCOUNT_LOSS_LIMIT])
def test_rules_without_a_chosen_action_have_no_breach_action(rule):
    with pytest.raises(KeyError):
        Strategy(max_loss_action="alert_only").breach_action(rule)


@pytest.mark.parametrize(("change", "name", "message"), [
    ({"max_loss": "0"}, "max_loss", "Must be greater than 0."),
    ({"max_loss": "-100"}, "max_loss", "Must be greater than 0."),
    ({"max_profit": "0"}, "max_profit", "Must be greater than 0."),
    ({"max_profit": "-0.01"}, "max_profit", "Must be greater than 0."),
    ({"trailing_type": "amount", "trailing_value": "0"}, "trailing_value", "Must be greater than 0."),
    ({"trailing_type": "points", "trailing_value": "-5"}, "trailing_value", "Must be greater than 0."),
    ({"trailing_type": "amount"}, "trailing_value", "Enter the trailing distance."),
    ({"trailing_value": "20"}, "trailing_type", "Choose the trailing stop type (amount, percentage or points)."),
    ({"trailing_type": "percentage", "trailing_value": "100.5"}, "trailing_value",
     "A percentage must be at most 100."),
    ({"trailing_type": "sideways", "trailing_value": "20"}, "trailing_type", "Not a valid choice."),
    ({"supertrend_period": "1"}, "supertrend_period", "Use a period from 2 to 100."),
    ({"supertrend_period": "0"}, "supertrend_period", "Use a period from 2 to 100."),
    ({"supertrend_multiplier": "0"}, "supertrend_multiplier", "Must be greater than 0."),
    ({"supertrend_multiplier": "-1.5"}, "supertrend_multiplier", "Must be greater than 0."),
    ({"supertrend_timeframe": "2m"}, "supertrend_timeframe", "Not a valid choice."),
    ({"supertrend_timeframe": "1d"}, "supertrend_timeframe", "Not a valid choice."),
    ({"risk_scope": "global"}, "risk_scope", "Not a valid choice."),
    ({"max_loss_action": "close_some"}, "max_loss_action", "Not a valid choice."),
    ({"max_profit_action": "held"}, "max_profit_action", "Not a valid choice."),  # an event's action, not a rule's
    ({"trailing_action": ""}, "trailing_action", "Not a valid choice."),
    ({"supertrend_action": "none"}, "supertrend_action", "Not a valid choice."),
])
def test_bad_risk_input_is_a_field_error_and_nothing_is_saved(trader_client, change, name, message):
    response = _post_builder(trader_client, body(**change))

    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert _field_error(html, name) == message
    assert _count() == 0


def test_bad_risk_input_on_edit_leaves_the_stored_strategy_unchanged(trader_client):
    created = send(trader_client, "POST", "/api/strategies", body(max_loss="4000", risk_scope="combined")).get_json()

    response = _post_builder(trader_client, body(max_loss="0", risk_scope="per_account"),
                             url=f"/strategy/{created['id']}")

    assert response.status_code == 400
    stored = trader_client.get(f"/api/strategies/{created['id']}").get_json()
    assert (stored["max_loss"], stored["risk_scope"]) == ("4000", "combined")


def test_json_api_reports_bad_risk_input_by_field(trader_client):
    response = send(trader_client, "POST", "/api/strategies",
                    body(trailing_value="20", max_loss_action="sell_everything"))

    assert response.status_code == 400
    errors = response.get_json()["fields"]
    assert errors["trailing_type"] == "Choose the trailing stop type (amount, percentage or points)."
    assert errors["max_loss_action"] == "Not a valid choice."
    assert _count() == 0


@pytest.mark.parametrize("trailing_type, value", [("amount", "1500"), ("percentage", "40"), ("points", "12.5")])
def test_the_builders_rules_reach_a_run_exactly_as_entered(trader_client, trailing_type, value):
    """Builder form → Strategy → the run's snapshot (what the planner stores) → the rules the
    monitor evaluates: every trailing type, the scope, the actions and each leg's stop and target."""
    from app.domain.risk_rules import LegRiskRule, RunRiskSettings
    from app.domain.strategy_settings import LegRiskUnit, SupertrendExit, SupertrendTimeframe, TrailingType
    from app.services.risk.snapshot import run_settings, snapshot, supertrend_settings
    from tests.support.strategies import leg

    data = body(max_loss="5000", max_profit="8000", trailing_type=trailing_type, trailing_value=value,
                risk_scope="combined", max_loss_action="close_partial", trailing_action="alert_only",
                supertrend_enabled=True, supertrend_period="10", supertrend_multiplier="2.5",
                supertrend_timeframe="15m", supertrend_exit="breakdown",
                legs=[leg(stop_loss_unit="points", stop_loss_value="20", target_unit="percentage", target_value="50"),
                      leg(option_type="PE", strike_offset=3)])

    assert _post_builder(trader_client, data).status_code == 302
    stored = snapshot(db.session.scalar(select(Strategy)))

    assert run_settings(stored, 65) == RunRiskSettings(
        scope=RiskScope.COMBINED, base_quantity_per_leg=65,
        max_loss=D("5000"), max_loss_action=RiskAction.CLOSE_PARTIAL,
        max_profit=D("8000"), max_profit_action=RiskAction.CLOSE_ALL,
        trailing_type=TrailingType(trailing_type), trailing_value=D(value), trailing_action=RiskAction.ALERT_ONLY,
        leg_rules=(LegRiskRule(1, (LegRiskUnit.POINTS, D("20")), (LegRiskUnit.PERCENTAGE, D("50"))),))
    supertrend = supertrend_settings(stored)
    assert (supertrend.period, supertrend.multiplier, supertrend.timeframe, supertrend.exit, supertrend.action) == (
        10, D("2.5"), SupertrendTimeframe("15m"), SupertrendExit("breakdown"), RiskAction.CLOSE_ALL)
