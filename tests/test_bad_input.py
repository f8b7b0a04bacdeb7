"""Bad input gets a 400 or a field error, never a 500: control characters, huge numbers, odd JSON.

The NUL cases matter most on PostgreSQL, which refuses NUL in text; CI runs this file on both.
"""

from __future__ import annotations

import re

import pytest
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import StringField, TextAreaField

from app.extensions import db
from app.forms_common import CONTROL_CHARACTER_MESSAGE, BaseForm
from app.models.accounts import TradingAccount
from app.models.audit import ActivityLog
from app.models.calendar import MarketHoliday, TradingHoursTemplate
from app.request_input import MAX_JSON_DEPTH, json_depth, parse_bounded_int
from app.services import audit
from app.text_safety import escape_control_characters, has_control_characters, replace_nul

CAL_PAGE = "/admin/calendar"
FORTY_DIGITS = "1234567890" * 4


def _template() -> TradingHoursTemplate:
    return db.session.scalars(select(TradingHoursTemplate).order_by(TradingHoursTemplate.id)).first()


def _template_form(template: TradingHoursTemplate, **changes) -> dict:
    data = {"name": template.name, "exchanges": template.exchanges, "pre_open_buffer_minutes": "15",
            "is_active": "y"}
    for day in range(7):
        data.update({f"sessions-{day}-start_time": "09:15" if day < 5 else "",
                     f"sessions-{day}-end_time": "15:30" if day < 5 else ""})
        if day < 5:
            data[f"sessions-{day}-active"] = "y"
    data.update(changes)
    return data


# --- control characters in text fields ---------------------------------------------------------

@pytest.mark.parametrize("bad", ["NSE\x00hours", "NSE\x1b[31mhours", "NSE\nhours", "NSE\x85hours", "NSE\u2028x"])
def test_control_character_in_calendar_template_name_is_field_error_and_saves_nothing(admin_client, bad):
    template = _template()
    name_before = template.name
    url = f"{CAL_PAGE}/templates/{template.id}"

    response = admin_client.post_form(url, _template_form(template, name=bad), page=url)

    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'data-field-error="name"' in html and CONTROL_CHARACTER_MESSAGE in html
    db.session.expire_all()
    assert _template().name == name_before
    assert db.session.scalar(select(func.count()).select_from(ActivityLog)
                             .where(ActivityLog.action == "calendar_template_updated")) == 0


def test_nul_in_holiday_description_is_field_error_and_saves_nothing(admin_client):
    before = db.session.scalar(select(func.count()).select_from(MarketHoliday))

    response = admin_client.post_form(f"{CAL_PAGE}/holidays", {
        "holiday_date": "2026-12-30", "exchange": "NSE", "description": "Year\x00end"}, page=CAL_PAGE)

    assert response.status_code == 400
    assert 'data-field-error="description"' in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(MarketHoliday)) == before


def test_nul_in_account_name_is_field_error_and_saves_nothing(app, trader_client):
    response = trader_client.post_form("/accounts/add", {
        "account_name": "Main\x00", "host_url": "http://127.0.0.1:5100", "api_key": "k" * 64},
        page="/accounts/add")

    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'data-field-error="account_name"' in html and CONTROL_CHARACTER_MESSAGE in html
    assert db.session.scalar(select(func.count()).select_from(TradingAccount)) == 0


def test_text_area_accepts_line_breaks_but_not_nul(app):
    class Notes(BaseForm):
        notes = TextAreaField("Notes")
        title = StringField("Title")

    with app.test_request_context(method="POST", data={"notes": "a\r\nb\tc", "title": "ok"}):
        form = Notes(meta={"csrf": False})
        assert form.validate() and form.notes.data == "a\r\nb\tc"
    with app.test_request_context(method="POST", data={"notes": "a\x00b", "title": "t\tab"}):
        form = Notes(meta={"csrf": False})
        assert not form.validate()
        assert form.errors == {"notes": [CONTROL_CHARACTER_MESSAGE], "title": [CONTROL_CHARACTER_MESSAGE]}


def test_every_form_of_the_app_uses_the_base_form(app):
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    forms = [f for f in subclasses(FlaskForm) if f.__module__.startswith("app.") and f is not BaseForm]
    assert forms, "no application forms found"
    assert [f"{f.__module__}.{f.__name__}" for f in forms if not issubclass(f, BaseForm)] == []


# --- audit: filters and storage ------------------------------------------------------------------

@pytest.mark.parametrize("arg", ["user", "action", "category"])
def test_nul_in_audit_filter_is_400(admin_client, arg):
    response = admin_client.get(f"/audit/?{arg}=x%00y")
    assert response.status_code == 400
    assert "without control characters" in response.get_data(as_text=True)


