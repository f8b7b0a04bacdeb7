"""The admins' trading halt: set with a reason, shown, enforced, lifted, audited, admins only."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models.audit import ActivityLog
from app.models.settings import AppSetting
from app.models.users import User
from app.services.execution import halt as halts
from app.services.execution.errors import InvalidHaltRequest, TradingHalted

PAGE = "/admin/trading-halt"
BANNER = 'data-testid="trading-halt-banner"'


def _audit(action: str) -> list[ActivityLog]:
    return list(db.session.scalars(select(ActivityLog).where(ActivityLog.action == action).order_by(ActivityLog.id)))


def _admin_row() -> User:
    return db.session.scalar(select(User).where(User.username == "alice"))


def test_halt_by_admin_with_reason_halts_audits_and_shows_banner(app, admin_client):
    # Act
    response = admin_client.post_form(PAGE, {"reason": "  Exchange glitch  "}, page=PAGE)

    # Assert: redirected back with a flash, the halt stored, audited and shown on every page.
    assert response.status_code == 302 and response.headers["Location"].endswith(PAGE)
    halt = halts.current_halt()
    assert halt is not None and (halt.reason, halt.set_by) == ("Exchange glitch", "alice")
    assert halt.set_at.tzinfo is not None and halt.set_at.utcoffset().total_seconds() == 0
    [entry] = _audit("trading_halted")
    assert (entry.username, entry.category, entry.outcome, entry.details) == (
        "alice", "admin", "success", {"reason": "Exchange glitch"})
    page = admin_client.get(PAGE).get_data(as_text=True)
    assert "Trading is halted for everyone: Exchange glitch" in page  # the flash
    dashboard = admin_client.get("/dashboard").get_data(as_text=True)
    assert BANNER in dashboard and "Exchange glitch" in dashboard


def test_halt_while_halted_replaces_reason_and_audits_previous(app, admin_client):
    admin_client.post_form(PAGE, {"reason": "first"}, page=PAGE)

    admin_client.post_form(PAGE, {"reason": "second"}, page=PAGE)

    assert halts.current_halt().reason == "second"
    assert [e.details for e in _audit("trading_halted")] == [
        {"reason": "first"}, {"reason": "second", "previous_reason": "first"}]


@pytest.mark.parametrize("reason", ["", "   "])
def test_halt_without_reason_is_field_error_and_changes_nothing(app, admin_client, reason):
    response = admin_client.post_form(PAGE, {"reason": reason}, page=PAGE)

    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'data-field-error="reason"' in html and "Give a reason for halting trading." in html
    assert halts.current_halt() is None
    assert _audit("trading_halted") == []


def test_halt_with_too_long_reason_is_field_error(app, admin_client):
    response = admin_client.post_form(PAGE, {"reason": "x" * (halts.REASON_MAX + 1)}, page=PAGE)

    assert response.status_code == 400
    assert 'data-field-error="reason"' in response.get_data(as_text=True)
    assert halts.current_halt() is None


def test_halt_without_csrf_token_is_refused(app, admin_client):
    response = admin_client.post(PAGE, data={"reason": "no token"})

    assert response.status_code == 400
    assert halts.current_halt() is None


@pytest.mark.parametrize("url", [PAGE, PAGE + "/lift"])
def test_halt_routes_posted_by_trader_are_forbidden(app, admin, trader_client, url):
    response = trader_client.post_form(url, {"reason": "not mine to halt"}, page="/dashboard")

    assert response.status_code == 403
    assert halts.current_halt() is None
    assert _audit("trading_halted") == []


def test_halt_page_for_trader_is_forbidden_and_banner_hidden(app, admin_client, trader_client):
    admin_client.post_form(PAGE, {"reason": "maintenance"}, page=PAGE)

    assert trader_client.get(PAGE).status_code == 403
    assert BANNER not in trader_client.get("/dashboard").get_data(as_text=True)


def test_halt_page_signed_out_redirects_to_login(app, client):
    response = client.get(PAGE)

    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_lift_by_admin_lifts_audits_and_hides_banner(app, admin_client):
    admin_client.post_form(PAGE, {"reason": "maintenance"}, page=PAGE)

    response = admin_client.post_form(PAGE + "/lift", page=PAGE)

    assert response.status_code == 302
    assert halts.current_halt() is None
    assert db.session.get(AppSetting, halts.HALT_KEY) is None
    [entry] = _audit("trading_halt_lifted")
    assert entry.username == "alice"
    assert (entry.details["reason"], entry.details["set_by"]) == ("maintenance", "alice")
    page = admin_client.get(PAGE).get_data(as_text=True)
    assert "The trading halt is lifted; new entries are accepted again." in page
    assert BANNER not in page and "Trading is allowed." in page


def test_lift_when_not_halted_flashes_and_audits_nothing(app, admin_client):
    admin_client.post_form(PAGE + "/lift", page=PAGE)

    assert "Trading was not halted." in admin_client.get(PAGE).get_data(as_text=True)
    assert _audit("trading_halt_lifted") == []


def test_require_not_halted_while_halted_raises_with_reason(app, admin):
    halts.halt_trading(_admin_row(), "RBI circular")

    with pytest.raises(TradingHalted) as caught:
        halts.require_not_halted()

    assert caught.value.reason == "RBI circular" and caught.value.set_by == "alice"
    assert caught.value.user_message == ("Trading is halted by an administrator: RBI circular. "
                                         "No new orders are accepted until the halt is lifted.")


def test_require_not_halted_after_lift_passes(app, admin):
    halts.halt_trading(_admin_row(), "brief")
    halts.lift_halt(_admin_row())

    assert halts.require_not_halted() is None


def test_halt_trading_with_blank_reason_raises_invalid_request(app, admin):
    with pytest.raises(InvalidHaltRequest):
        halts.halt_trading(_admin_row(), " \t ")

    assert halts.current_halt() is None


def test_current_halt_with_unreadable_setting_counts_as_halted(app):
    db.session.add(AppSetting(key=halts.HALT_KEY, value="{not json"))
    db.session.commit()

    halt = halts.current_halt()

    assert halt is not None and halt.set_by == "unknown"
    with pytest.raises(TradingHalted):
        halts.require_not_halted()


def test_current_halt_reads_stored_json(app):
    db.session.add(AppSetting(key=halts.HALT_KEY, value='{"reason": "r", "set_by": "alice", '
                                                          '"set_at": "2026-03-02T04:00:00+00:00"}'))
    db.session.commit()

    assert halts.current_halt() == halts.Halt("r", "alice", datetime(2026, 3, 2, 4, 0, tzinfo=UTC))
