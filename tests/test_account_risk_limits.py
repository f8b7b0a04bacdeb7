"""An account's optional daily loss and profit limits: the rule, the add and edit forms (field
errors, nothing saved when invalid), the database's own check, and owner-only access."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.domain.risk_settings import MAX_DAILY_LIMIT, daily_limit_problem
from app.extensions import db
from app.models.accounts import TradingAccount
from app.models.audit import ActivityLog
from tests.helpers import Browserless, make_user

HOST = "http://127.0.0.1:9"
WS = "ws://127.0.0.1:9"
POSITIVE = "Must be greater than 0 (leave empty for no limit)."


@pytest.mark.parametrize(("value", "expected"), [
    (None, None),
    (Decimal("0.01"), None),
    (Decimal("20000"), None),
    (MAX_DAILY_LIMIT, None),
    (Decimal("0"), POSITIVE),
    (Decimal("-0.01"), POSITIVE),
    (Decimal("-20000"), POSITIVE),
    (MAX_DAILY_LIMIT + Decimal("0.01"), "Must be at most 100,000,000,000."),
    (Decimal("100.123"), "Use at most 2 decimal places."),
    (Decimal("NaN"), "Enter a number."),
    (Decimal("Infinity"), "Enter a number."),
])
def test_daily_limit_rule(value, expected):
    assert daily_limit_problem(value) == expected


def _account(app, owner_id: int, name: str = "Main", **limits) -> int:
    with app.app_context():
        account = TradingAccount(user_id=owner_id, account_name=name, host_url=HOST, websocket_url=WS,
                                 api_key_encrypted="x", api_key_last4="abcd", **limits)
        db.session.add(account)
        db.session.commit()
        return account.id


def _edit(client, account_id: int, name: str = "Main", **limits):
    form = {"account_name": name, "host_url": HOST, "websocket_url": WS, "api_key": "", **limits}
    return client.post_form(f"/accounts/edit/{account_id}", form, page=f"/accounts/edit/{account_id}")


def _field_error(html: str, name: str) -> str | None:
    match = re.search(rf'data-field-error="{re.escape(name)}"[^>]*>([^<]*)<', html)
    return match.group(1).strip() if match else None


def _stored(account_id: int) -> tuple[Decimal | None, Decimal | None, str]:
    db.session.expire_all()
    account = db.session.get(TradingAccount, account_id)
    return account.daily_loss_limit, account.daily_profit_limit, account.account_name


def test_edit_saves_both_limits_and_audits_them(app, trader, trader_client):
    account_id = _account(app, trader.id)

    response = _edit(trader_client, account_id, daily_loss_limit="20000", daily_profit_limit="35000.50")

    assert response.status_code == 302
    assert _stored(account_id) == (Decimal("20000.00"), Decimal("35000.50"), "Main")
    entry = db.session.scalar(select(ActivityLog).where(ActivityLog.action == "account_limits_updated"))
    assert entry.details == {"account_id": account_id, "daily_loss_limit": "20000",
                             "daily_profit_limit": "35000.50"}


def test_edit_page_shows_the_stored_limits(app, trader, trader_client):
    account_id = _account(app, trader.id, daily_loss_limit=Decimal("15000"))

    html = trader_client.get(f"/accounts/edit/{account_id}").get_data(as_text=True)

    assert re.search(r'name="daily_loss_limit"[^>]*value="15000(\.00)?"', html)
    assert re.search(r'name="daily_profit_limit"[^>]*value=""', html)


def test_edit_with_empty_limits_clears_them(app, trader, trader_client):
    account_id = _account(app, trader.id, daily_loss_limit=Decimal("15000"), daily_profit_limit=Decimal("9000"))

    response = _edit(trader_client, account_id, daily_loss_limit="", daily_profit_limit="")

    assert response.status_code == 302
    assert _stored(account_id) == (None, None, "Main")


def test_edit_without_a_limit_change_writes_no_limit_audit_entry(app, trader, trader_client):
    account_id = _account(app, trader.id, daily_loss_limit=Decimal("15000"))

    _edit(trader_client, account_id, name="Renamed", daily_loss_limit="15000.00")

    assert _stored(account_id) == (Decimal("15000.00"), None, "Renamed")
    assert db.session.scalar(select(func.count()).select_from(ActivityLog).where(
        ActivityLog.action == "account_limits_updated")) == 0


@pytest.mark.parametrize(("field", "raw", "message"), [
    ("daily_loss_limit", "0", POSITIVE),
    ("daily_loss_limit", "-5000", POSITIVE),
    ("daily_profit_limit", "0", POSITIVE),
    ("daily_profit_limit", "-0.5", POSITIVE),
    ("daily_loss_limit", "100.125", "Use at most 2 decimal places."),
    ("daily_profit_limit", "1e12", "Must be at most 100,000,000,000."),
    ("daily_loss_limit", "NaN", "Enter a number."),
    ("daily_profit_limit", "lots", "Not a valid decimal value."),
])
def test_edit_with_a_bad_limit_is_a_field_error_and_saves_nothing(app, trader, trader_client, field, raw, message):
    account_id = _account(app, trader.id, daily_loss_limit=Decimal("15000"))

    response = _edit(trader_client, account_id, name="Renamed", **{field: raw})

    assert response.status_code == 400
    assert _field_error(response.get_data(as_text=True), field) == message
    assert _stored(account_id) == (Decimal("15000.00"), None, "Main")  # the rename is not saved either


def test_add_with_a_bad_limit_saves_no_account(trader_client):
    form = {"account_name": "New", "host_url": HOST, "api_key": "k" * 32, "daily_loss_limit": "0"}

    response = trader_client.post_form("/accounts/add", form, page="/accounts/add")

    assert response.status_code == 400
    assert _field_error(response.get_data(as_text=True), "daily_loss_limit") == POSITIVE
    assert db.session.scalar(select(func.count()).select_from(TradingAccount)) == 0


def test_add_over_the_paper_broker_stores_the_limits(alice, broker, apikey):
    form = {"account_name": "Main", "host_url": broker.url, "websocket_url": broker.ws_url, "api_key": apikey,
            "daily_loss_limit": "25000", "daily_profit_limit": ""}

    response = alice.post_form("/accounts/add", form, page="/accounts/add")

    assert response.status_code == 302
    [account] = db.session.scalars(select(TradingAccount)).all()
    assert (account.daily_loss_limit, account.daily_profit_limit) == (Decimal("25000.00"), None)


def test_another_users_account_limits_cannot_be_edited(app, trader, trader_client):
    carol = make_user(app, "carol")
    account_id = _account(app, carol.id, "Carol main", daily_loss_limit=Decimal("5000"))

    response = _edit(trader_client, account_id, name="Carol main", daily_loss_limit="999999")

    assert response.status_code == 404
    assert _stored(account_id) == (Decimal("5000.00"), None, "Carol main")


def test_anonymous_edit_is_sent_to_sign_in(app, trader):
    account_id = _account(app, trader.id)

    response = Browserless(app.test_client()).get(f"/accounts/edit/{account_id}")

    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


@pytest.mark.parametrize("column", ["daily_loss_limit", "daily_profit_limit"])
def test_database_refuses_a_limit_of_zero(app, trader, column):
    db.session.add(TradingAccount(user_id=trader.id, account_name="X", host_url=HOST, api_key_encrypted="x",
                                  api_key_last4="abcd", **{column: Decimal("0")}))

    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
