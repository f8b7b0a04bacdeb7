"""JSON API for strategies: create, read, update, delete; field errors; ownership; CSRF."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Strategy, StrategyLeg
from tests.helpers import Browserless, make_user
from tests.support.strategies import add_account, body, leg, send


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_create_strategy_valid_body_is_stored_and_returned(app, trader, trader_client):
    account_id = add_account(app, trader.id, "Main")
    payload = body(accounts=[{"account_id": account_id, "lot_multiplier": "2.5", "capital_cap": "150000"}],
                   max_loss="5000", trailing_type="points", trailing_value="20",
                   legs=[leg(order_type="LIMIT", limit_buffer_pct="1.5", stop_loss_unit="percentage",
                             stop_loss_value="30"),
                         leg(instrument="future", strike_method="atm", option_type="PE", action="BUY", lots=2),
                         leg(strike_method="premium_near", strike_offset=None, target_premium="42.5",
                             option_type="PE")])

    response = send(trader_client, "POST", "/api/strategies", payload)

    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["name"] == "Test strangle"
    assert created["accounts"] == [{"account_id": account_id, "lot_multiplier": "2.5", "capital_cap": "150000"}]
    assert created["max_loss"] == "5000" and created["trailing_type"] == "points" and created["trailing_value"] == "20"
    first, future, premium = created["legs"]
    assert (first["position"], first["strike_method"], first["strike_offset"], first["order_type"],
            first["limit_buffer_pct"], first["stop_loss_unit"], first["stop_loss_value"]) == (
        0, "otm", 2, "LIMIT", "1.5", "percentage", "30")
    # A future has no strike rule and no option type, whatever the body said.
    assert (future["instrument"], future["strike_method"], future["option_type"], future["lots"]) == (
        "future", None, None, 2)
    assert (premium["strike_method"], premium["strike_offset"], premium["target_premium"]) == (
        "premium_near", None, "42.5")
    fetched = trader_client.get(f"/api/strategies/{created['id']}").get_json()
    assert fetched == created


def test_list_strategies_shows_only_own(app, trader, trader_client):
    other = make_user(app, "carol")
    other_client = Browserless(app.test_client())
    other_client.login("carol")
    assert send(other_client, "POST", "/api/strategies", body(name="Carol's")).status_code == 201
    assert send(trader_client, "POST", "/api/strategies", body(name="Bob's")).status_code == 201

    names = [s["name"] for s in trader_client.get("/api/strategies").get_json()["strategies"]]

    assert names == ["Bob's"]
    assert other.id != trader.id


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"legs": []}, "legs", "Add at least one leg."),
    ({"legs": [leg()] * 21}, "legs", "A strategy has at most 20 legs; remove 1."),
    ({"legs": [leg(), leg(lots=0)]}, "legs.1.lots", "Use a whole number of lots from 1 to 1000."),
    ({"legs": [leg(lots=-2)]}, "legs.0.lots", "Use a whole number of lots from 1 to 1000."),
    ({"legs": [leg(lots="1.5")]}, "legs.0.lots", "Use a whole number of lots from 1 to 1000."),
    ({"legs": [leg(lots="")]}, "legs.0.lots", "Enter the number of lots."),
    ({"legs": [leg(lots=None)]}, "legs.0.lots", "Enter the number of lots."),
    ({"legs": [leg(strike_offset="2.5")]}, "legs.0.strike_offset", "Choose an offset from 1 to 20."),
    ({"supertrend_period": "x"}, "supertrend_period", "Use a period from 2 to 100."),
    ({"legs": [leg(strike_offset=0)]}, "legs.0.strike_offset", "Choose an offset from 1 to 20."),
    ({"legs": [leg(strike_offset=21)]}, "legs.0.strike_offset", "Choose an offset from 1 to 20."),
    ({"legs": [leg(strike_method="itm", strike_offset=None)]}, "legs.0.strike_offset",
     "Choose an offset from 1 to 20."),
    ({"legs": [leg(strike_method="premium_near", target_premium="0")]}, "legs.0.target_premium",
     "Enter a target premium greater than 0."),
    ({"legs": [leg(strike_method="premium_near", target_premium="-5")]}, "legs.0.target_premium",
     "Enter a target premium greater than 0."),
    ({"legs": [leg(strike_method="strike", strike_price=None)]}, "legs.0.strike_price",
     "Enter a strike price greater than 0."),
    ({"legs": [leg(strike_method="strike", strike_price="NaN")]}, "legs.0.strike_price", "Enter a number."),
    ({"legs": [leg(strike_method="strike", strike_price="sNaN")]}, "legs.0.strike_price", "Enter a number."),
    ({"legs": [leg(strike_method="strike", strike_price="Infinity")]}, "legs.0.strike_price", "Enter a number."),
    ({"legs": [leg(strike_method="strike", strike_price="1e20")]}, "legs.0.strike_price",
     "Must be at most 1,000,000."),
    ({"legs": [leg(strike_method="strike", strike_price="26000.125")]}, "legs.0.strike_price",
     "Use at most 2 decimal places."),
    ({"legs": [leg(strike_method="premium_near", target_premium="NaN")]}, "legs.0.target_premium",
     "Enter a number."),
    ({"legs": [leg(strike_method="premium_near", target_premium="-Infinity")]}, "legs.0.target_premium",
     "Enter a number."),
    ({"legs": [leg(order_type="LIMIT")]}, "legs.0.limit_buffer_pct", "Enter the buffer for a limit order (0 to 20 %)."),
    ({"legs": [leg(option_type="XX")]}, "legs.0.option_type", "Not a valid choice."),
    ({"legs": [leg(underlying="BANKEX")]}, "legs.0.underlying", "Not a valid choice."),
    ({"legs": [leg(lots={"a": 1})]}, "legs.0.lots", "must be a string, a number or a boolean"),
    ({"legs": "two"}, "legs", "must be a list"),
    ({"entry_time": "09:00"}, "entry_time", "Choose a time within market hours (09:15–15:30 IST)."),
    ({"square_off_time": "15:45"}, "square_off_time", "Choose a time within market hours (09:15–15:30 IST)."),
    ({"entry_time": "15:00", "exit_time": "15:00"}, "exit_time", "The exit time must be after the entry time."),
    ({"exit_time": "15:20", "square_off_time": "15:10"}, "square_off_time",
     "The square-off time must be at or after the exit time."),
    ({"entry_time": "9.20"}, "entry_time", "Not a valid time value."),
    ({"name": ""}, "name", "Enter a name."),
    ({"name": "bad\x00name"}, "name", "Remove control characters (such as NUL, escape or line breaks)."),
    ({"max_loss": "0"}, "max_loss", "Must be greater than 0."),
    ({"max_loss": "NaN"}, "max_loss", "Enter a number."),
    ({"trailing_type": "percentage", "trailing_value": "120"}, "trailing_value", "A percentage must be at most 100."),
    ({"trailing_type": "amount"}, "trailing_value", "Enter the trailing distance."),
    ({"supertrend_timeframe": "2m"}, "supertrend_timeframe", "Not a valid choice."),
    ({"supertrend_multiplier": "0"}, "supertrend_multiplier", "Must be greater than 0."),
    ({"risk_profile": "yolo"}, "risk_profile", "Not a valid choice."),
])
def test_create_strategy_bad_input_names_the_field_and_saves_nothing(trader_client, change, field, message):
    response = send(trader_client, "POST", "/api/strategies", body(**change))

    assert response.status_code == 400
    answer = response.get_json()
    assert answer["fields"][field] == message, answer
    assert _count(Strategy) == 0 and _count(StrategyLeg) == 0


@pytest.mark.parametrize(("row", "field", "message"), [
    ({"lot_multiplier": "0"}, "accounts.0.lot_multiplier", "Must be greater than 0."),
    ({"lot_multiplier": "-1"}, "accounts.0.lot_multiplier", "Must be greater than 0."),
    ({"lot_multiplier": "1.234"}, "accounts.0.lot_multiplier", "Use at most 2 decimal places."),
    ({"capital_cap": "-1"}, "accounts.0.capital_cap", "Must be 0 or more."),
])
def test_create_strategy_bad_account_row_names_the_field(app, trader, trader_client, row, field, message):
    account_id = add_account(app, trader.id, "Main")

    response = send(trader_client, "POST", "/api/strategies", body(accounts=[{"account_id": account_id, **row}]))

    assert response.status_code == 400
    assert response.get_json()["fields"][field] == message
    assert _count(Strategy) == 0


def test_create_strategy_with_another_users_account_is_refused(app, trader_client):
    carol = make_user(app, "carol")
    foreign = add_account(app, carol.id, "Carol main")

    response = send(trader_client, "POST", "/api/strategies", body(accounts=[{"account_id": foreign}]))

    assert response.status_code == 400
    assert response.get_json()["fields"]["accounts.0.account_id"] == "Choose one of your own accounts."
    assert _count(Strategy) == 0


def test_create_strategy_capital_cap_zero_and_default_multiplier_are_accepted(app, trader, trader_client):
    account_id = add_account(app, trader.id, "Main")

    response = send(trader_client, "POST", "/api/strategies",
                    body(accounts=[{"account_id": account_id, "capital_cap": "0"}]))

    assert response.status_code == 201
    assert response.get_json()["accounts"] == [{"account_id": account_id, "lot_multiplier": "1", "capital_cap": "0"}]


def test_patch_strategy_replaces_given_fields_only(trader_client):
    created = send(trader_client, "POST", "/api/strategies", body()).get_json()

    response = send(trader_client, "PATCH", f"/api/strategies/{created['id']}", {"name": "Renamed", "lots": 9})

    assert response.status_code == 200, response.get_json()
    patched = response.get_json()
    assert patched["name"] == "Renamed"
    assert patched["legs"] == created["legs"]


def test_put_strategy_replaces_legs_in_order(trader_client):
    created = send(trader_client, "POST", "/api/strategies", body()).get_json()
    new_legs = [leg(option_type="PE", strike_offset=5), leg(action="BUY", strike_method="atm", strike_offset=None),
                leg(strike_offset=7)]

    response = send(trader_client, "PUT", f"/api/strategies/{created['id']}", body(legs=new_legs))

    assert response.status_code == 200
    legs = response.get_json()["legs"]
    assert [(x["position"], x["option_type"], x["strike_method"], x["strike_offset"], x["action"]) for x in legs] == [
        (0, "PE", "otm", 5, "SELL"), (1, "CE", "atm", None, "BUY"), (2, "CE", "otm", 7, "SELL")]
    assert _count(StrategyLeg) == 3


def test_put_strategy_invalid_keeps_the_stored_version(trader_client):
    created = send(trader_client, "POST", "/api/strategies", body()).get_json()

    response = send(trader_client, "PUT", f"/api/strategies/{created['id']}", body(name="New", legs=[leg(lots=0)]))

    assert response.status_code == 400
    assert trader_client.get(f"/api/strategies/{created['id']}").get_json() == created


def test_delete_strategy_removes_it_and_its_legs(trader_client):
    created = send(trader_client, "POST", "/api/strategies", body()).get_json()

    response = send(trader_client, "DELETE", f"/api/strategies/{created['id']}")

    assert response.status_code == 200
    assert trader_client.get(f"/api/strategies/{created['id']}").status_code == 404
    assert _count(Strategy) == 0 and _count(StrategyLeg) == 0


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_another_users_strategy_is_404(app, trader_client, method):
    make_user(app, "carol")
    carol = Browserless(app.test_client())
    carol.login("carol")
    created = send(carol, "POST", "/api/strategies", body(name="Carol's")).get_json()

    response = send(trader_client, method, f"/api/strategies/{created['id']}",
                    None if method in ("GET", "DELETE") else body(name="Stolen"))

    assert response.status_code == 404
    assert response.get_json()["code"] == 404
    assert carol.get(f"/api/strategies/{created['id']}").get_json()["name"] == "Carol's"


def test_create_strategy_without_csrf_header_is_refused(trader_client):
    response = trader_client.post("/api/strategies", json=body())

    assert response.status_code == 400
    assert _count(Strategy) == 0


def test_strategy_api_requires_sign_in(client):
    response = client.get("/api/strategies")

    assert response.status_code == 401 or response.status_code == 302


def test_create_strategy_body_not_an_object_is_400(trader_client):
    response = send(trader_client, "POST", "/api/strategies", ["not", "an", "object"])

    assert response.status_code == 400
    assert _count(Strategy) == 0


def test_put_back_what_get_returned_round_trips_a_future_leg(trader_client):
    created = send(trader_client, "POST", "/api/strategies",
                   body(legs=[leg(instrument="future", strike_method=None, option_type=None, strike_offset=None),
                              leg(strike_method="strike", strike_offset=None, strike_price="24550.5")])).get_json()

    response = send(trader_client, "PUT", f"/api/strategies/{created['id']}", created)

    assert response.status_code == 200, response.get_json()
    again = response.get_json()
    assert again["legs"] == created["legs"] and again["legs"][1]["strike_price"] == "24550.5"
    assert again["legs"][0]["strike_method"] is None and again["legs"][0]["option_type"] is None


def test_update_with_the_same_account_replaces_its_row(app, trader, trader_client):
    account_id = add_account(app, trader.id, "Main")
    created = send(trader_client, "POST", "/api/strategies",
                   body(accounts=[{"account_id": account_id, "lot_multiplier": "1"}])).get_json()

    response = send(trader_client, "PATCH", f"/api/strategies/{created['id']}",
                    {"accounts": [{"account_id": account_id, "lot_multiplier": "4", "capital_cap": "50000"}]})

    assert response.status_code == 200, response.get_json()
    expected = [{"account_id": account_id, "lot_multiplier": "4", "capital_cap": "50000"}]
    assert response.get_json()["accounts"] == expected


def test_same_account_listed_twice_is_a_field_error(app, trader, trader_client):
    account_id = add_account(app, trader.id, "Main")

    response = send(trader_client, "POST", "/api/strategies",
                    body(accounts=[{"account_id": account_id}, {"account_id": account_id}]))

    assert response.status_code == 400
    assert response.get_json()["fields"] == {"accounts.1.account_id": "This account is listed twice."}


@pytest.mark.parametrize("status", ["entering", "open", "closing"])
def test_a_strategy_with_an_open_run_is_not_deleted_until_the_run_is_closed(trader_client, status):
    """Its exit and square-off times are what close the run on schedule: deleting it would leave
    the run unwatched by the scheduler."""
    from datetime import UTC, datetime

    from app.models.execution import StrategyRun
    from app.models.users import User

    created = send(trader_client, "POST", "/api/strategies", body()).get_json()
    bob = db.session.scalar(select(User).where(User.username == "bob"))
    run = StrategyRun(user_id=bob.id, strategy_id=created["id"], strategy_name=created["name"],
                      idempotency_key=f"delete-test-{status}", status=status, product="MIS",
                      trading_day=datetime.now(UTC).date())
    db.session.add(run)
    db.session.commit()
    run_id = run.id

    refused = send(trader_client, "DELETE", f"/api/strategies/{created['id']}")
    assert refused.status_code == 409 and f"#{run_id}" in refused.get_json()["message"]
    page = trader_client.post(f"/strategy/{created['id']}/delete",
                              data={"csrf_token": trader_client.token("/strategy")})
    assert page.status_code == 302 and page.headers["Location"].endswith(f"/strategy/{created['id']}")
    assert "open run" in trader_client.get(page.headers["Location"]).get_data(as_text=True)
    assert _count(Strategy) == 1 and _count(StrategyLeg) == 2

    db.session.get(StrategyRun, run_id).status = "closed"
    db.session.commit()
    assert send(trader_client, "DELETE", f"/api/strategies/{created['id']}").status_code == 200
    db.session.expire_all()
    assert _count(Strategy) == 0 and db.session.get(StrategyRun, run_id).strategy_id is None  # the run's record stays