def test_audit_record_with_nul_username_is_stored_with_replacement_character(app):
    audit.record("login", category="auth", success=False, username="x\x00y",
                 details={"identifier": "x\x00y", "nested": ["a\x00"]})

    entry = db.session.scalars(select(ActivityLog).where(ActivityLog.action == "login")).one()
    assert entry.username == "x\ufffdy" and entry.outcome == "failure"
    assert entry.details == {"identifier": "x\ufffdy", "nested": ["a\ufffd"]}


def test_audit_record_cuts_an_overlong_username_to_the_column(app):
    audit.record("login", category="auth", success=False, username="u" * 300)
    entry = db.session.scalars(select(ActivityLog).where(ActivityLog.action == "login")).one()
    assert entry.username == "u" * 64


# --- integer query arguments -----------------------------------------------------------------

@pytest.mark.parametrize("page", [FORTY_DIGITS, "0", "-1", "abc", "1e3", "９", "1" * 5000])
def test_bad_audit_page_is_400(admin_client, page):
    response = admin_client.get("/audit/", query_string={"page": page})
    assert response.status_code == 400
    assert "page must be a whole number from 1 to 100000" in response.get_data(as_text=True)


def test_audit_page_within_bounds_is_served(admin_client):
    assert admin_client.get("/audit/?page=2").status_code == 200
    assert admin_client.get("/audit/?page=").status_code == 200


@pytest.mark.parametrize("year", [FORTY_DIGITS, "1" * 5000, "x\x00"])
def test_bad_calendar_year_shows_the_current_year(admin_client, year):
    assert admin_client.get(CAL_PAGE, query_string={"year": year}).status_code == 200


@pytest.mark.parametrize(("raw", "expected"), [
    ("7", 7), (" 42 ", 42), ("-3", None), ("0", None), ("101", None), (FORTY_DIGITS, None),
    ("", None), (None, None), ("4.0", None), ("٣", None), ("+5", None),
])
def test_parse_bounded_int(raw, expected):
    assert parse_bounded_int(raw, minimum=1, maximum=100) == expected


# --- JSON bodies ---------------------------------------------------------------------------------

def _post_raw_json(client, url: str, body: str, page: str):
    return client.post(url, data=body, content_type="application/json", headers={"X-CSRFToken": client.token(page)})


@pytest.mark.parametrize(("body", "message"), [
    ("[1, 2]", "The JSON body must be an object."),
    ('"text"', "The JSON body must be an object."),
    ("null", "The JSON body must be an object."),
    ("[" * 5000 + "]" * 5000, f"nested more than {MAX_JSON_DEPTH} levels"),
    ('{"a":' * 5000 + "1" + "}" * 5000, f"nested more than {MAX_JSON_DEPTH} levels"),
    ("{not json", "not valid JSON"),
])
@pytest.mark.parametrize("url", ["/auth/login", "/accounts/add", "/auth/logout", "/admin/calendar/holidays"])
def test_bad_json_body_to_a_form_route_is_json_400(trader_client, url, body, message):
    response = _post_raw_json(trader_client, url, body, "/dashboard")
    assert response.status_code == 400 and response.is_json
    assert response.json["status"] == "error" and message in response.json["message"]


def test_json_object_with_numbers_to_a_form_is_validated_as_text(trader_client):
    response = trader_client.post_json("/accounts/add", {"account_name": 5, "host_url": 6, "api_key": False},
                                       page="/accounts/add")
    assert response.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(TradingAccount)) == 0


def test_json_object_with_nested_field_value_to_a_form_is_400(trader_client):
    response = trader_client.post_json("/accounts/add", {"account_name": {"a": 1}}, page="/accounts/add")
    assert response.status_code == 400 and "strings, numbers or booleans" in response.json["message"]


def test_json_object_login_is_answered_like_a_form_login(client, trader):
    response = client.post_json("/auth/login", {"identifier": 5, "password": 7})
    assert response.status_code == 401


def test_json_body_within_depth_limit_reaches_the_route(app_factory):
    application = app_factory()

    @application.route("/echo-depth", methods=["POST"])
    def echo_depth():
        from flask import request

        return {"keys": sorted(request.get_json())}

    from tests.helpers import Browserless

    client = Browserless(application.test_client())
    nested: dict = {"leaf": 1}
    for _ in range(MAX_JSON_DEPTH - 1):
        nested = {"n": nested}
    response = client.post("/echo-depth", json=nested, headers={"X-CSRFToken": client.token()})
    assert response.status_code == 200 and response.json == {"keys": ["n"]}


@pytest.mark.parametrize(("raw", "depth"), [
    (b"{}", 1), (b"[[[]]]", 3), (b'{"a": "[[[[", "b": [1, {"c": "]]"}]}', 3), (b'"\\"[["', 0),
    (b"", 0), (b"42", 0), (b'[{"x": "\\\\"}, [[]]]', 3),
])
def test_json_depth_ignores_brackets_in_strings(raw, depth):
    assert json_depth(raw) == depth


