"""Admin pages for the trading calendar, the calendar service, and the /healthz/services page."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from app.domain.market_hours import IST
from app.extensions import db
from app.models.audit import ActivityLog
from app.models.calendar import MarketHoliday, SpecialTradingSession, TradingHoursTemplate, TradingSession
from app.models.services import ServiceHeartbeat, ServiceLease
from app.services import calendar as calendar_service

WEDNESDAY_10 = datetime(2026, 11, 25, 10, 0, tzinfo=IST)
CAL_PAGE = "/admin/calendar"


@pytest.fixture(autouse=True)
def _health_blueprint(app):
    """Register /healthz/services until create_app does it."""
    from app.services_health import bp

    if "services_health" not in app.blueprints:
        app.register_blueprint(bp)


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _admin_actions() -> list[str]:
    return list(db.session.scalars(select(ActivityLog.action).where(ActivityLog.category == "admin")
                                   .order_by(ActivityLog.id)))


def _template() -> TradingHoursTemplate:
    return db.session.scalars(select(TradingHoursTemplate).order_by(TradingHoursTemplate.id)).first()


def _calendar_routes(app) -> list[tuple[str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("admin.calendar_") or rule.endpoint.startswith("services_health."):
            url = rule.rule.replace("<int:holiday_id>", "1").replace("<int:special_id>", "1") \
                .replace("<int:template_id>", "1")
            routes.extend((method, url) for method in sorted(rule.methods - {"HEAD", "OPTIONS"}))
    return routes


def test_calendar_routes_refuse_trader_with_403(app, trader_client):
    routes = _calendar_routes(app)
    assert len(routes) >= 8
    for method, url in routes:
        if method == "GET":
            response = trader_client.get(url)
        else:
            response = trader_client.post_form(url, {"holiday_date": "2026-12-01", "exchange": "NSE",
                                                     "description": "x"}, page="/dashboard")
        assert response.status_code == 403, (method, url)
    assert _count(MarketHoliday) > 0 and not _admin_actions()


def test_calendar_page_redirects_anonymous_to_login(client):
    response = client.get(CAL_PAGE)
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_services_health_anonymous_gets_401_json(client):
    response = client.get("/healthz/services")
    assert response.status_code == 401 and response.is_json


def test_calendar_page_lists_seeded_calendar(admin_client):
    page = admin_client.get(f"{CAL_PAGE}?year=2026")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'data-holiday="2026-11-24-NSE"' in html and "Guru Nanak Jayanti" in html
    assert "NSE/BSE equity and F&amp;O" in html and "09:15–15:30" in html


def test_users_page_links_to_calendar(admin_client):
    assert 'href="/admin/calendar"' in admin_client.get("/admin/users").get_data(as_text=True)


def test_add_holiday_is_honoured_by_market_is_open_and_audited(app, admin_client):
    assert calendar_service.market_is_open("NSE", WEDNESDAY_10) is True
    response = admin_client.post_form(f"{CAL_PAGE}/holidays", {
        "holiday_date": "2026-11-25", "exchange": "NSE", "description": "Exchange outage"}, page=CAL_PAGE)
    assert response.status_code == 302
    row = db.session.scalar(select(MarketHoliday).where(MarketHoliday.holiday_date == date(2026, 11, 25)))
    assert (row.exchange, row.description) == ("NSE", "Exchange outage")
    assert calendar_service.market_is_open("NSE", WEDNESDAY_10) is False
    assert calendar_service.market_is_open("BSE", WEDNESDAY_10) is True
    entry = db.session.scalar(select(ActivityLog).where(ActivityLog.action == "calendar_holiday_added"))
    assert entry.username == "alice" and entry.details["exchanges"] == ["NSE"]


def test_add_holiday_on_all_exchanges_creates_one_row_each(admin_client):
    admin_client.post_form(f"{CAL_PAGE}/holidays", {
        "holiday_date": "2026-12-01", "exchange": "ALL", "description": "Election"}, page=CAL_PAGE)
    exchanges = db.session.scalars(select(MarketHoliday.exchange)
                                   .where(MarketHoliday.holiday_date == date(2026, 12, 1))).all()
    assert sorted(exchanges) == ["BFO", "BSE", "NFO", "NSE"]


@pytest.mark.parametrize(("data", "field"), [
    ({"holiday_date": "2026-02-30", "exchange": "NSE", "description": "Bad"}, "holiday_date"),
    ({"holiday_date": "", "exchange": "NSE", "description": "Bad"}, "holiday_date"),
    ({"holiday_date": "2026-12-01", "exchange": "LSE", "description": "Bad"}, "exchange"),
    ({"holiday_date": "2026-12-01", "exchange": "NSE", "description": "  "}, "description"),
    ({"holiday_date": "2026-11-24", "exchange": "NSE", "description": "Twice"}, "holiday_date"),
])
def test_add_holiday_bad_input_shows_field_error_and_saves_nothing(admin_client, data, field):
    before = _count(MarketHoliday)
    response = admin_client.post_form(f"{CAL_PAGE}/holidays", data, page=CAL_PAGE)
    assert response.status_code == 400
    assert f'data-field-error="{field}"' in response.get_data(as_text=True)
    assert _count(MarketHoliday) == before and not _admin_actions()


def test_delete_holiday_reopens_market_and_is_audited(admin_client):
    admin_client.post_form(f"{CAL_PAGE}/holidays", {
        "holiday_date": "2026-11-25", "exchange": "NSE", "description": "Outage"}, page=CAL_PAGE)
    holiday_id = db.session.scalar(select(MarketHoliday.id).where(MarketHoliday.holiday_date == date(2026, 11, 25)))
    response = admin_client.post_form(f"{CAL_PAGE}/holidays/{holiday_id}/delete", page=CAL_PAGE)
    assert response.status_code == 302
    assert db.session.get(MarketHoliday, holiday_id) is None
    assert calendar_service.market_is_open("NSE", WEDNESDAY_10) is True
    assert _admin_actions() == ["calendar_holiday_added", "calendar_holiday_deleted"]


def test_delete_holiday_by_get_is_not_allowed(admin_client):
    assert admin_client.get(f"{CAL_PAGE}/holidays/1/delete").status_code == 405


def test_add_special_session_on_holiday_opens_market(admin_client):
    evening = datetime(2026, 11, 24, 18, 30, tzinfo=IST)
    assert calendar_service.market_is_open("NSE", evening) is False
    response = admin_client.post_form(f"{CAL_PAGE}/special-sessions", {
        "session_date": "2026-11-24", "exchange": "NSE", "start_time": "18:00", "end_time": "19:00",
        "description": "Special session"}, page=CAL_PAGE)
    assert response.status_code == 302
    assert calendar_service.market_is_open("NSE", evening) is True
    assert calendar_service.services_should_run("NSE", datetime(2026, 11, 24, 17, 45, tzinfo=IST)) is True
    assert _admin_actions() == ["calendar_special_session_added"]


def test_add_special_session_end_before_start_shows_field_error_and_saves_nothing(admin_client):
    response = admin_client.post_form(f"{CAL_PAGE}/special-sessions", {
        "session_date": "2026-11-08", "exchange": "NSE", "start_time": "19:00", "end_time": "18:00",
        "description": "Muhurat"}, page=CAL_PAGE)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'data-field-error="end_time"' in html and "must end after it starts" in html
    assert _count(SpecialTradingSession) == 0 and not _admin_actions()


def test_delete_special_session_is_audited(admin_client):
    admin_client.post_form(f"{CAL_PAGE}/special-sessions", {
        "session_date": "2026-11-08", "exchange": "NSE", "start_time": "18:00", "end_time": "19:15",
        "description": "Muhurat"}, page=CAL_PAGE)
    special_id = db.session.scalar(select(SpecialTradingSession.id))
    assert admin_client.post_form(f"{CAL_PAGE}/special-sessions/{special_id}/delete",
                                  page=CAL_PAGE).status_code == 302
    assert _count(SpecialTradingSession) == 0
    assert _admin_actions()[-1] == "calendar_special_session_deleted"


def _template_form(template: TradingHoursTemplate, **changes) -> dict:
    data = {"name": template.name, "exchanges": template.exchanges, "pre_open_buffer_minutes": "15",
            "is_active": "y"}
    for day in range(7):
        if day < 5:
            data.update({f"sessions-{day}-active": "y", f"sessions-{day}-start_time": "09:15",
                         f"sessions-{day}-end_time": "15:30"})
        else:
            data.update({f"sessions-{day}-start_time": "", f"sessions-{day}-end_time": ""})
    data.update(changes)
    return data


def test_edit_template_page_shows_weekday_sessions(admin_client):
    template = _template()
    html = admin_client.get(f"{CAL_PAGE}/templates/{template.id}").get_data(as_text=True)
    assert 'name="sessions-0-start_time"' in html and 'value="09:15"' in html
    assert 'name="pre_open_buffer_minutes"' in html


def test_edit_template_changes_hours_buffer_and_saturday(admin_client):
    template = _template()
    url = f"{CAL_PAGE}/templates/{template.id}"
    response = admin_client.post_form(url, _template_form(template, **{
        "pre_open_buffer_minutes": "30", "sessions-5-active": "y", "sessions-5-start_time": "10:00",
        "sessions-5-end_time": "12:00", "sessions-2-end_time": "15:00"}), page=url)
    assert response.status_code == 302
    saturday = datetime(2026, 11, 28, 11, 0, tzinfo=IST)
    assert calendar_service.market_is_open("NSE", saturday) is True
    assert calendar_service.market_is_open("NSE", datetime(2026, 11, 25, 15, 0, tzinfo=IST)) is False
    assert calendar_service.services_should_run("NSE", datetime(2026, 11, 26, 8, 45, tzinfo=IST)) is True
    wednesday = db.session.scalar(select(TradingSession).where(TradingSession.template_id == template.id,
                                                               TradingSession.day_of_week == 2))
    assert wednesday.end_time == time(15, 0)
    entry = db.session.scalar(select(ActivityLog).where(ActivityLog.action == "calendar_template_updated"))
    assert entry.details["changed"] == {"pre_open_buffer_minutes": [15, 30]}
    assert set(entry.details["sessions"]) == {"2", "5"}


def test_edit_template_end_before_start_shows_field_error_and_saves_nothing(admin_client):
    template = _template()
    url = f"{CAL_PAGE}/templates/{template.id}"
    response = admin_client.post_form(url, _template_form(template, **{
        "sessions-0-start_time": "15:30", "sessions-0-end_time": "09:15", "pre_open_buffer_minutes": "45"}), page=url)
    assert response.status_code == 400
    assert 'data-field-error="sessions-0-end_time"' in response.get_data(as_text=True)
    db.session.expire_all()
    assert _template().pre_open_buffer_minutes == 15
    monday = db.session.scalar(select(TradingSession).where(TradingSession.day_of_week == 0))
    assert monday.start_time == time(9, 15) and not _admin_actions()


@pytest.mark.parametrize(("changes", "field"), [
    ({"pre_open_buffer_minutes": "-5"}, "pre_open_buffer_minutes"),
    ({"exchanges": "NSE;BSE"}, "exchanges"),
    ({"sessions-1-start_time": "9.15"}, "sessions-1-start_time"),
    ({"sessions-6-active": "y"}, "sessions-6-end_time"),
])
def test_edit_template_bad_input_is_refused(admin_client, changes, field):
    template = _template()
    url = f"{CAL_PAGE}/templates/{template.id}"
    response = admin_client.post_form(url, _template_form(template, **changes), page=url)
    assert response.status_code == 400
    assert f'data-field-error="{field}"' in response.get_data(as_text=True)
    assert not _admin_actions()


def test_calendar_cache_serves_until_invalidated(app):
    app.config["CALENDAR_CACHE_SECONDS"] = 3600
    assert calendar_service.market_is_open("NSE", WEDNESDAY_10) is True
    db.session.add(MarketHoliday(holiday_date=date(2026, 11, 25), exchange="NSE", description="Direct"))
    db.session.commit()
    assert calendar_service.market_is_open("NSE", WEDNESDAY_10) is True  # cached
    calendar_service.invalidate_cache()
    assert calendar_service.market_is_open("NSE", WEDNESDAY_10) is False


def test_services_health_json_shows_lease_and_heartbeats(app, admin_client):
    now = datetime.now(UTC)
    db.session.add(ServiceLease(name="background-services", holder="web-1:4242:abcd1234", acquired_at=now,
                                renewed_at=now, expires_at=now + timedelta(seconds=10), generation=3))
    db.session.add(ServiceHeartbeat(service="ping", holder="web-1:4242:abcd1234", status="error",
                                    last_beat_at=now, last_error="boom"))
    db.session.commit()
    response = admin_client.get("/healthz/services")
    assert response.status_code == 200 and response.is_json
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["lease"]["host"] == "web-1" and body["lease"]["pid"] == 4242 and body["lease"]["generation"] == 3
    assert body["services"][0]["service"] == "ping" and body["services"][0]["last_error"] == "boom"
    assert datetime.fromisoformat(body["lease"]["renewed_at"]) == now


def test_services_health_without_leader_reports_no_leader(admin_client):
    response = admin_client.get("/healthz/services")
    assert response.status_code == 503  # probes see it without parsing JSON
    body = response.get_json()
    assert body["status"] == "no_leader" and body["lease"] is None and body["services"] == []


def test_services_health_html_for_browsers(admin_client):
    response = admin_client.get("/healthz/services", headers={"Accept": "text/html,application/xhtml+xml"})
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert 'data-testid="no-lease"' in response.get_data(as_text=True)
