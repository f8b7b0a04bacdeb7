"""Strategy preview JSON over real HTTP: three paper accounts behind a counting proxy, the paper
broker at 2026-01-05 10:00 IST with NIFTY at 26,000 (the preview's clock is set to the same instant).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from app.broker.client import MarginPosition, OpenAlgoClient
from app.services.strategy import preview as preview_service
from tests.helpers import Browserless, make_user
from tests.support.broker_proxy import BrokerProxy
from tests.support.paperbroker import START
from tests.support.strategies import body, leg, send

NOW = datetime.fromisoformat(START)
IRON_CONDOR = [leg(strike_offset=2, option_type="CE", action="SELL"),
               leg(strike_offset=4, option_type="CE", action="BUY"),
               leg(strike_offset=2, option_type="PE", action="SELL"),
               leg(strike_offset=4, option_type="PE", action="BUY")]
ACCOUNTS = ("Alpha", "Beta", "Gamma")


@dataclass
class Env:
    app: Any
    proxy: BrokerProxy
    keys: dict[str, str]
    ids: dict[str, int]
    alice: Browserless
    bob: Browserless
    direct: OpenAlgoClient

    def create(self, legs: list[dict[str, Any]], **overrides: Any) -> int:
        accounts = [{"account_id": self.ids[name], "lot_multiplier": "1"} for name in ACCOUNTS]
        payload = body(name=overrides.pop("name", "Condor"), legs=legs, accounts=accounts, **overrides)
        response = send(self.alice, "POST", "/api/strategies", payload)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    def calls(self, endpoint: str, account: str) -> int:
        return self.proxy.count(endpoint, self.keys[account])


@pytest.fixture
def env(app_factory, broker, sim, monkeypatch) -> Iterator[Env]:
    monkeypatch.setattr(preview_service, "utcnow", lambda: NOW)
    sim.set_spot(NIFTY=26000, BANKNIFTY=59000, SENSEX=85000)
    keys: dict[str, str] = {}
    ids: dict[str, int] = {}
    with BrokerProxy(broker.url) as proxy:
        application = app_factory()
        with application.app_context():
            make_user(application, "alice")
            make_user(application, "bob")
            alice = Browserless(application.test_client())
            alice.login("alice")
            bob = Browserless(application.test_client())
            bob.login("bob")
            for name in ACCOUNTS:
                keys[name] = sim.new_account()
                answer = alice.post_form("/accounts/add", {
                    "account_name": name, "host_url": proxy.url, "websocket_url": broker.ws_url,
                    "api_key": keys[name]}, page="/accounts/add")
                assert answer.status_code == 302, answer.get_data(as_text=True)
            ids = {row["name"]: row["id"] for row in alice.get("/api/accounts").get_json()["accounts"]}
        direct = OpenAlgoClient(broker.url, keys["Alpha"])
        try:
            yield Env(application, proxy, keys, ids, alice, bob, direct)
        finally:
            direct.close()
    sim.call("DELETE", "/sim/faults")
    for key in keys.values():
        sim.call("DELETE", f"/sim/accounts/{key}")


def _preview(env: Env, strategy_id: int, client: Browserless | None = None):
    return (client or env.alice).get(f"/api/strategies/{strategy_id}/preview")


def test_iron_condor_preview_resolves_prices_and_bounds_its_payoff(env):
    response = _preview(env, env.create(IRON_CONDOR))

    assert response.status_code == 200
    data = response.get_json()
    assert data["status"] == "ok" and data["source"] == "Alpha" and data["error"] is None
    legs = data["legs"]
    assert [leg["symbol"] for leg in legs] == ["NIFTY06JAN2626100CE", "NIFTY06JAN2626200CE",
                                               "NIFTY06JAN2625900PE", "NIFTY06JAN2625800PE"]
    assert {(leg["expiry"], leg["lot_size"], leg["quantity"], leg["freeze_qty"]) for leg in legs} == {
        ("2026-01-06", 65, 65, 1755)}
    assert all(leg["iv"] is not None and leg["delta"] is not None for leg in legs)
    ltp = [Decimal(leg["ltp"]) for leg in legs]
    credit = ltp[0] - ltp[1] + ltp[2] - ltp[3]
    payoff = data["payoff"]
    # An iron condor: profit capped at the credit, loss at the 100-point wing minus the credit.
    assert Decimal(payoff["max_profit"]) == credit * 65
    assert Decimal(payoff["max_loss"]) == (credit - 100) * 65
    assert (payoff["profit_unlimited"], payoff["loss_unlimited"]) == (False, False)
    assert [Decimal(b) for b in payoff["breakevens"]] == [Decimal(25900) - credit, Decimal(26100) + credit]
    assert payoff["spot"] == "26000.0" and len(payoff["points"]) == preview_service.CHART_POINTS
    middle = [p for p in payoff["points"] if Decimal(25900) <= Decimal(p["price"]) <= Decimal(26100)]
    assert middle and {Decimal(p["expiry"]) for p in middle} == {credit * 65}
    assert all(p["today"] is not None for p in payoff["points"])
    assert set(payoff["greeks"]) == {"delta", "gamma", "theta", "vega"}
    assert Decimal(payoff["greeks"]["theta"]) > 0  # a short premium position earns time decay


def test_preview_sizes_every_account_from_the_brokers_basket_margin(env):
    data = _preview(env, env.create(IRON_CONDOR)).get_json()

    sizing = data["sizing"]
    symbols = [leg["symbol"] for leg in data["legs"]]
    actions = ["SELL", "BUY", "SELL", "BUY"]
    basket = env.direct.basket_margin([MarginPosition(s, "NFO", a, 65, "MIS") for s, a in zip(symbols, actions,
                                                                                                 strict=True)])
    assert sizing["margin_source"] == "broker_basket" and Decimal(sizing["margin_per_strategy_lot"]) == basket.total
    lots = int(Decimal(650000) // basket.total)  # balanced: 65 % of ₹10,00,000
    assert [row["name"] for row in sizing["accounts"]] == list(ACCOUNTS)
    assert {(row["strategy_lots"], tuple(row["lots"])) for row in sizing["accounts"]} == {(lots, (lots,) * 4)}


def test_preview_resolves_once_through_the_market_data_account_only(env):
    _preview(env, env.create(IRON_CONDOR))

    assert env.calls("optionchain", "Alpha") == 1 and env.calls("multiquotes", "Alpha") == 0
    for other in ("Beta", "Gamma"):
        assert sum(env.calls(e, other) for e in ("expiry", "optionchain", "multiquotes", "symbol", "margin")) == 0
        assert env.calls("funds", other) >= 1  # but every account's own funds size it


def test_another_users_preview_is_404(env):
    strategy_id = env.create(IRON_CONDOR)

    assert _preview(env, strategy_id, env.bob).status_code == 404
    assert env.calls("optionchain", "Alpha") == 0


def test_preview_when_the_market_data_account_is_down_says_so_and_shows_nothing_stale(env, sim):
    strategy_id = env.create(IRON_CONDOR)
    assert _preview(env, strategy_id).get_json()["status"] == "ok"  # a good preview first
    sim.post("/sim/faults", {"apikey": env.keys["Alpha"], "error_rate": 1.0})

    response = _preview(env, strategy_id)

    assert response.status_code == 503
    data = response.get_json()
    assert data["status"] == "error" and data["source_down"] is True
    assert data["error"].startswith("Market-data account Alpha failed")
    assert data["payoff"] is None and data["sizing"] is None
    assert {leg["status"] for leg in data["legs"]} == {"error"}
    assert all("ltp" not in leg and "symbol" not in leg for leg in data["legs"])


def test_preview_names_a_leg_whose_strike_is_not_listed(env):
    legs = [leg(strike_offset=2, option_type="CE", action="SELL"),
            leg(strike_method="strike", strike_offset=None, strike_price="26025", option_type="CE", action="BUY")]
    response = _preview(env, env.create(legs, name="Odd strike"))

    assert response.status_code == 200
    data = response.get_json()
    assert data["status"] == "error" and data["source_down"] is False and data["payoff"] is None
    assert data["legs"][0]["status"] == "resolved"
    assert data["legs"][1]["reason"] == "strike_not_listed"
    assert data["legs"][1]["message"].startswith("Leg 2 (BUY NIFTY strike 26025 CE (current week)): strike 26025")
    assert data["error"].startswith("Some legs could not be resolved: Leg 2")


def test_preview_needs_a_signed_in_user(env):
    strategy_id = env.create(IRON_CONDOR)

    anonymous = env.app.test_client()
    assert anonymous.get(f"/api/strategies/{strategy_id}/preview").status_code in (302, 401)


def test_strategy_page_has_the_preview_section_and_its_script(env):
    strategy_id = env.create(IRON_CONDOR)

    page = env.alice.get(f"/strategy/{strategy_id}")

    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'data-url="/api/strategies/{strategy_id}/preview"' in html
    assert 'data-testid="preview-legs"' in html and "js/strategy_preview.js" in html
    assert env.calls("optionchain", "Alpha") == 0  # the page itself asks no broker: the script does


def test_preview_json_carries_display_forms(env):
    data = _preview(env, env.create(IRON_CONDOR)).get_json()

    first = data["legs"][0]["display"]
    assert (first["strike"], first["expiry"], first["quantity"], first["limit_price"]) == (
        "26100", "06 Jan 2026", "65", "MARKET")
    assert first["ltp"] == f"{Decimal(data['legs'][0]['ltp']):.2f}"
    shown = data["payoff"]["display"]
    assert shown["spot"] == "26,000.00" and shown["max_profit"].startswith("₹")
    assert shown["max_loss"].startswith("-₹")
    row = data["sizing"]["accounts"][0]["display"]
    assert row["available_margin"] == "₹10,00,000" and row["usable_margin"] == "₹6,50,000"


def test_a_stored_leg_that_no_longer_validates_is_a_422_naming_it(env):
    from sqlalchemy import update

    from app.extensions import db
    from app.models.strategies import StrategyLeg

    strategy_id = env.create(IRON_CONDOR)
    with env.app.app_context():
        db.session.execute(update(StrategyLeg).where(StrategyLeg.strategy_id == strategy_id,
                                                     StrategyLeg.position == 2).values(lots=0))
        db.session.commit()

    response = _preview(env, strategy_id)

    assert response.status_code == 422
    assert response.get_json()["error"].startswith("Leg 3: lots must be a whole number of at least 1")
    assert env.calls("expiry", "Alpha") == 0


def test_calendar_spread_preview_shows_no_single_expiry_payoff_but_still_its_legs_and_sizing(env):
    calendar = [leg(strike_method="atm", strike_offset=None, option_type="CE", action="SELL"),
                leg(strike_method="atm", strike_offset=None, option_type="CE", action="BUY",
                    expiry_choice="next_week")]
    data = _preview(env, env.create(calendar)).get_json()

    assert data["status"] == "ok"
    assert len({leg["expiry"] for leg in data["legs"]}) == 2
    assert data["payoff"]["available"] is False
    assert "expire on different dates" in data["payoff"]["note"]
    assert data["sizing"] is not None


# Allowed splits: NIFTY lot 65, freeze 1,755 = 27 lots per order; three paper accounts of ₹10,00,000.
SIXTY_LOTS = [leg(strike_method="atm", strike_offset=None, option_type="CE", action="SELL", lots=60)]


def test_preview_fixed_60_lots_with_3_splits_sends_1755_1755_390_per_account(env: Env):
    strategy_id = env.create(SIXTY_LOTS, risk_profile="fixed_lots", allowed_splits=3)

    data = _preview(env, strategy_id).get_json()

    assert data["status"] == "ok", data
    assert data["strategy"]["allowed_splits"] == 3
    sizing = data["sizing"]
    rows = sizing["accounts"]
    assert [row["name"] for row in rows] == list(ACCOUNTS)
    for row in rows:
        assert row["skip_reason"] is None and row["error"] is None, row
        assert row["legs"] == [{"lots": 60, "quantity": 3900, "child_orders": 3,
                                "child_quantities": [1755, 1755, 390]}]
        assert row["display"]["legs"] == [{"lots": "60", "quantity": "3,900", "child_orders": "3",
                                           "child_quantities": "1,755 + 1,755 + 390"}]
    margin_used = sum(Decimal(row["margin_used"]) for row in rows)
    assert margin_used == 3 * Decimal(sizing["margin_per_strategy_lot"]) > 0
    total = sizing["total"]
    assert total["accounts"] == 3
    assert total["legs"] == [{"lots": 180, "quantity": 11700, "child_orders": 9}]
    assert total["display"]["legs"] == [{"lots": "180", "quantity": "11,700", "child_orders": "9"}]
    assert Decimal(total["margin_used"]) == margin_used


def test_preview_fixed_60_lots_with_2_splits_skips_every_account_with_the_reason(env: Env):
    strategy_id = env.create(SIXTY_LOTS, risk_profile="fixed_lots", allowed_splits=2)

    data = _preview(env, strategy_id).get_json()

    assert data["status"] == "ok", data
    rows = data["sizing"]["accounts"]
    assert {row["skip_reason"] for row in rows} == {"leg 1: 60 lots exceed 27 lots per order × 2 order(s) = 54"}
    assert all(row["legs"][0]["lots"] == 0 and row["legs"][0]["child_orders"] == 0 for row in rows)
    total = data["sizing"]["total"]
    assert (total["accounts"], total["margin_used"], total["legs"]) == (0, "0.00", [])


def test_preview_follows_a_change_of_allowed_splits(env: Env):
    strategy_id = env.create(SIXTY_LOTS, risk_profile="fixed_lots", allowed_splits=2)

    changed = send(env.alice, "PATCH", f"/api/strategies/{strategy_id}", {"allowed_splits": 3})
    data = _preview(env, strategy_id).get_json()

    assert changed.status_code == 200
    assert [row["legs"][0]["child_quantities"] for row in data["sizing"]["accounts"]] == [[1755, 1755, 390]] * 3
