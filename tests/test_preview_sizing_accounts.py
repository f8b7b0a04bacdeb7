"""Strategy preview sizing: the session day after the close, and inactive or deleted accounts.

Over real HTTP against the paper broker (fixtures of tests/test_strategy_preview.py: broker at
2026-01-05 10:00 IST, NIFTY expiries 06 JAN, 13 JAN, ...; ₹10,00,000 per paper account).
"""

from __future__ import annotations

from datetime import UTC, datetime

from app.services.strategy import preview as preview_service
from tests.support.strategies import body, leg, send
from tests.test_strategy_preview import Env, env  # noqa: F401  (the shared fixture)


def _strategy(env: Env, names: list[str], legs: list[dict]) -> int:  # noqa: F811
    accounts = [{"account_id": env.ids[name], "lot_multiplier": "1"} for name in names]
    response = send(env.alice, "POST", "/api/strategies", body(name="Sized", legs=legs, accounts=accounts))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_after_the_close_on_an_expiry_day_sizing_uses_the_non_expiry_rate(env, sim, monkeypatch):  # noqa: F811
    # 06 Jan 2026 is an expiry in the broker's list; 16:00 IST is after the 15:30 close, so the
    # legs resolve to 13 Jan and the session they would trade in (07 Jan) is no expiry day.
    monkeypatch.setattr(preview_service, "utcnow", lambda: datetime(2026, 1, 6, 10, 30, tzinfo=UTC))
    sim.post("/sim/faults", {"apikey": env.keys["Alpha"], "error_rate": 1.0, "routes": ["margin"]})
    strategy_id = _strategy(env, ["Alpha"], [leg()])

    data = env.alice.get(f"/api/strategies/{strategy_id}/preview").get_json()

    assert data["status"] == "ok", data
    assert data["legs"][0]["expiry"] == "2026-01-13"
    sizing = data["sizing"]
    assert sizing["margin_source"] == "margin_table"
    assert sizing["expiry_day"] == {"NIFTY": {"expiry_day": False, "known": True}}
    assert sizing["margin_per_strategy_lot"] == "250000.00"  # not the expiry-day ₹2,05,000
    assert sizing["accounts"][0]["strategy_lots"] == 2  # floor(6,50,000 / 2,50,000), not 3


def test_an_inactive_account_is_a_skipped_row_and_the_other_is_sized(env):  # noqa: F811
    strategy_id = _strategy(env, ["Alpha", "Beta"], [leg()])
    answer = env.alice.post_form(f"/accounts/{env.ids['Beta']}/deactivate", page="/accounts/manage")
    assert answer.status_code == 302

    data = env.alice.get(f"/api/strategies/{strategy_id}/preview").get_json()

    sizing = data["sizing"]
    assert sizing["error"] is None, sizing
    alpha, beta = sizing["accounts"]
    assert (alpha["name"], alpha["error"], alpha["skip_reason"]) == ("Alpha", None, None)
    assert alpha["available_margin"] == "1000000.00" and alpha["strategy_lots"] > 0
    assert (beta["name"], beta["skipped"], beta["skip_reason"], beta["strategy_lots"]) == ("Beta", True, "inactive", 0)
    assert beta["available_margin"] is None and beta["display"]["available_margin"] == "—"


def test_a_deleted_account_is_skipped_in_its_place_among_the_others(env):  # noqa: F811
    strategy_id = _strategy(env, ["Alpha", "Beta", "Gamma"], [leg()])
    assert env.alice.post_form(f"/accounts/{env.ids['Beta']}/delete", page="/accounts/manage").status_code == 302
    assert env.alice.post_form(f"/accounts/{env.ids['Gamma']}/deactivate",
                               page="/accounts/manage").status_code == 302

    sizing = env.alice.get(f"/api/strategies/{strategy_id}/preview").get_json()["sizing"]

    # A deleted account keeps its row under the name deletion gave it ("Beta [deleted #2]").
    assert [(r["account_id"], r["skip_reason"]) for r in sizing["accounts"]] == [
        (env.ids["Alpha"], None), (env.ids["Beta"], "deleted"), (env.ids["Gamma"], "inactive")]
    assert sizing["accounts"][1]["name"].startswith("Beta")
    assert sizing["accounts"][0]["strategy_lots"] > 0


def test_when_no_account_is_active_every_one_is_a_skipped_row(env):  # noqa: F811
    strategy_id = _strategy(env, ["Beta"], [leg()])
    env.alice.post_form(f"/accounts/{env.ids['Beta']}/deactivate", page="/accounts/manage")

    sizing = env.alice.get(f"/api/strategies/{strategy_id}/preview").get_json()["sizing"]

    assert sizing["error"] == "No sizing: none of this strategy's accounts is active."
    assert [(r["name"], r["skip_reason"]) for r in sizing["accounts"]] == [("Beta", "inactive")]
