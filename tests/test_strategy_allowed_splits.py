"""A strategy's allowed splits (1–20, default 5): validated by the builder's form and the JSON
API alike, returned by GET, kept by templates (old template JSON without it gets the default)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Strategy, StrategyTemplate
from tests.support.strategies import body, form_fields, send

SPLITS_ERROR = "Use a whole number of child orders from 1 to 20."


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _field_error(html: str, name: str) -> str | None:
    match = re.search(rf'data-field-error="{re.escape(name)}"[^>]*>([^<]*)<', html)
    return match.group(1).strip() if match else None


@pytest.mark.parametrize("splits", [0, 21, 1.5, "1.5", -1, True])
def test_create_strategy_allowed_splits_outside_1_to_20_is_a_field_error_and_saves_nothing(
        app, trader_client, splits):
    response = send(trader_client, "POST", "/api/strategies", body(allowed_splits=splits))

    assert response.status_code == 400
    assert response.get_json()["fields"] == {"allowed_splits": SPLITS_ERROR}
    with app.app_context():
        assert _count(Strategy) == 0


def test_create_strategy_blank_allowed_splits_asks_for_it(app, trader_client):
    response = send(trader_client, "POST", "/api/strategies", body(allowed_splits=None))

    assert response.status_code == 400
    assert response.get_json()["fields"] == {"allowed_splits": "Enter the allowed splits."}


@pytest.mark.parametrize(("splits", "stored"), [(10, 10), ("10", 10), (1, 1), (20, 20)])
def test_create_strategy_allowed_splits_in_range_is_stored_and_returned(app, trader_client, splits, stored):
    created = send(trader_client, "POST", "/api/strategies", body(allowed_splits=splits))

    assert created.status_code == 201, created.get_json()
    strategy_id = created.get_json()["id"]
    assert created.get_json()["allowed_splits"] == stored
    assert trader_client.get(f"/api/strategies/{strategy_id}").get_json()["allowed_splits"] == stored
    with app.app_context():
        assert db.session.get(Strategy, strategy_id).allowed_splits == stored


def test_create_strategy_without_allowed_splits_gets_the_default_5(app, trader_client):
    payload = body()
    payload.pop("allowed_splits", None)

    created = send(trader_client, "POST", "/api/strategies", payload)

    assert created.status_code == 201
    assert created.get_json()["allowed_splits"] == 5


def test_api_round_trip_put_and_patch_keep_and_change_allowed_splits(trader_client):
    strategy_id = send(trader_client, "POST", "/api/strategies", body(allowed_splits=3)).get_json()["id"]
    got = trader_client.get(f"/api/strategies/{strategy_id}").get_json()

    put = send(trader_client, "PUT", f"/api/strategies/{strategy_id}",
               {k: v for k, v in got.items() if k not in ("id", "created_at", "updated_at")})
    patched = send(trader_client, "PATCH", f"/api/strategies/{strategy_id}", {"allowed_splits": 12})
    refused = send(trader_client, "PATCH", f"/api/strategies/{strategy_id}", {"allowed_splits": 21})

    assert put.status_code == 200 and put.get_json()["allowed_splits"] == 3
    assert patched.status_code == 200 and patched.get_json()["allowed_splits"] == 12
    assert refused.status_code == 400 and refused.get_json()["fields"] == {"allowed_splits": SPLITS_ERROR}
    assert trader_client.get(f"/api/strategies/{strategy_id}").get_json()["allowed_splits"] == 12


@pytest.mark.parametrize("splits", ["0", "21", "1.5"])
def test_builder_post_bad_allowed_splits_shows_the_field_error_and_saves_nothing(app, trader_client, splits):
    data = form_fields(body(allowed_splits=splits), trader_client.token("/strategy/builder"))

    response = trader_client.post("/strategy/builder", data=data)

    assert response.status_code == 400
    assert _field_error(response.get_data(as_text=True), "allowed_splits") == SPLITS_ERROR
    with app.app_context():
        assert _count(Strategy) == 0


def test_builder_post_allowed_splits_10_is_saved_and_shown_on_the_edit_page(app, trader_client):
    data = form_fields(body(allowed_splits="10"), trader_client.token("/strategy/builder"))

    response = trader_client.post("/strategy/builder", data=data)

    assert response.status_code == 302
    with app.app_context():
        strategy = db.session.scalars(select(Strategy)).one()
        assert strategy.allowed_splits == 10
        strategy_id = strategy.id
    page = trader_client.get(f"/strategy/{strategy_id}").get_data(as_text=True)
    assert re.search(r'<input[^>]*name="allowed_splits"[^>]*value="10"', page) or \
        re.search(r'<input[^>]*value="10"[^>]*name="allowed_splits"', page)


def test_builder_page_offers_allowed_splits_with_default_5(trader_client):
    page = trader_client.get("/strategy/builder").get_data(as_text=True)

    assert re.search(r'<input[^>]*name="allowed_splits"[^>]*value="5"', page) or \
        re.search(r'<input[^>]*value="5"[^>]*name="allowed_splits"', page)


def test_save_as_template_keeps_allowed_splits_and_instantiate_restores_it(trader_client):
    strategy_id = send(trader_client, "POST", "/api/strategies", body(allowed_splits=7)).get_json()["id"]

    saved = send(trader_client, "POST", "/api/templates", {"strategy_id": strategy_id, "name": "Seven splits"})
    made = send(trader_client, "POST", f"/api/templates/{saved.get_json()['id']}/instantiate", {"name": "Copy"})

    assert saved.status_code == 201 and saved.get_json()["spec"]["allowed_splits"] == 7
    assert made.status_code == 201 and made.get_json()["allowed_splits"] == 7


def test_template_json_from_before_allowed_splits_gets_the_default(app, trader_client):
    strategy_id = send(trader_client, "POST", "/api/strategies", body(allowed_splits=9)).get_json()["id"]
    template_id = send(trader_client, "POST", "/api/templates",
                       {"strategy_id": strategy_id, "name": "Old"}).get_json()["id"]
    with app.app_context():  # as stored before the setting existed
        template = db.session.get(StrategyTemplate, template_id)
        template.spec = {k: v for k, v in template.spec.items() if k != "allowed_splits"}
        db.session.commit()

    listed = trader_client.get(f"/api/templates/{template_id}").get_json()
    made = send(trader_client, "POST", f"/api/templates/{template_id}/instantiate", {"name": "From old"})
    page = trader_client.get(f"/strategy/builder?template={template_id}")

    assert listed["spec"]["allowed_splits"] == 5
    assert made.status_code == 201 and made.get_json()["allowed_splits"] == 5
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert re.search(r'<input[^>]*name="allowed_splits"[^>]*value="5"', html) or \
        re.search(r'<input[^>]*value="5"[^>]*name="allowed_splits"', html)


def test_builtin_templates_instantiate_with_the_default_allowed_splits(trader_client):
    templates = trader_client.get("/api/templates").get_json()["templates"]
    condor = next(t for t in templates if t["name"] == "Iron condor")

    made = send(trader_client, "POST", f"/api/templates/{condor['id']}/instantiate", {})

    assert condor["spec"]["allowed_splits"] == 5
    assert made.status_code == 201 and made.get_json()["allowed_splits"] == 5
