"""Execution pages refuse other users' ids (404, never confirmed), anonymous users (login) and
posts without the CSRF token; a double submit of the Execute form is one run."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import ServiceLease
from app.models.execution import KillSwitch, OrderIntent, RunAccount, RunLeg, StrategyRun
from app.services.lease import DEFAULT_LEASE_NAME
from tests.helpers import Browserless, make_user
from tests.support.strategies import add_account


def _run(user_id: int, account_id: int, name: str) -> dict[str, int]:
    run = StrategyRun(user_id=user_id, strategy_name=name, idempotency_key=f"key-{name}", product="MIS",
                      trading_day=date(2026, 1, 5), status="open")
    run.legs = [RunLeg(number=1, label="SELL CE", underlying="NIFTY", symbol="NIFTY06JAN2626100CE", exchange="NFO",
                       action="SELL", lots=1, lot_size=65, freeze_qty=1755, tick_size=Decimal("0.05"),
                       order_type="MARKET", ltp=Decimal("100"), expiry=date(2026, 1, 6))]
    row = RunAccount(account_id=account_id, account_name=f"{name} account", status="open", strategy_lots=1)
    run.accounts = [row]
    db.session.add(run)
    db.session.flush()
    db.session.add(OrderIntent(intent_key=f"run:{run.id}/acct:{account_id}/leg:1/child:0/entry/1", user_id=user_id,
                               account_id=account_id, run_id=run.id, run_account_id=row.id, leg_number=1,
                               purpose="entry", phase=1, symbol="NIFTY06JAN2626100CE", exchange="NFO", product="MIS",
                               action="SELL", quantity=65, state="filled", filled_quantity=65,
                               average_price=Decimal("101.5")))
    press = KillSwitch(user_id=user_id, status="done", report=[])
    db.session.add(press)
    db.session.commit()
    return {"run": run.id, "account": row.id, "kill": press.id}


@pytest.fixture
def world(app) -> dict[str, Any]:
    alice = make_user(app, "alice")
    bob = make_user(app, "bob")
    alice_account = add_account(app, alice.id, "A1")
    bob_account = add_account(app, bob.id, "B1")
    with app.app_context():
        mine = _run(alice.id, alice_account, "Alice")
        theirs = _run(bob.id, bob_account, "Bob")
    client = Browserless(app.test_client())
    client.login("alice")
    return {"client": client, "mine": mine, "theirs": theirs, "app": app}


def _urls(own: dict[str, int], other: dict[str, int]) -> list[tuple[str, str]]:
    """(method, url) of every execution entry point, with ids from `other` where they must fail."""
    return [
        ("GET", f"/strategy/runs/{other['run']}"),
        ("GET", f"/api/runs/{other['run']}"),
        ("POST", f"/strategy/runs/{other['run']}/close"),
        ("POST", f"/strategy/runs/{other['run']}/accounts/{other['account']}/close"),
        ("POST", f"/strategy/runs/{other['run']}/accounts/{other['account']}/legs/1/close"),
        ("POST", f"/strategy/runs/{other['run']}/accounts/{other['account']}/retry"),
        # The user's own run with another run's account id: still a 404.
        ("POST", f"/strategy/runs/{own['run']}/accounts/{other['account']}/close"),
        ("POST", f"/strategy/runs/{own['run']}/accounts/{other['account']}/legs/1/close"),
        ("POST", f"/strategy/runs/{own['run']}/accounts/{other['account']}/retry"),
        # The user's own run and account, a leg number the run does not have.
        ("POST", f"/strategy/runs/{own['run']}/accounts/{own['account']}/legs/7/close"),
        ("GET", f"/strategy/kill-switch/{other['kill']}"),
        ("GET", f"/api/kill-switches/{other['kill']}"),
    ]


@pytest.mark.parametrize("index", range(12))
def test_execution_route_other_users_id_gives_404(world, index):
    client = world["client"]
    method, url = _urls(world["mine"], world["theirs"])[index]
    token = client.token(f"/strategy/runs/{world['mine']['run']}")

    response = client.get(url) if method == "GET" else client.post(url, data={"csrf_token": token})

    assert response.status_code == 404, (method, url)


def test_close_other_users_run_creates_no_exit_request(world):
    client = world["client"]
    token = client.token(f"/strategy/runs/{world['mine']['run']}")
    client.post(f"/strategy/runs/{world['theirs']['run']}/close", data={"csrf_token": token})
    with world["app"].app_context():
        from app.models.execution import ExitRequest
        assert db.session.scalar(select(func.count()).select_from(ExitRequest)) == 0


def test_own_run_page_and_json_show_the_fill(world):
    client = world["client"]
    page = client.get(f"/strategy/runs/{world['mine']['run']}")
    data = client.get(f"/api/runs/{world['mine']['run']}").get_json()

    assert page.status_code == 200
    assert "filled @ 101.50" in page.get_data(as_text=True)
    leg = data["accounts"][0]["legs"][0]
    assert (leg["ordered"], leg["filled"], leg["held"], leg["intents"][0]["label"]) == (65, 65, -65, "filled @ 101.50")


@pytest.mark.parametrize("url", ["/strategy/runs", "/strategy/runs/1", "/strategy/kill-switch",
                                 "/strategy/kill-switch/1"])
def test_execution_page_anonymous_redirects_to_login(app, url):
    response = Browserless(app.test_client()).get(url)
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


@pytest.mark.parametrize("url", ["/api/runs/1", "/api/kill-switches/1"])
def test_execution_json_anonymous_gets_401(app, url):
    response = Browserless(app.test_client()).get(url, headers={"Accept": "application/json"})
    assert response.status_code == 401


@pytest.mark.parametrize("path", ["/close", "/accounts/{account}/close", "/accounts/{account}/legs/1/close",
                                  "/accounts/{account}/retry"])
def test_run_button_post_without_csrf_is_refused(world, path):
    mine = world["mine"]
    url = f"/strategy/runs/{mine['run']}" + path.format(account=mine["account"])
    response = world["client"].post(url, data={})
    assert response.status_code == 400
    with world["app"].app_context():
        from app.models.execution import ExitRequest
        assert db.session.scalar(select(func.count()).select_from(ExitRequest)) == 0


def test_kill_switch_post_without_csrf_is_refused(world):
    response = world["client"].post("/strategy/kill-switch", data={"confirmation": "KILL"})
    assert response.status_code == 400
    with world["app"].app_context():
        assert db.session.scalar(select(func.count()).select_from(KillSwitch)) == 2  # the fixture's two


def test_execute_other_users_strategy_gives_404(world):
    from app.models import Strategy

    app = world["app"]
    with app.app_context():
        bob_id = db.session.scalar(select(StrategyRun.user_id).where(StrategyRun.id == world["theirs"]["run"]))
        strategy = Strategy(user_id=bob_id, name="Bob's", entry_time=datetime(2026, 1, 1, 9, 20).time(),
                            exit_time=datetime(2026, 1, 1, 15, 0).time(),
                            square_off_time=datetime(2026, 1, 1, 15, 15).time())
        db.session.add(strategy)
        db.session.commit()
        strategy_id = strategy.id
    client = world["client"]
    token = client.token(f"/strategy/runs/{world['mine']['run']}")
    response = client.post(f"/strategy/{strategy_id}/execute", data={"csrf_token": token,
                                                                     "idempotency_key": "abcdefgh-1"})
    assert response.status_code == 404


# --- double submit through the web form (the planner over the paper broker) ----------------------

def test_execute_form_submitted_twice_with_one_key_is_one_run(env, monkeypatch):  # noqa: F811
    planner = pytest.importorskip("app.services.execution.planner")
    from tests.test_strategy_preview import IRON_CONDOR, NOW

    monkeypatch.setattr(planner, "utcnow", lambda: NOW)
    with env.app.app_context():
        now = datetime.now(UTC)
        db.session.add(ServiceLease(name=DEFAULT_LEASE_NAME, holder="test:1:abc", acquired_at=now, renewed_at=now,
                                    expires_at=now + timedelta(hours=1)))
        db.session.commit()
    strategy_id = env.create(IRON_CONDOR, risk_profile="fixed_lots")
    page = env.alice.get(f"/strategy/{strategy_id}").get_data(as_text=True)
    key = re.search(r'name="idempotency_key"[^>]*value="([^"]+)"', page) or \
        re.search(r'value="([^"]+)"[^>]*name="idempotency_key"', page)
    assert key is not None
    form = {"csrf_token": env.alice.token(f"/strategy/{strategy_id}"), "idempotency_key": key.group(1),
            "account_ids": [str(env.ids[name]) for name in ("Alpha", "Beta", "Gamma")]}

    first = env.alice.post(f"/strategy/{strategy_id}/execute", data=form)
    second = env.alice.post(f"/strategy/{strategy_id}/execute", data=form)

    assert first.status_code == second.status_code == 302
    assert re.search(r"/strategy/runs/\d+$", first.headers["Location"])
    assert first.headers["Location"] == second.headers["Location"]
    with env.app.app_context():
        assert db.session.scalar(select(func.count()).select_from(StrategyRun)) == 1
        assert db.session.scalar(select(func.count()).select_from(OrderIntent)) == 12


from tests.test_strategy_preview import env  # noqa: E402,F401  (the paper-broker fixture)
