"""contract_spec(): the broker's /symbol figures win over the stored contract settings; the
stored row (current or next-month lot size) is the fallback. Real HTTP against the paper broker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from app.broker.client import OpenAlgoClient
from app.extensions import db
from app.models.trading_settings import TradingSettings
from app.models.users import User
from app.services.margin import tables
from app.services.margin.contracts import contract_spec, reference_future
from tests.helpers import Browserless, make_user
from tests.support.paperbroker import ADMIN_TOKEN


@pytest.fixture
def paper_client(broker, apikey) -> Iterator[OpenAlgoClient]:
    client = OpenAlgoClient(broker.url, apikey)
    yield client
    client.close()


def _set_stored(app, underlying: str, **values) -> None:
    actor = make_user(app, f"admin{underlying.lower()}", role="admin")
    row = tables.contract_row(underlying)
    current = {"lot_size": row.lot_size, "next_month_lot_size": row.next_month_lot_size,
               "freeze_qty": row.freeze_qty, "strike_step": row.strike_step, **values}
    assert tables.update_contract(db.session.get(User, actor.id), underlying, **current)


@pytest.fixture
def today(sim) -> date:
    """The paper broker's own IST date (its clock starts on a fixed day in the tests)."""
    return datetime.fromisoformat(sim.call("GET", "/sim/clock")["ist"]).date()


def test_broker_lot_size_wins_over_a_stored_one(app, paper_client, today):
    _set_stored(app, "NIFTY", lot_size=50, next_month_lot_size=50)
    symbol, exchange, expiry = reference_future(paper_client, "NIFTY", today)
    spec = contract_spec(paper_client, "NIFTY", symbol, exchange, expiry, today=today)
    assert (spec.lot_size, spec.freeze_qty, spec.max_lots_per_order) == (65, 1755, 27)
    assert (spec.lot_source, spec.freeze_source) == ("broker", "broker")
    assert (spec.stored_lot_size, spec.stored_freeze_qty) == (50, 1755)
    assert spec.differs and spec.broker_error is None


def test_without_a_broker_the_stored_settings_answer(app):
    spec = contract_spec(None, "BANKNIFTY", None, None, None, today=date(2026, 12, 1))
    assert (spec.lot_size, spec.freeze_qty, spec.max_lots_per_order, spec.lot_source) == (30, 600, 20, "settings")


@pytest.mark.parametrize("expiry,expected", [
    (date(2026, 12, 29), 30),  # this calendar month: the current lot size
    (date(2027, 1, 26), 35),  # a later month: the next-month lot size
    (None, 30),
])
def test_next_month_lot_size_applies_to_later_months(app, expiry, expected):
    _set_stored(app, "BANKNIFTY", next_month_lot_size=35)
    spec = contract_spec(None, "BANKNIFTY", None, None, expiry, today=date(2026, 12, 1))
    assert spec.lot_size == expected and spec.max_lots_per_order == 600 // expected


def test_a_symbol_the_broker_does_not_know_falls_back_to_stored_with_the_reason(app, paper_client, today):
    spec = contract_spec(paper_client, "SENSEX", "SENSEX01JAN99FUT", "BFO", None, today=today)
    assert (spec.lot_size, spec.freeze_qty, spec.lot_source) == (20, 1000, "settings")
    assert spec.broker_error and "SENSEX01JAN99FUT" in spec.broker_error


def test_settings_page_shows_the_broker_value_when_it_differs(app_factory, broker, apikey, today, monkeypatch):
    from app.margin import settings_routes

    at = datetime(today.year, today.month, today.day, 5, 0, tzinfo=UTC)
    monkeypatch.setattr(settings_routes, "utcnow", lambda: at)
    application = app_factory(PAPER_BROKER_URL=broker.url, PAPER_BROKER_WS_URL=broker.ws_url,
                              PAPERBROKER_ADMIN_TOKEN=ADMIN_TOKEN, BROKER_READ_TIMEOUT=3.0)
    with application.app_context():
        make_user(application, "alice", role="admin")
        admin = Browserless(application.test_client())
        admin.login("alice")
        form = {"account_name": "Paper", "host_url": broker.url, "websocket_url": broker.ws_url, "api_key": apikey}
        assert admin.post_form("/accounts/add", form, page="/accounts/add").status_code == 302
        _set_stored(application, "NIFTY", lot_size=75, next_month_lot_size=75, freeze_qty=1800)
        html = admin.get("/margin/settings").get_data(as_text=True)
        broker_cell = html.split('data-testid="broker-NIFTY">', 1)[1].split("</td>", 1)[0]
        assert "lot 65 · freeze 1755" in broker_cell
        same_cell = html.split('data-testid="broker-BANKNIFTY">', 1)[1].split("</td>", 1)[0]
        assert "same" in same_cell
        assert 'data-testid="max-lots-NIFTY">24<' in html  # stored 1,800 ÷ 75
        db.session.expire_all()
        stored = db.session.scalars(select(TradingSettings).where(TradingSettings.underlying == "NIFTY")).one()
        assert stored.lot_size == 75  # showing the broker's figure never overwrites the stored one


def test_reference_future_is_the_nearest_live_futures_contract(app, paper_client, today):
    symbol, exchange, expiry = reference_future(paper_client, "NIFTY", today)
    assert exchange == "NFO" and symbol == f"NIFTY{expiry.strftime('%d%b%y').upper()}FUT"
    assert today <= expiry <= today + timedelta(days=40)
