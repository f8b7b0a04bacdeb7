"""Admin user management: every action works, is guarded, and is audited."""

import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models.audit import ActivityLog
from app.models.users import User
from tests.helpers import Browserless, make_user

OTP_RE = re.compile(r'data-testid="one-time-password">([^<]+)<')


def _user(username: str) -> User:
    return db.session.scalar(select(User).where(User.username == username))


def _actions() -> list[str]:
    return db.session.scalars(select(ActivityLog.action).where(ActivityLog.category == "admin")
                              .order_by(ActivityLog.id)).all()


def test_admin_lists_users(app, admin_client, trader):
    page = admin_client.get("/admin/users")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-user="alice"' in html and 'data-user="bob"' in html


def test_create_user_gives_one_time_password_that_must_be_changed(app, admin_client):
    response = admin_client.post_form("/admin/users/create", {
        "username": "Carol", "email": "carol@example.com", "role": "trader"}, page="/admin/users/create")
    assert response.status_code == 200
    otp = OTP_RE.search(response.get_data(as_text=True)).group(1)
    carol = _user("carol")
    assert carol.must_change_password and carol.role == "trader"
    assert otp not in carol.password_hash
    newcomer = Browserless(app.test_client())
    login = newcomer.login("carol", otp.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
                           .replace("&#34;", '"').replace("&#39;", "'"))
    assert login.headers["Location"].endswith("/auth/change-password")
    entry = db.session.scalar(select(ActivityLog).where(ActivityLog.action == "user_created"))
    assert entry.details == {"target": "carol", "target_id": carol.id, "role": "trader"}
    assert otp not in str(entry.details)


def test_create_user_shows_field_errors_and_saves_nothing(app, admin_client, trader):
    response = admin_client.post_form("/admin/users/create", {
        "username": "bob", "email": "bad", "role": "emperor"}, page="/admin/users/create")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Enter a valid email address." in html
    assert 'data-field-error="role"' in html
    assert db.session.scalar(select(db.func.count()).select_from(User)) == 2


def test_create_user_refuses_taken_username(app, admin_client, trader):
    response = admin_client.post_form("/admin/users/create", {
        "username": "BOB", "email": "new@example.com", "role": "trader"}, page="/admin/users/create")
    assert response.status_code == 400
    assert "This username is taken." in response.get_data(as_text=True)


def test_deactivate_ends_sessions_and_blocks_login_then_reactivate(app, admin_client, trader, trader_client):
    assert trader_client.get("/dashboard").status_code == 200
    response = admin_client.post_form(f"/admin/users/{trader.id}/deactivate", page="/admin/users")
    assert response.status_code == 302
    assert _user("bob").active is False
    assert trader_client.get("/dashboard").status_code == 302  # existing session ended
    assert Browserless(app.test_client()).login("bob").status_code == 401
    admin_client.post_form(f"/admin/users/{trader.id}/reactivate", page="/admin/users")
    assert Browserless(app.test_client()).login("bob").status_code == 302
    assert _actions() == ["user_deactivated", "user_reactivated"]


def test_reset_password_issues_new_one_time_password(app, admin_client, trader):
    response = admin_client.post_form(f"/admin/users/{trader.id}/reset-password", page="/admin/users")
    assert response.status_code == 200
    assert OTP_RE.search(response.get_data(as_text=True))
    assert _user("bob").must_change_password is True
    assert _actions() == ["user_password_reset"]


def test_promote_and_demote(app, admin_client, trader):
    admin_client.post_form(f"/admin/users/{trader.id}/role", {"role": "admin"}, page="/admin/users")
    assert _user("bob").role == "admin"
    admin_client.post_form(f"/admin/users/{trader.id}/role", {"role": "trader"}, page="/admin/users")
    assert _user("bob").role == "trader"
    entries = db.session.scalars(select(ActivityLog).where(ActivityLog.action == "user_role_changed")
                                 .order_by(ActivityLog.id)).all()
    assert [(e.details["from"], e.details["to"]) for e in entries] == [("trader", "admin"), ("admin", "trader")]


def test_last_active_admin_cannot_be_demoted_or_deactivated(app, admin, trader):
    second = make_user(app, "zed", role="admin")
    client = Browserless(app.test_client())
    client.login("zed")
    # zed demotes alice: allowed, two admins exist.
    client.post_form(f"/admin/users/{admin.id}/role", {"role": "trader"}, page="/admin/users")
    assert _user("alice").role == "trader"
    # Now zed is the last admin; another admin action against zed must fail.
    promoted = Browserless(app.test_client())
    make_user(app, "yan", role="admin")
    promoted.login("yan")
    promoted.post_form(f"/admin/users/{second.id}/deactivate", page="/admin/users")
    assert _user("zed").active is False  # yan is still an active admin, so this is allowed
    response = promoted.post_form(f"/admin/users/{_user('yan').id}/role", {"role": "trader"},
                                  page="/admin/users", follow_redirects=True)
    assert "The last active administrator cannot be demoted." in response.get_data(as_text=True)
    assert _user("yan").role == "admin"


def test_service_refuses_to_deactivate_last_admin(app, admin):
    from app.services import users

    target = _user("alice")
    with pytest.raises(users.UserError, match="last active administrator"):
        users.admin_set_active(target, target, False)
    assert _user("alice").active is True


def test_registration_toggle_is_audited(app, admin_client):
    admin_client.post_form("/admin/registration/open", page="/admin/users")
    assert "open" in admin_client.get("/admin/users").get_data(as_text=True)
    admin_client.post_form("/admin/registration/close", page="/admin/users")
    assert _actions() == ["registration_opened", "registration_closed"]


def test_unknown_user_id_is_404(app, admin_client):
    assert admin_client.post_form("/admin/users/99999/deactivate", page="/admin/users").status_code == 404


def _admin_urls(app):
    urls = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("admin."):
            args = {name: 1 if name.endswith("_id") else "open" for name in rule.arguments}
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                urls.append((method, rule.build(args)[1]))
    return urls


def test_every_admin_route_refuses_traders(app, trader, trader_client):
    urls = _admin_urls(app)
    assert len(urls) >= 8
    for method, url in urls:
        if method == "GET":
            response = trader_client.get(url)
        else:
            response = trader_client.post_form(url, page="/dashboard")
        assert response.status_code == 403, (method, url)
    assert _user("bob").role == "trader"


def test_every_admin_route_redirects_anonymous_to_login(app, client, trader):
    for method, url in _admin_urls(app):
        response = client.get(url) if method == "GET" else client.post_form(url)
        assert response.status_code == 302, (method, url)
        assert "/auth/login" in response.headers["Location"]
