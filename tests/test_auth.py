"""Registration, login, lockout, logout and password changes, through real HTTP requests."""

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models.audit import ActivityLog
from app.models.users import User
from tests.helpers import PASSWORD, Browserless, make_user

NEW_PASSWORD = "N3w!Secure-Pass"


def _register(client: Browserless, username="first", email="first@example.com", password=PASSWORD,
              confirm=None, page="/auth/register"):
    return client.post_form("/auth/register", {
        "username": username, "email": email, "password": password,
        "confirm": confirm if confirm is not None else password}, page=page)


def test_first_registered_user_becomes_admin_and_lands_on_dashboard(app, client):
    response = _register(client)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/dashboard")
    user = db.session.scalar(select(User).where(User.username == "first"))
    assert user.role == "admin"
    assert client.get("/dashboard").status_code == 200


def test_racing_first_registration_does_not_create_second_admin(app, client):
    from app.models.settings import AppSetting

    # Another process claimed the bootstrap but has not committed its user yet (as seen from here).
    db.session.add(AppSetting(key="admin_bootstrapped", value="other"))
    db.session.commit()
    response = _register(client)
    assert response.status_code == 400
    assert "Registration is closed" in response.get_data(as_text=True)
    assert db.session.scalar(select(User)) is None


def test_registration_is_closed_after_first_user(app, client, admin):
    page = client.get("/auth/register")
    assert page.status_code == 403
    assert b"Registration is closed" in page.data
    response = _register(client, "second", "second@example.com", page="/auth/login")
    assert response.status_code == 403
    assert db.session.scalar(select(User).where(User.username == "second")) is None


def test_open_registration_creates_trader(app, client, admin_client):
    admin_client.post_form("/admin/registration/open", page="/admin/users")
    response = _register(client, "carol", "carol@example.com")
    assert response.status_code == 302
    assert db.session.scalar(select(User.role).where(User.username == "carol")) == "trader"


def test_registration_shows_field_errors_and_saves_nothing(app, client):
    response = _register(client, "x", "not-an-email", "weak", confirm="different")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'data-field-error="username"' in html
    assert "Use 3 to 32 characters." in html
    assert "Enter a valid email address." in html
    assert "Use at least 8 characters." in html
    assert "Passwords do not match." in html
    assert db.session.scalar(select(User)) is None


def test_registration_refuses_duplicate_email(app, client, admin):
    admin_client = Browserless(app.test_client())
    admin_client.login("alice")
    admin_client.post_form("/admin/registration/open", page="/admin/users")
    response = _register(client, "other", "alice@example.com")
    assert response.status_code == 400
    assert "An account with this email exists." in response.get_data(as_text=True)


def test_login_with_username_or_email(app, client, trader):
    assert client.login("bob").status_code == 302
    client.post_form("/auth/logout", page="/dashboard")
    assert client.login("BOB@example.com").status_code == 302
    assert client.get("/dashboard").status_code == 200


def test_failed_login_message_does_not_reveal_whether_user_exists(app, client, trader):
    wrong_password = client.login("bob", "Wr0ng!password")
    unknown_user = client.login("nobody", "Wr0ng!password")
    assert wrong_password.status_code == unknown_user.status_code == 401
    message = "Invalid username or password."
    assert message in wrong_password.get_data(as_text=True)
    assert message in unknown_user.get_data(as_text=True)
    # Same page apart from the per-request CSRF token and nonce.
    def strip(r):
        return [line for line in r.get_data(as_text=True).splitlines()
                if "csrf" not in line and "nonce" not in line and 'name="identifier"' not in line]

    assert strip(wrong_password) == strip(unknown_user)


def test_repeated_failures_lock_username_and_audit_it(app, client, trader):
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        assert client.login("bob", "Wr0ng!password").status_code == 401
    locked = db.session.scalar(select(ActivityLog).where(ActivityLog.action == "account_locked"))
    assert locked is not None and locked.username == "bob" and locked.outcome == "failure"
    # Even the right password is refused while locked, with the same generic message.
    response = client.login("bob", PASSWORD)
    assert response.status_code == 401
    assert "Invalid username or password." in response.get_data(as_text=True)
    assert client.get("/dashboard").status_code == 302


