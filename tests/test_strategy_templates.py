"""Templates: built-in ones for everyone (read-only), saving a strategy as a template (names
unique per user), creating strategies from templates, ownership."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Strategy, StrategyTemplate
from tests.helpers import Browserless, make_user
from tests.support.strategies import add_account, body, send

BUILTIN = ["Bear put spread", "Bull call spread", "Iron butterfly", "Iron condor", "Long straddle",
           "Short straddle", "Short strangle"]


def _templates(client) -> dict[str, dict]:
    return {t["name"]: t for t in client.get("/api/templates").get_json()["templates"]}


def _carol(app) -> Browserless:
    make_user(app, "carol")
    carol = Browserless(app.test_client())
    carol.login("carol")
    return carol


def test_builtin_templates_are_listed_for_every_user(app, trader_client):
    carol = _carol(app)

    for client in (trader_client, carol):
        templates = _templates(client)
        assert sorted(templates) == BUILTIN
        assert all(t["builtin"] for t in templates.values())


def test_iron_condor_template_has_hedged_otm_legs(trader_client):
    legs = _templates(trader_client)["Iron condor"]["spec"]["legs"]

    assert [(x["action"], x["option_type"], x["strike_method"], x["strike_offset"]) for x in legs] == [
        ("SELL", "CE", "otm", 2), ("BUY", "CE", "otm", 6), ("SELL", "PE", "otm", 2), ("BUY", "PE", "otm", 6)]


@pytest.mark.parametrize("name", BUILTIN)
def test_instantiate_each_builtin_template_creates_a_valid_strategy(trader_client, name):
    template = _templates(trader_client)[name]

    response = send(trader_client, "POST", f"/api/templates/{template['id']}/instantiate", {})

    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["name"] == name
    assert [(x["action"], x["option_type"], x["strike_method"], x["strike_offset"]) for x in created["legs"]] == [
        (x["action"], x["option_type"], x["strike_method"], x.get("strike_offset")) for x in template["spec"]["legs"]]
    assert (created["entry_time"], created["exit_time"], created["square_off_time"]) == ("09:20", "15:00", "15:15")


def test_instantiate_with_name_and_accounts(app, trader, trader_client):
    account_id = add_account(app, trader.id, "Main")
    template_id = _templates(trader_client)["Short straddle"]["id"]

    response = send(trader_client, "POST", f"/api/templates/{template_id}/instantiate",
                    {"name": "Weekly straddle", "accounts": [{"account_id": account_id, "lot_multiplier": 2}]})

    assert response.status_code == 201
    created = response.get_json()
    assert created["name"] == "Weekly straddle"
    assert created["accounts"] == [{"account_id": account_id, "lot_multiplier": "2", "capital_cap": None}]


def test_instantiate_with_another_users_account_is_refused(app, trader_client):
    carol = make_user(app, "carol")
    foreign = add_account(app, carol.id, "Carol main")
    template_id = _templates(trader_client)["Short straddle"]["id"]

    response = send(trader_client, "POST", f"/api/templates/{template_id}/instantiate",
                    {"accounts": [{"account_id": foreign}]})

    assert response.status_code == 400
    assert response.get_json()["fields"] == {"accounts.0.account_id": "Choose one of your own accounts."}
    assert db.session.scalar(select(func.count()).select_from(Strategy)) == 0


def test_save_strategy_as_template_keeps_settings_and_legs_not_accounts(app, trader, trader_client):
    account_id = add_account(app, trader.id, "Main")
    created = send(trader_client, "POST", "/api/strategies",
                   body(accounts=[{"account_id": account_id}], max_loss="4000")).get_json()

    response = send(trader_client, "POST", "/api/templates", {"strategy_id": created["id"], "name": "My strangle"})

    assert response.status_code == 201, response.get_json()
    saved = response.get_json()
    assert saved["builtin"] is False and saved["name"] == "My strangle"
    assert saved["spec"]["legs"] == created["legs"] and saved["spec"]["max_loss"] == "4000"
    assert "accounts" not in saved["spec"]
    again = send(trader_client, "POST", f"/api/templates/{saved['id']}/instantiate", {"name": "Copy"}).get_json()
    assert again["legs"] == created["legs"] and again["accounts"] == []


@pytest.mark.parametrize("name", ["My strangle", "my STRANGLE", "Iron condor"])
def test_save_template_name_taken_is_a_field_error(trader_client, name):
    strategy_id = send(trader_client, "POST", "/api/strategies", body()).get_json()["id"]
    send(trader_client, "POST", "/api/templates", {"strategy_id": strategy_id, "name": "My strangle"})

    response = send(trader_client, "POST", "/api/templates", {"strategy_id": strategy_id, "name": name})

    assert response.status_code == 400
    assert response.get_json()["fields"] == {"name": "a template with this name already exists"}
    assert db.session.scalar(select(func.count()).select_from(StrategyTemplate).where(
        StrategyTemplate.user_id.is_not(None))) == 1


def test_same_template_name_is_allowed_for_two_users(app, trader_client):
    carol = _carol(app)
    for client in (trader_client, carol):
        strategy_id = send(client, "POST", "/api/strategies", body()).get_json()["id"]
        response = send(client, "POST", "/api/templates", {"strategy_id": strategy_id, "name": "Shared name"})
        assert response.status_code == 201

    assert [t for t in _templates(carol) if not _templates(carol)[t]["builtin"]] == ["Shared name"]


def test_save_template_page_duplicate_name_shows_field_error(trader_client):
    strategy_id = send(trader_client, "POST", "/api/strategies", body()).get_json()["id"]
    token = trader_client.token("/strategy")
    assert trader_client.post(f"/strategy/{strategy_id}/template",
                              data={"csrf_token": token, "name": "Mine"}).status_code == 302

    response = trader_client.post(f"/strategy/{strategy_id}/template", data={"csrf_token": token, "name": "Mine"})

    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert re.search(r'data-field-error="name">a template with this name already exists<', html)


def test_builtin_template_cannot_be_deleted(trader_client):
    template_id = _templates(trader_client)["Iron condor"]["id"]

    api = send(trader_client, "DELETE", f"/api/templates/{template_id}")
    page = trader_client.post(f"/strategy/templates/{template_id}/delete",
                              data={"csrf_token": trader_client.token("/strategy")})

    assert (api.status_code, page.status_code) == (403, 403)
    assert "Iron condor" in _templates(trader_client)


def test_own_template_can_be_deleted(trader_client):
    strategy_id = send(trader_client, "POST", "/api/strategies", body()).get_json()["id"]
    template_id = send(trader_client, "POST", "/api/templates",
                       {"strategy_id": strategy_id, "name": "Temp"}).get_json()["id"]

    response = send(trader_client, "DELETE", f"/api/templates/{template_id}")

    assert response.status_code == 200
    assert "Temp" not in _templates(trader_client)


def test_another_users_template_is_404_everywhere(app, trader_client):
    carol = _carol(app)
    strategy_id = send(carol, "POST", "/api/strategies", body()).get_json()["id"]
    saved = send(carol, "POST", "/api/templates", {"strategy_id": strategy_id, "name": "Carol's"})
    template_id = saved.get_json()["id"]

    assert trader_client.get(f"/api/templates/{template_id}").status_code == 404
    assert send(trader_client, "POST", f"/api/templates/{template_id}/instantiate", {}).status_code == 404
    assert send(trader_client, "DELETE", f"/api/templates/{template_id}").status_code == 404
    assert trader_client.get(f"/strategy/builder?template={template_id}").status_code == 404
    assert trader_client.post(f"/strategy/templates/{template_id}/delete",
                              data={"csrf_token": trader_client.token("/strategy")}).status_code == 404
    assert send(trader_client, "POST", "/api/templates", {"strategy_id": strategy_id, "name": "x"}).status_code == 404
    assert "Carol's" in _templates(carol)


def test_builder_from_template_prefills_its_legs(trader_client):
    template_id = _templates(trader_client)["Iron condor"]["id"]

    html = trader_client.get(f"/strategy/builder?template={template_id}").get_data(as_text=True)

    assert 'value="Iron condor"' in html
    assert 'name="legs-3-strike_offset"' in html and 'name="legs-4-strike_offset"' not in html
    assert re.search(r'<input[^>]*name="legs-1-strike_offset"[^>]*value="6"', html)


@pytest.mark.parametrize("raw", ["abc", "0", "99999999999999999999"])
def test_builder_with_bad_template_id_is_404(trader_client, raw):
    assert trader_client.get(f"/strategy/builder?template={raw}").status_code == 404
