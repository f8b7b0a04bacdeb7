"""The risk event page and its CSV: filters, IST times, pages, CSV quoting and formula guard, and
only ever the signed-in user's own events (admins included)."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from app.extensions import db
from app.models import RunAccount, StrategyRun
from app.services.risk.events import record_risk_event
from tests.helpers import Browserless, make_user
from tests.support.risk_events import Owned, owned_world

# 03:50 UTC is 09:20 IST; 18:29:59 UTC on the 5th is the last second of the IST 5th.
MORNING = datetime(2026, 1, 5, 3, 50, tzinfo=UTC)
LAST_SECOND = datetime(2026, 1, 5, 18, 29, 59, tzinfo=UTC)
NEXT_IST_DAY = datetime(2026, 1, 5, 18, 30, tzinfo=UTC)


def _event(owner: Owned, event_type: str, at: datetime, *, account: int | None = 0, **values) -> int:
    """An event of `owner`'s run on its account number `account` (None = combined)."""
    run = db.session.get(StrategyRun, owner.run_id)
    row = db.session.get(RunAccount, owner.run_account_ids[account]) if account is not None else None
    event = record_risk_event(user_id=owner.user_id, event_type=event_type, run=run, run_account=row,
                              action=values.pop("action", "close_all"), at=at, commit=True, **values)
    return event.id


@pytest.fixture
def world(app):
    alice_user = make_user(app, "alice")
    bob_user = make_user(app, "bob")
    alice, bob = owned_world(app, alice_user.id, "A"), owned_world(app, bob_user.id, "B")
    ids = {
        "a_loss": _event(alice, "max_loss", MORNING, threshold=Decimal("-5000"), current_value=Decimal("-5012.5"),
                         intent_ids=[11, 12], detail="P&L -5,012.50 at or below -5,000"),
        "a_trail": _event(alice, "trailing_sl", LAST_SECOND, account=1, threshold=Decimal("1200"),
                          current_value=Decimal("1195")),
        "a_stale": _event(alice, "prices_unreliable", NEXT_IST_DAY, account=None, action="held",
                          current_value=Decimal("14"), detail="prices 14 s old"),
        "b_loss": _event(bob, "max_loss", MORNING, detail="Bob's secret breach"),
    }
    client = Browserless(app.test_client())
    client.login("alice")
    return {"app": app, "client": client, "alice": alice, "bob": bob, "ids": ids}


def _shown(html: str) -> set[int]:
    return {int(x) for x in re.findall(r'data-risk-event="(\d+)"', html)}


def _csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_page_shows_own_events_newest_first_with_ist_times(world):
    response = world["client"].get("/strategy/risk-events")

    html = response.get_data(as_text=True)
    ids = world["ids"]
    assert response.status_code == 200
    assert re.findall(r'data-risk-event="(\d+)"', html) == [str(ids["a_stale"]), str(ids["a_trail"]),
                                                            str(ids["a_loss"])]
    assert "05 Jan 2026, 09:20:00 IST" in html  # 03:50 UTC
    assert "05 Jan 2026, 23:59:59 IST" in html and "06 Jan 2026, 00:00:00 IST" in html
    assert "-5,012.50" in html and "11, 12 · pending" in html and "Combined" in html
    assert "Bob&#39;s secret breach" not in html and "Bob's secret breach" not in html and "B strategy" not in html


def test_admin_sees_only_their_own_events_here(world, app):
    make_user(app, "root", role="admin")
    admin = Browserless(app.test_client())
    admin.login("root")

    html = admin.get("/strategy/risk-events").get_data(as_text=True)
    rows = _csv(admin.get("/strategy/risk-events.csv"))

    assert _shown(html) == set() and "No risk events match." in html
    assert rows == []


@pytest.mark.parametrize(("query", "expected"), [
    ("type=max_loss", {"a_loss"}),
    ("type=trailing_sl", {"a_trail"}),
    ("account={account0}", {"a_loss"}),
    ("account={account1}", {"a_trail"}),
    ("account=combined", {"a_stale"}),
    ("strategy={strategy}", {"a_loss", "a_trail", "a_stale"}),
    ("date=2026-01-05", {"a_loss", "a_trail"}),  # the IST day ends at 18:30 UTC
    ("date=2026-01-06", {"a_stale"}),
    ("date=2026-01-04", set()),
    ("type=max_loss&date=2026-01-06", set()),
    ("account={account1}&date=2026-01-05&type=trailing_sl", {"a_trail"}),
])
def test_filters_select_the_matching_events(world, query, expected):
    alice = world["alice"]
    url = "/strategy/risk-events?" + query.format(account0=alice.account_ids[0], account1=alice.account_ids[1],
                                                  strategy=alice.strategy_id)

    html = world["client"].get(url).get_data(as_text=True)
    rows = _csv(world["client"].get(url.replace("/risk-events?", "/risk-events.csv?")))

    wanted = {world["ids"][name] for name in expected}
    assert _shown(html) == wanted
    assert len(rows) == len(wanted)


