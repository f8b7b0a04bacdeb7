"""Builder pages: plain form posts with indexed leg names, field errors beside their fields,
nothing saved when invalid, owner-only access."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Strategy, StrategyAccount, StrategyLeg
from tests.helpers import Browserless, make_user
from tests.support.strategies import add_account, body, form_fields, leg, send


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _post_builder(client, data: dict, url: str = "/strategy/builder"):
    return client.post(url, data=form_fields(data, client.token("/strategy/builder")))


def _field_error(html: str, name: str) -> str | None:
    match = re.search(rf'data-field-error="{re.escape(name)}"[^>]*>([^<]*)<', html)
    return match.group(1).strip() if match else None


def test_builder_page_renders_one_blank_leg_and_the_users_accounts(app, trader, trader_client):
    add_account(app, trader.id, "Main")

    response = trader_client.get("/strategy/builder")

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'name="legs-0-lots"' in html and 'name="legs-1-lots"' not in html
    assert 'name="legs-__index__-lots"' in html  # the blank leg the script clones
    assert 'data-account-row="Main"' in html
    assert "a run keeps the settings it was entered with, so a change here applies to the next run" in html
    assert "<script>" not in html.replace("<script nonce=", "")  # only src scripts besides the nonce one


def test_builder_post_valid_form_saves_strategy_legs_and_accounts(app, trader, trader_client):
    account_id = add_account(app, trader.id, "Main")
    data = body(accounts=[{"account_id": account_id, "lot_multiplier": "3", "capital_cap": "200000"}])

    response = _post_builder(trader_client, data)

    assert response.status_code == 302
    strategy = db.session.scalar(select(Strategy))
    assert response.headers["Location"].endswith(f"/strategy/{strategy.id}")
    assert strategy.name == "Test strangle" and strategy.user_id == trader.id
    assert [(x.position, x.option_type, x.strike_offset) for x in strategy.legs] == [(0, "CE", 2), (1, "PE", 3)]
    row = db.session.scalar(select(StrategyAccount))
    assert (row.account_id, str(row.lot_multiplier), str(row.capital_cap)) == (account_id, "3.00", "200000.00")


def test_builder_post_legs_with_gaps_in_indexes_keeps_their_order(trader_client):
    data = body(legs=[])
    fields = form_fields(data, trader_client.token("/strategy/builder"))
    for index, offset in ((3, 4), (7, 1)):  # a browser without the script, after removing legs
        fields.update({f"legs-{index}-{k}": str(v) for k, v in leg(strike_offset=offset).items()})

    response = trader_client.post("/strategy/builder", data=fields)

    assert response.status_code == 302
    assert [(x.position, x.strike_offset) for x in db.session.scalar(select(Strategy)).legs] == [(0, 4), (1, 1)]


@pytest.mark.parametrize(("change", "name", "message"), [
    ({"legs": []}, "legs", "Add at least one leg."),
    ({"legs": [leg()] * 21}, "legs", "A strategy has at most 20 legs; remove 1."),
    ({"legs": [leg(), leg(lots="1.5")]}, "legs-1-lots", "Use a whole number of lots from 1 to 1000."),
    ({"legs": [leg(lots=0)]}, "legs-0-lots", "Use a whole number of lots from 1 to 1000."),
    ({"legs": [leg(), leg(), leg(strike_offset=25)]}, "legs-2-strike_offset", "Choose an offset from 1 to 20."),
    ({"legs": [leg(strike_method="premium_near", target_premium="0")]}, "legs-0-target_premium",
     "Enter a target premium greater than 0."),
    ({"entry_time": "08:00"}, "entry_time", "Choose a time within market hours (09:15–15:30 IST)."),
    ({"entry_time": "14:00", "exit_time": "13:00"}, "exit_time", "The exit time must be after the entry time."),
    ({"exit_time": "15:20", "square_off_time": "15:00"}, "square_off_time",
     "The square-off time must be at or after the exit time."),
])
def test_builder_post_invalid_shows_error_beside_field_and_saves_nothing(trader_client, change, name, message):
    response = _post_builder(trader_client, body(**change))

    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert _field_error(html, name) == message
    assert 'value="Test strangle"' in html  # the rest of the form is kept
    assert _count(Strategy) == 0 and _count(StrategyLeg) == 0


def test_builder_post_bad_account_rows_show_errors_beside_them(app, trader, trader_client):
    own = add_account(app, trader.id, "Main")
    carol = make_user(app, "carol")
    foreign = add_account(app, carol.id, "Carol main")
    data = body(accounts=[{"account_id": own, "lot_multiplier": "0", "capital_cap": "-5"},
                          {"account_id": foreign, "lot_multiplier": "1"}])

    response = _post_builder(trader_client, data)

    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert _field_error(html, "accounts-0-lot_multiplier") == "Must be greater than 0."
    assert _field_error(html, "accounts-0-capital_cap") == "Must be 0 or more."
    assert _field_error(html, "accounts-1-account_id") == "Choose one of your own accounts."
    assert _count(Strategy) == 0


def test_builder_post_without_csrf_token_is_refused(trader_client):
    fields = form_fields(body(), "")
    del fields["csrf_token"]

    response = trader_client.post("/strategy/builder", data=fields)

    assert response.status_code == 400
    assert _count(Strategy) == 0


def test_edit_page_shows_stored_legs_and_saves_a_reorder(trader_client):
    created = send(trader_client, "POST", "/api/strategies", body()).get_json()
    page = trader_client.get(f"/strategy/{created['id']}").get_data(as_text=True)
    assert re.search(r'<input[^>]*name="legs-1-strike_offset"[^>]*value="3"', page)

    reordered = body(legs=[leg(option_type="PE", strike_offset=3), leg()])
    response = _post_builder(trader_client, reordered, url=f"/strategy/{created['id']}")

    assert response.status_code == 302
    legs = trader_client.get(f"/api/strategies/{created['id']}").get_json()["legs"]
    assert [(x["position"], x["option_type"], x["strike_offset"]) for x in legs] == [(0, "PE", 3), (1, "CE", 2)]


def test_list_page_shows_own_strategies_only(app, trader_client):
    make_user(app, "carol")
    carol = Browserless(app.test_client())
    carol.login("carol")
    send(carol, "POST", "/api/strategies", body(name="Carol secret"))
    send(trader_client, "POST", "/api/strategies", body(name="Bob plan"))

    html = trader_client.get("/strategy").get_data(as_text=True)

    assert 'data-strategy="Bob plan"' in html and "Carol secret" not in html


def test_another_users_strategy_pages_are_404(app, trader_client):
    make_user(app, "carol")
    carol = Browserless(app.test_client())
    carol.login("carol")
    strategy_id = send(carol, "POST", "/api/strategies", body(name="Carol's")).get_json()["id"]
    token = trader_client.token("/strategy")

    assert trader_client.get(f"/strategy/{strategy_id}").status_code == 404
    assert trader_client.post(f"/strategy/{strategy_id}", data=form_fields(body(), token)).status_code == 404
    assert trader_client.post(f"/strategy/{strategy_id}/delete", data={"csrf_token": token}).status_code == 404
    assert trader_client.post(f"/strategy/{strategy_id}/template",
                              data={"csrf_token": token, "name": "Mine now"}).status_code == 404
    assert carol.get(f"/api/strategies/{strategy_id}").get_json()["name"] == "Carol's"


def test_delete_strategy_page_post_removes_it(trader_client):
    strategy_id = send(trader_client, "POST", "/api/strategies", body()).get_json()["id"]

    response = trader_client.post(f"/strategy/{strategy_id}/delete",
                                  data={"csrf_token": trader_client.token("/strategy")})

    assert response.status_code == 302
    assert _count(Strategy) == 0 and _count(StrategyLeg) == 0


def test_strategy_pages_require_sign_in(client):
    assert client.get("/strategy").status_code == 302
    assert client.get("/strategy/builder").status_code == 302


def test_every_strategy_and_template_route_refuses_another_users_ids(app, trader_client):
    make_user(app, "carol")
    carol = Browserless(app.test_client())
    carol.login("carol")
    strategy_id = send(carol, "POST", "/api/strategies", body(name="Carol's")).get_json()["id"]
    saved = send(carol, "POST", "/api/templates", {"strategy_id": strategy_id, "name": "Carol's"})
    template_id = saved.get_json()["id"]
    ids = {"strategy_id": strategy_id, "template_id": template_id}
    routes = [(method, rule) for rule in app.url_map.iter_rules()
              if set(rule.arguments) & set(ids) and rule.endpoint.startswith(("strategy.", "api."))
              for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})]
    assert len(routes) >= 12
    token = trader_client.token("/strategy")

    for method, rule in routes:
        url = rule.build({name: ids[name] for name in rule.arguments})[1]
        if url.startswith("/api/"):
            response = trader_client.open(url, method=method, json=None if method in ("GET", "DELETE") else body(),
                                          headers={"X-CSRFToken": token})
        elif method == "GET":
            response = trader_client.get(url)
        else:
            response = trader_client.open(url, method=method, data={**form_fields(body(), token), "name": "Mine"})
        assert response.status_code == 404, (method, url, response.status_code)

    assert carol.get(f"/api/strategies/{strategy_id}").get_json()["name"] == "Carol's"
    assert [t["name"] for t in carol.get("/api/templates").get_json()["templates"] if not t["builtin"]] == ["Carol's"]
