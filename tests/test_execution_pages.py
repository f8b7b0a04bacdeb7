"""Execution pages without a broker: the strategy's execution settings (builder, JSON API, page),
Execute refused while the engine is offline or trading is halted, engine state on the dashboard,
the kill switch's typed confirmation."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import ServiceLease
from app.models.execution import KillSwitch, StrategyRun
from app.services.lease import DEFAULT_LEASE_NAME
from tests.helpers import make_user
from tests.support.strategies import add_account, body, send

DEFAULTS = {"failure_policy": "report", "retry_limit": 2, "resend_not_placed": True, "limit_timeout_seconds": 30,
            "limit_fallback": "cancel", "auto_entry": False}


def _lease(app, *, online: bool = True) -> None:
    now = datetime.now(UTC)
    with app.app_context():
        db.session.add(ServiceLease(name=DEFAULT_LEASE_NAME, holder="web-test:1:x", acquired_at=now, renewed_at=now,
                                    expires_at=now + (timedelta(hours=1) if online else -timedelta(seconds=1))))
        db.session.commit()


def _runs(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(StrategyRun))


def test_create_strategy_without_execution_settings_gets_the_defaults(trader_client):
    created = send(trader_client, "POST", "/api/strategies", body()).get_json()
    assert {key: created[key] for key in DEFAULTS} == DEFAULTS


def test_create_strategy_with_execution_settings_stores_them(trader_client):
    settings = {"failure_policy": "unwind", "retry_limit": 5, "resend_not_placed": False,
                "limit_timeout_seconds": 600, "limit_fallback": "market", "auto_entry": True}
    response = send(trader_client, "POST", "/api/strategies", body(**settings))
    assert response.status_code == 201, response.get_json()
    fetched = trader_client.get(f"/api/strategies/{response.get_json()['id']}").get_json()
    assert {key: fetched[key] for key in settings} == settings


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"retry_limit": 6}, "retry_limit", "Use a whole number of retries from 0 to 5."),
    ({"retry_limit": -1}, "retry_limit", "Use a whole number of retries from 0 to 5."),
    ({"retry_limit": "two"}, "retry_limit", "Use a whole number of retries from 0 to 5."),
    ({"retry_limit": None}, "retry_limit", "Enter the number of retries."),
    ({"limit_timeout_seconds": 0}, "limit_timeout_seconds", "Use a whole number of seconds from 1 to 600."),
    ({"limit_timeout_seconds": 601}, "limit_timeout_seconds", "Use a whole number of seconds from 1 to 600."),
    ({"limit_timeout_seconds": "1.5"}, "limit_timeout_seconds", "Use a whole number of seconds from 1 to 600."),
    ({"failure_policy": "pray"}, "failure_policy", "Not a valid choice."),
    ({"limit_fallback": "wait"}, "limit_fallback", "Not a valid choice."),
])
def test_create_strategy_bad_execution_setting_names_the_field(trader_client, change, field, message):
    response = send(trader_client, "POST", "/api/strategies", body(**change))
    assert response.status_code == 400
    assert response.get_json()["fields"] == {field: message}


def test_patch_strategy_failure_policy_keeps_the_other_settings(trader_client):
    strategy_id = send(trader_client, "POST", "/api/strategies", body(retry_limit=4)).get_json()["id"]
    patched = send(trader_client, "PATCH", f"/api/strategies/{strategy_id}", {"failure_policy": "retry"})
    assert patched.status_code == 200
    assert (patched.get_json()["failure_policy"], patched.get_json()["retry_limit"]) == ("retry", 4)


def test_strategy_page_shows_policy_engine_offline_and_execute_form(app, trader, trader_client):
    account_id = add_account(app, trader.id, "Main")
    strategy_id = send(trader_client, "POST", "/api/strategies",
                       body(failure_policy="retry", retry_limit=3,
                            accounts=[{"account_id": account_id, "lot_multiplier": "1"}])).get_json()["id"]

    page = trader_client.get(f"/strategy/{strategy_id}").get_data(as_text=True)

    assert 'data-policy="failure_policy">retry (up to 3)' in page
    assert "Engine offline" in page
    boxes = re.findall(r'<input[^>]*name="account_ids"[^>]*>', page)
    assert len(boxes) == 1, boxes
    assert f'value="{account_id}"' in boxes[0] and "checked" in boxes[0]
    assert 'name="idempotency_key"' in page


def _strategy_with_account(app, trader, client) -> tuple[int, int]:
    account_id = add_account(app, trader.id, "Main")
    strategy_id = send(client, "POST", "/api/strategies",
                       body(accounts=[{"account_id": account_id, "lot_multiplier": "1"}])).get_json()["id"]
    return strategy_id, account_id


def test_execute_engine_offline_flashes_and_creates_no_run(app, trader, trader_client):
    pytest.importorskip("app.services.execution.planner")
    strategy_id, account_id = _strategy_with_account(app, trader, trader_client)
    _lease(app, online=False)
    token = trader_client.token(f"/strategy/{strategy_id}")

    response = trader_client.post(f"/strategy/{strategy_id}/execute", data={
        "csrf_token": token, "idempotency_key": "0b8e7c1e-offline", "account_ids": str(account_id)},
        follow_redirects=True)

    assert response.status_code == 200
    assert "The order engine is offline" in response.get_data(as_text=True)
    assert _runs(app) == 0


def test_execute_while_halted_flashes_the_reason_and_creates_no_run(app, trader, trader_client):
    pytest.importorskip("app.services.execution.planner")
    from app.services.execution.halt import halt_trading

    strategy_id, account_id = _strategy_with_account(app, trader, trader_client)
    _lease(app)
    admin = make_user(app, "root", role="admin")
    with app.app_context():
        halt_trading(db.session.merge(admin), "exchange glitch")
    token = trader_client.token(f"/strategy/{strategy_id}")

    response = trader_client.post(f"/strategy/{strategy_id}/execute", data={
        "csrf_token": token, "idempotency_key": "0b8e7c1e-halted", "account_ids": str(account_id)},
        follow_redirects=True)

    text = response.get_data(as_text=True)
    assert "Trading is halted by an administrator: exchange glitch." in text
    assert _runs(app) == 0


def test_execute_no_account_ticked_flashes_and_creates_no_run(app, trader, trader_client):
    strategy_id, _ = _strategy_with_account(app, trader, trader_client)
    token = trader_client.token(f"/strategy/{strategy_id}")

    response = trader_client.post(f"/strategy/{strategy_id}/execute", data={
        "csrf_token": token, "idempotency_key": "0b8e7c1e-none"}, follow_redirects=True)

    assert "Tick at least one account to execute on." in response.get_data(as_text=True)
    assert _runs(app) == 0


def test_dashboard_shows_engine_online_with_holder(app, trader_client):
    _lease(app)
    page = trader_client.get("/dashboard").get_data(as_text=True)
    assert "Engine online" in page and "web-test:1:x" in page
    assert 'href="/strategy/kill-switch"' in page


def test_kill_switch_wrong_confirmation_presses_nothing(app, trader_client):
    token = trader_client.token("/strategy/kill-switch")
    response = trader_client.post("/strategy/kill-switch", data={"csrf_token": token, "confirmation": "yes"})
    assert response.status_code == 400
    assert "Type KILL to confirm." in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(KillSwitch)) == 0


def test_kill_switch_engine_offline_flashes_and_creates_nothing(app, trader_client):
    pytest.importorskip("app.services.execution.killswitch")
    token = trader_client.token("/strategy/kill-switch")
    response = trader_client.post("/strategy/kill-switch", data={"csrf_token": token, "confirmation": "KILL"},
                                  follow_redirects=True)
    assert "The order engine is offline" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(KillSwitch)) == 0