def test_lock_expires(app, client, trader):
    from datetime import timedelta

    from app.models.types import utcnow

    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        client.login("bob", "Wr0ng!password")
    user = db.session.scalar(select(User).where(User.username == "bob"))
    user.locked_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert client.login("bob", PASSWORD).status_code == 302


def test_remember_me_sets_persistent_cookie(app, client, trader):
    response = client.login("bob", remember=True)
    cookies = response.headers.getlist("Set-Cookie")
    remember = [c for c in cookies if c.startswith("remember_token=")]
    assert remember and "HttpOnly" in remember[0] and "SameSite=Lax" in remember[0]


def test_login_without_remember_sets_no_remember_cookie(app, client, trader):
    response = client.login("bob")
    assert not [c for c in response.headers.getlist("Set-Cookie") if c.startswith("remember_token=")]


def test_login_next_parameter_only_follows_local_paths(app, client, trader):
    token = client.token()
    data = {"identifier": "bob", "password": PASSWORD, "csrf_token": token}
    evil = client.post("/auth/login?next=//evil.example.com/x", data=data)
    assert evil.headers["Location"].endswith("/dashboard")
    client.post_form("/auth/logout", page="/dashboard")
    data["csrf_token"] = client.token()
    local = client.post("/auth/login?next=/audit/", data=data)
    assert local.headers["Location"].endswith("/audit/")


@pytest.mark.parametrize("target", ["//evil.example.com", "/\\evil.example.com", "/\t/evil.example.com",
                                    "/%09/evil.example.com", "https://evil.example.com/", "/\n/evil.example.com",
                                    "javascript:alert(1)"])
def test_unsafe_next_targets_are_refused(target):
    from urllib.parse import unquote

    from app.forms_common import is_safe_next

    assert not is_safe_next(unquote(target))


def test_tab_trick_next_does_not_redirect_off_site(app, client, trader):
    token = client.token()
    response = client.post("/auth/login?next=/%09/evil.example.com",
                           data={"identifier": "bob", "password": PASSWORD, "csrf_token": token})
    assert response.headers["Location"].endswith("/dashboard")


def test_logout_requires_post(app, trader_client):
    assert trader_client.get("/auth/logout").status_code == 405
    assert trader_client.post_form("/auth/logout", page="/dashboard").status_code == 302
    assert trader_client.get("/dashboard").status_code == 302


def test_logout_without_csrf_token_is_refused(app, trader_client):
    response = trader_client.post("/auth/logout")
    assert response.status_code == 400
    assert trader_client.get("/dashboard").status_code == 200