@pytest.mark.parametrize("param", ["strategy", "account"])
def test_filter_by_another_users_id_finds_nothing(world, param):
    bob = world["bob"]
    other_id = bob.strategy_id if param == "strategy" else bob.account_ids[0]

    response = world["client"].get(f"/strategy/risk-events?{param}={other_id}")
    rows = _csv(world["client"].get(f"/strategy/risk-events.csv?{param}={other_id}"))

    assert response.status_code == 200
    assert _shown(response.get_data(as_text=True)) == set()
    assert rows == []


def test_csv_holds_only_the_users_rows_with_every_column(world):
    rows = _csv(world["client"].get("/strategy/risk-events.csv"))

    alice = world["alice"]
    assert [r["event_type"] for r in rows] == ["prices_unreliable", "trailing_sl", "max_loss"]
    loss = rows[2]
    assert loss == {
        "time_ist": "2026-01-05 09:20:00 IST", "time_utc": "2026-01-05T03:50:00+00:00", "strategy": "A strategy",
        "run_id": str(alice.run_id), "account": "A1", "event_type": "max_loss", "threshold": "-5000.00",
        "current_value": "-5012.50", "action": "close_all", "exit_request_id": "", "intent_ids": "11 12",
        "outcome": "pending", "detail": "P&L -5,012.50 at or below -5,000",
    }
    assert rows[0]["account"] == "Combined" and rows[0]["action"] == "held"
    assert "Bob" not in world["client"].get("/strategy/risk-events.csv").get_data(as_text=True)


def test_csv_quotes_separators_and_guards_formulas(app, world):
    alice = world["alice"]
    with app.app_context():
        run = db.session.get(StrategyRun, alice.run_id)
        run.strategy_name = '=HYPERLINK("http://evil.example","x")'
        db.session.commit()
        _event(alice, "manual_exit", MORNING, account=None, action="close_all",
               detail='Closed by "Alice", from the run page\nsecond line')
        _event(alice, "leg_sl", MORNING, account=None, detail="+91 called; -1 lot; @once")

    body = world["client"].get("/strategy/risk-events.csv?account=combined").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(body)))

    by_type = {r["event_type"]: r for r in rows}
    assert by_type["manual_exit"]["strategy"] == "'=HYPERLINK(\"http://evil.example\",\"x\")"
    assert by_type["manual_exit"]["detail"] == 'Closed by "Alice", from the run page\nsecond line'
    assert by_type["leg_sl"]["detail"] == "'+91 called; -1 lot; @once"
    assert '"Closed by ""Alice"", from the run page\nsecond line"' in body  # RFC 4180 quoting
    assert by_type["prices_unreliable"]["current_value"] == "14.00"  # numbers are never prefixed


def test_pages_split_the_events_and_keep_the_filters(app_factory):
    application = app_factory(RISK_EVENTS_PAGE_SIZE=2)
    with application.app_context():
        user = make_user(application, "alice")
        alice = owned_world(application, user.id, "A", accounts=1)
        ids = [_event(alice, "max_loss", datetime(2026, 1, 5, 4, minute, tzinfo=UTC)) for minute in range(3)]
        _event(alice, "max_profit", datetime(2026, 1, 5, 5, 0, tzinfo=UTC))
        client = Browserless(application.test_client())
        client.login("alice")

        first = client.get("/strategy/risk-events?type=max_loss").get_data(as_text=True)
        second = client.get("/strategy/risk-events?type=max_loss&page=2").get_data(as_text=True)
        beyond = client.get("/strategy/risk-events?type=max_loss&page=9").get_data(as_text=True)

    assert _shown(first) == {ids[2], ids[1]} and _shown(second) == {ids[0]} and _shown(beyond) == set()
    assert "Page 1 of 2" in first
    next_link = re.search(r'href="([^"]+)" data-testid="next-page"', first)
    assert next_link is not None and "type=max_loss" in next_link.group(1) and "page=2" in next_link.group(1)


@pytest.mark.parametrize("query", ["type=max_drawdown", "date=2026-13-01", "date=05-01-2026", "strategy=abc",
                                   "account=-1", "strategy=" + "9" * 40])
def test_bad_filter_values_are_400(world, query):
    assert world["client"].get(f"/strategy/risk-events?{query}").status_code == 400
    assert world["client"].get(f"/strategy/risk-events.csv?{query}").status_code == 400


def test_page_number_out_of_bounds_is_400(world):
    assert world["client"].get("/strategy/risk-events?page=0").status_code == 400


@pytest.mark.parametrize("url", ["/strategy/risk-events", "/strategy/risk-events.csv"])
def test_risk_event_pages_require_sign_in(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


def test_nav_links_to_the_risk_events_page(world):
    html = world["client"].get("/dashboard").get_data(as_text=True)

    assert re.search(r'href="/strategy/risk-events"[^>]*data-testid="nav-risk-events"', html)