@pytest.mark.parametrize("body", [b'{"a":"' + b'\\"' * 50_000, b'{"a":' + b'"' * 100_000, b'"' + b"\\" * 100_001])
def test_json_depth_of_unclosed_strings_is_linear(body):
    # A quadratic scan of these 100 KB bodies takes minutes (45 s for 80 KB before the fix).
    import time

    start = time.perf_counter()
    json_depth(body)
    assert time.perf_counter() - start < 5.0


def test_pathological_json_body_to_login_answers_400(client):
    body = b'{"identifier":"' + b'\\"' * 1_000_000  # 2 MB, an unclosed string
    response = client.post("/auth/login", data=body, content_type="application/json",
                           headers={"X-CSRFToken": client.token("/auth/login")})
    assert response.status_code == 400


def test_forty_digit_ids_in_urls_are_404_not_500(app, trader_client):
    failures = []
    for rule in app.url_map.iter_rules():
        if "<int:" not in rule.rule or "GET" not in (rule.methods or set()):
            continue
        url = re.sub(r"<int:[^>]+>", FORTY_DIGITS, rule.rule)
        url = re.sub(r"<[^>]+>", "1", url)
        status = trader_client.get(url).status_code
        if status != 404:
            failures.append((url, status))
    assert failures == []


# --- the pure text helpers -------------------------------------------------------------------

def test_text_helpers():
    assert has_control_characters("a\x00b") and has_control_characters("\x7f") and has_control_characters("\x9b")
    assert not has_control_characters("Zerodha – main ₹") and not has_control_characters("a\tb\n", allow_newlines=True)
    assert escape_control_characters("x\nFAKE\r\x1b[2J\u2028\x00") == "x\\nFAKE\\r\\x1b[2J\\u2028\\x00"
    assert replace_nul({"k\x00": ["v\x00", 3, None]}) == {"k\ufffd": ["v\ufffd", 3, None]}


# --- every route, as an attacker would try it --------------------------------------------------

_BAD_QUERIES = ["page=" + FORTY_DIGITS, "year=" + FORTY_DIGITS, "strikes=" + FORTY_DIGITS, "user=a%00b",
                "action=a%00", "category=%00", "outcome=%00", "from=%00", "to=9999-99-99", "sort=%00", "dir=%00",
                "underlying=%00", "expiry=%00", "format=%00", "next=%00", "id=" + FORTY_DIGITS]
_FIELD_NAMES = ["name", "account_name", "host_url", "websocket_url", "api_key", "description", "exchanges", "hosts",
                "username", "email", "identifier", "password", "current_password", "confirm", "role", "exchange",
                "holiday_date", "session_date", "start_time", "end_time", "pre_open_buffer_minutes"]
_BAD_BODIES = [
    ("json", [1, 2]), ("json", {"name": {"a": 1}}), ("json", dict.fromkeys(_FIELD_NAMES, 5)),
    ("raw", "[" * 5000 + "]" * 5000), ("form", dict.fromkeys(_FIELD_NAMES, "x\x00y")),
    ("form", {"pre_open_buffer_minutes": "9" * 5000, "holiday_date": FORTY_DIGITS, "start_time": "99:99"}),
]


def _server_error(status: int) -> bool:
    # 502/503/504 are honest answers (no broker account to ask, no service leader), not crashes.
    return status >= 500 and status not in (502, 503, 504)


@pytest.mark.parametrize("who", ["anonymous", "admin"])
def test_every_route_answers_bad_input_without_a_500(app, client, trader, admin_client, who):
    # Object ids in URLs are 1: the trader is created first, so the admin's own account is never the target.
    c = admin_client if who == "admin" else client
    token = c.token("/dashboard" if who == "admin" else "/auth/login")
    failures = []
    for rule in app.url_map.iter_rules():
        # Signing out or ending sessions would turn the rest of the admin walk into an anonymous one.
        if rule.endpoint in ("static", "auth.logout") or rule.endpoint.startswith(("auth.end_", "admin.end_")):
            continue
        url = re.sub(r"<(?:int:)?[^>]+>", "1", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if method == "GET":
                for query in _BAD_QUERIES:
                    status = c.get(f"{url}?{query}").status_code
                    if _server_error(status):
                        failures.append((method, url, query, status))
                continue
            for kind, body in _BAD_BODIES:
                if kind == "json":
                    response = c.open(url, method=method, json=body, headers={"X-CSRFToken": token})
                elif kind == "raw":
                    response = c.open(url, method=method, data=body, content_type="application/json",
                                      headers={"X-CSRFToken": token})
                else:
                    response = c.open(url, method=method, data={**body, "csrf_token": token})
                if _server_error(response.status_code):
                    failures.append((method, url, f"{kind} {str(body)[:40]}", response.status_code))
    assert failures == []
    if who == "admin":
        assert c.get("/dashboard").status_code == 200  # still signed in: every route was tried as admin