def test_change_password_requires_current_password(app, trader_client):
    response = trader_client.post_form("/auth/change-password", {
        "current_password": "Wr0ng!password", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        page="/auth/change-password")
    assert response.status_code == 400
    assert "The current password is not correct." in response.get_data(as_text=True)
    assert Browserless(trader_client.application.test_client()).login("bob").status_code == 302


def test_change_password_applies_policy_with_field_errors(app, trader_client):
    response = trader_client.post_form("/auth/change-password", {
        "current_password": PASSWORD, "password": "short", "confirm": "short"}, page="/auth/change-password")
    assert response.status_code == 400
    assert 'data-field-error="password"' in response.get_data(as_text=True)


def test_change_password_ends_other_sessions_but_keeps_this_one(app, trader):
    first, second = Browserless(app.test_client()), Browserless(app.test_client())
    first.login("bob")
    second.login("bob", remember=True)
    assert second.get("/dashboard").status_code == 200
    response = first.post_form("/auth/change-password", {
        "current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        page="/auth/change-password")
    assert response.status_code == 302
    assert first.get("/dashboard").status_code == 200
    assert second.get("/dashboard").status_code == 302  # session and remember cookie both dead
    assert Browserless(app.test_client()).login("bob", NEW_PASSWORD).status_code == 302
    assert Browserless(app.test_client()).login("bob", PASSWORD).status_code == 401


def test_passwords_are_stored_with_scrypt(app, trader):
    stored = db.session.scalar(select(User.password_hash).where(User.username == "bob"))
    assert stored.startswith("scrypt:")
    assert PASSWORD not in stored


def test_deactivated_user_cannot_log_in(app, client):
    make_user(app, "dora", active=False)
    response = client.login("dora")
    assert response.status_code == 401
    assert "Invalid username or password." in response.get_data(as_text=True)


def test_one_time_password_must_be_changed_first(app, client):
    make_user(app, "erin", must_change_password=True)
    response = client.login("erin")
    assert response.headers["Location"].endswith("/auth/change-password")
    assert client.get("/dashboard").headers["Location"].endswith("/auth/change-password")
    assert client.get("/audit/", headers={"Accept": "application/json"}).status_code == 403
    client.post_form("/auth/change-password", {
        "current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        page="/auth/change-password")
    assert client.get("/dashboard").status_code == 200


def test_login_and_logout_are_audited(app, trader_client):
    trader_client.post_form("/auth/logout", page="/dashboard")
    actions = db.session.scalars(select(ActivityLog.action).order_by(ActivityLog.id)).all()
    assert actions == ["login", "logout"]


@pytest.mark.parametrize(("identifier", "password"), [
    ("bo\x00b", PASSWORD), ("\x00", PASSWORD), ("bob@example.com\x00", PASSWORD), ("bob", "Str0ng!\x00Passw0rd")])
def test_nul_byte_in_login_is_a_normal_failed_login_and_audited(app, client, trader, identifier, password):
    response = client.login(identifier, password)
    assert response.status_code == 401
    assert "Invalid username or password." in response.get_data(as_text=True)
    [entry] = db.session.scalars(select(ActivityLog).where(ActivityLog.action == "login")).all()
    assert entry.outcome == "failure" and entry.details["reason"] == "bad_credentials"
    assert "\x00" not in (entry.username or "")
    if "\x00" in identifier:
        assert entry.user_id is None and entry.username == identifier.strip().lower().replace("\x00", "\ufffd")
    else:
        assert entry.username == "bob"
    assert client.login("bob").status_code == 302  # the app is still fine


def test_wrong_current_passwords_count_towards_the_login_lockout(app, trader_client):
    policy = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(policy):
        response = trader_client.post_form("/auth/change-password", {
            "current_password": "Wr0ng!password", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
            page="/auth/change-password")
        assert "The current password is not correct." in response.get_data(as_text=True)
    locked = db.session.scalars(select(ActivityLog).where(ActivityLog.action == "account_locked")).all()
    assert len(locked) == 1 and locked[0].details["via"] == "password_change"
    # Locked: even the right current password is refused, and so is signing in elsewhere.
    response = trader_client.post_form("/auth/change-password", {
        "current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        page="/auth/change-password")
    assert response.status_code == 400
    assert "Too many wrong passwords. Try again later." in response.get_data(as_text=True)
    assert Browserless(app.test_client()).login("bob", PASSWORD).status_code == 401


def test_right_password_forgives_earlier_failures(app, client, trader):
    policy = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(policy - 1):
        client.login("bob", "Wr0ng!password")
    assert client.login("bob").status_code == 302
    client.post_form("/auth/logout", page="/dashboard")
    for _ in range(policy - 1):
        assert client.login("bob", "Wr0ng!password").status_code == 401
    assert client.login("bob").status_code == 302
    assert db.session.scalar(select(ActivityLog).where(ActivityLog.action == "account_locked")) is None


def test_failure_window_restarts_after_it_expires(app, client, trader):
    from datetime import timedelta

    from app.models.types import utcnow

    policy = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(policy - 1):
        client.login("bob", "Wr0ng!password")
    user = db.session.scalar(select(User).where(User.username == "bob"))
    user.first_failed_login_at = utcnow() - timedelta(minutes=app.config["LOGIN_FAILURE_WINDOW_MINUTES"], seconds=1)
    db.session.commit()
    client.login("bob", "Wr0ng!password")
    db.session.expire_all()
    user = db.session.scalar(select(User).where(User.username == "bob"))
    assert user.failed_login_count == 1 and user.locked_until is None
