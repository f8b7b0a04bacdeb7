"""The audit log: visibility, filters, pagination, CSV export, redaction and time zones."""

import csv
import io
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.extensions import db
from app.models.audit import ActivityLog
from app.services import audit
from app.timeutil import format_ist


def _add(username, action, *, user_id=None, outcome="success", at=None, details=None, category="auth"):
    db.session.add(ActivityLog(user_id=user_id, username=username, action=action, category=category,
                               outcome=outcome, details=details or {},
                               created_at=at or datetime.now(UTC)))
    db.session.commit()


def test_admin_sees_every_entry_and_trader_only_own(app, admin, trader, admin_client, trader_client):
    admin_page = admin_client.get("/audit/").get_data(as_text=True)
    trader_page = trader_client.get("/audit/").get_data(as_text=True)
    assert "alice" in admin_page and "bob" in admin_page
    assert "bob" in trader_page
    assert "<td>alice</td>" not in trader_page


def test_trader_cannot_widen_view_with_user_filter(app, admin, trader, admin_client, trader_client):
    page = trader_client.get("/audit/?user=alice").get_data(as_text=True)
    assert "<td>alice</td>" not in page
    export = trader_client.get("/audit/export.csv?user=alice").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(export)))
    assert rows and {r["user"] for r in rows} == {"bob"}


def test_filters_by_action_outcome_and_ist_dates(app, admin, admin_client):
    # 18:45 UTC on Jan 9 is 00:15 IST on Jan 10: it belongs to the IST day Jan 10.
    _add("x", "login", outcome="failure", at=datetime(2026, 1, 9, 18, 45, tzinfo=UTC))
    _add("y", "login", outcome="success", at=datetime(2026, 1, 9, 18, 15, tzinfo=UTC))
    _add("z", "logout", at=datetime(2026, 1, 10, 12, 0, tzinfo=UTC))
    export = admin_client.get("/audit/export.csv?action=login&from=2026-01-10&to=2026-01-10").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(export)))
    assert [r["user"] for r in rows] == ["x"]
    assert rows[0]["time_ist"] == "2026-01-10 00:15:00 IST"
    failures = admin_client.get("/audit/export.csv?outcome=failure").get_data(as_text=True)
    assert [r["user"] for r in csv.DictReader(io.StringIO(failures))] == ["x"]


def test_bad_filter_values_get_400_not_500(app, admin_client):
    assert admin_client.get("/audit/?from=31-01-2026").status_code == 400
    assert admin_client.get("/audit/?outcome=maybe").status_code == 400


def test_pagination(app, admin, app_factory):
    for i in range(7):
        _add("u", f"action{i}", at=datetime(2026, 2, 1, tzinfo=UTC) + timedelta(minutes=i))
    from tests.helpers import Browserless

    client = Browserless(app_factory(AUDIT_PAGE_SIZE=3).test_client())
    client.login("alice")
    page1 = client.get("/audit/?user=u").get_data(as_text=True)
    page3 = client.get("/audit/?user=u&page=3").get_data(as_text=True)
    assert "Page 1 of 3" in page1
    assert _table_actions(page1) == ["action6", "action5", "action4"]
    assert _table_actions(page3) == ["action0"]


def _table_actions(html: str) -> list[str]:
    import re

    table = html[html.index('data-testid="audit-table"'):]
    return re.findall(r"</span> (action\d)</td>", table)


def test_csv_export_neutralizes_formulas(app, admin, admin_client):
    _add("=cmd|' /C calc'!A0", "login", outcome="failure")
    export = admin_client.get("/audit/export.csv?outcome=failure").get_data(as_text=True)
    row = next(csv.DictReader(io.StringIO(export)))
    assert row["user"].startswith("'=")


def test_secrets_in_details_are_redacted(app, admin):
    entry = audit.record("test", category="security", details={
        "password": "hunter2", "api_key": "abc", "nested": {"token": "t", "ok": 1}, "list": [{"secret": "s"}]})
    assert entry.details == {"password": "[redacted]", "api_key": "[redacted]",
                             "nested": {"token": "[redacted]", "ok": 1}, "list": [{"secret": "[redacted]"}]}


def test_entries_record_ip_user_agent_and_aware_utc(app, trader, client):
    client.login("bob")
    entry = db.session.scalar(select(ActivityLog).where(ActivityLog.action == "login"))
    assert entry.ip_address == "127.0.0.1"
    assert entry.user_agent is not None
    assert entry.created_at.tzinfo is not None and entry.created_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - entry.created_at) < timedelta(minutes=1)


def test_naive_datetimes_are_refused(app):
    import pytest
    from sqlalchemy.exc import StatementError

    db.session.add(ActivityLog(username="n", action="x", category="c", outcome="success", details={},
                               created_at=datetime(2026, 1, 1, 12, 0)))
    with pytest.raises(StatementError, match="naive datetime"):
        db.session.commit()
    db.session.rollback()


def test_times_are_displayed_in_ist():
    assert format_ist(datetime(2026, 3, 31, 18, 30, tzinfo=UTC)) == "01 Apr 2026, 00:00:00 IST"


def test_audit_requires_login(app, client):
    assert client.get("/audit/").status_code == 302
    assert client.get("/audit/export.csv").status_code == 302
