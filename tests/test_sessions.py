"""Server-side sign-ins: logout, the devices page, admins, password changes and deactivation
end sessions on the server, so copied session and remember-me cookies stop working."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.domain.devices import describe_user_agent
from app.extensions import db
from app.models.audit import ActivityLog
from app.models.sessions import UserSession
from app.models.types import utcnow
from app.models.users import User
from tests.helpers import PASSWORD, Browserless, make_user

NEW_PASSWORD = "N3w!Secure-Pass"
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def _client(app, username: str | None = None, *, remember: bool = False, user_agent: str | None = None):
    client = Browserless(app.test_client())
    if user_agent:
        client.client.environ_base["HTTP_USER_AGENT"] = user_agent
    if username:
        assert client.login(username, remember=remember).status_code == 302
    return client


def _copy(app, source: Browserless, names=("session", "remember_token")) -> Browserless:
    """A second browser carrying copies of the source's cookies (an attacker's copy)."""
    copy = Browserless(app.test_client())
    for name in names:
        cookie = source.client.get_cookie(name)
        if cookie is not None:
            copy.client.set_cookie(name, cookie.value)
    return copy


def _signed_in(client: Browserless) -> bool:
    status = client.get("/dashboard").status_code
    assert status in (200, 302)
    return status == 200


def _records(username: str) -> list[UserSession]:
    db.session.expire_all()
    return list(db.session.scalars(
        select(UserSession).join(User, User.id == UserSession.user_id)
        .where(User.username == username).order_by(UserSession.id)))


def _audit(action: str) -> list[ActivityLog]:
    return list(db.session.scalars(select(ActivityLog).where(ActivityLog.action == action)
                                   .order_by(ActivityLog.id)))


def test_login_creates_one_record_with_device_and_ip(app, trader):
    _client(app, "bob", user_agent=FIREFOX_LINUX)
    [record] = _records("bob")
    assert record.device == "Firefox on Linux"
    assert record.ip_address == "127.0.0.1"
    assert record.revoked_at is None
    assert record.created_at == record.last_seen_at


def test_copied_session_cookie_is_refused_after_logout(app, trader):
    victim = _client(app, "bob")
    thief = _copy(app, victim, names=("session",))
    assert _signed_in(thief)  # the copy works while the sign-in is live
    assert victim.post_form("/auth/logout", page="/dashboard").status_code == 302
    assert not _signed_in(victim)
    assert not _signed_in(thief)
    [record] = _records("bob")
    assert record.revoked_reason == "logout"


def test_copied_remember_cookie_is_refused_after_logout(app, trader):
    victim = _client(app, "bob", remember=True)
    thief = _copy(app, victim, names=("remember_token",))
    assert thief.client.get_cookie("session") is None
    assert _signed_in(thief)  # signed in from the remember-me cookie alone
    victim.post_form("/auth/logout", page="/dashboard")
    assert not _signed_in(thief)
    assert not _signed_in(_copy(app, thief, names=("remember_token",)))


def test_logout_ends_only_this_device(app, trader):
    first, second = _client(app, "bob"), _client(app, "bob")
    first.post_form("/auth/logout", page="/dashboard")
    assert not _signed_in(first)
    assert _signed_in(second)


def test_devices_page_lists_live_sign_ins_and_marks_this_one(app, trader):
    here = _client(app, "bob", user_agent=FIREFOX_LINUX)
    _client(app, "bob", user_agent="curl/8.5.0")
    gone = _client(app, "bob")
    gone.post_form("/auth/logout", page="/dashboard")
    page = here.get("/auth/sessions")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    live = [r for r in _records("bob") if r.revoked_at is None]
    assert len(live) == 2
    assert html.count('data-session="') == 2
    assert html.count('data-testid="this-device"') == 1
    this_row = html.split(f'data-session="{live[0].id}"')[1].split("</tr>")[0]
    assert "Firefox on Linux" in this_row and "this device" in this_row
    assert "curl" in html


def test_ending_another_device_from_the_devices_page_signs_it_out(app, trader):
    here, other = _client(app, "bob"), _client(app, "bob", remember=True)
    other_copy = _copy(app, other)
    other_id = _records("bob")[1].id
    response = here.post_form(f"/auth/sessions/{other_id}/end", page="/auth/sessions")
    assert response.status_code == 302 and response.headers["Location"].endswith("/auth/sessions")
    assert not _signed_in(other)
    assert not _signed_in(other_copy)
    assert _signed_in(here)
    assert _records("bob")[1].revoked_reason == "ended_by_user"
    [entry] = _audit("session_ended")
    assert entry.username == "bob" and entry.details == {"session_id": other_id, "device": "Werkzeug"}


def test_ending_this_device_from_the_devices_page_keeps_it(app, trader):
    here = _client(app, "bob")
    [record] = _records("bob")
    response = here.post_form(f"/auth/sessions/{record.id}/end", page="/auth/sessions", follow_redirects=True)
    assert "sign out to end it" in response.get_data(as_text=True)
    assert _signed_in(here)


def test_sign_out_all_other_devices(app, trader):
    here, second, third = _client(app, "bob"), _client(app, "bob"), _client(app, "bob")
    here.post_form("/auth/sessions/end-others", page="/auth/sessions")
    assert _signed_in(here)
    assert not _signed_in(second) and not _signed_in(third)
    assert _audit("sessions_ended")[0].details == {"count": 2}


def test_another_users_session_id_is_404(app, admin, trader):
    alice = _client(app, "alice")
    bob = _client(app, "bob")
    [alice_record] = _records("alice")
    assert bob.post_form(f"/auth/sessions/{alice_record.id}/end", page="/auth/sessions").status_code == 404
    assert bob.post_form("/auth/sessions/99999/end", page="/auth/sessions").status_code == 404
    assert _signed_in(alice)
    assert _records("alice")[0].revoked_at is None
    assert f'data-session="{alice_record.id}"' not in bob.get("/auth/sessions").get_data(as_text=True)
    assert _audit("session_ended") == []


def test_ending_a_session_needs_csrf_and_post(app, trader):
    here, other = _client(app, "bob"), _client(app, "bob")
    other_id = _records("bob")[1].id
    assert here.post(f"/auth/sessions/{other_id}/end").status_code == 400
    assert here.get(f"/auth/sessions/{other_id}/end").status_code == 405
    assert _signed_in(other)


def test_devices_page_needs_sign_in(app, client):
    response = client.get("/auth/sessions")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_admin_ends_all_sessions_of_a_user(app, admin, trader):
    admin_client = _client(app, "alice")
    first, second = _client(app, "bob"), _client(app, "bob", remember=True)
    remembered = _copy(app, second, names=("remember_token",))
    assert 'data-testid="end-sessions-bob">End sessions (2)' in admin_client.get("/admin/users").get_data(as_text=True)
    response = admin_client.post_form(f"/admin/users/{trader.id}/end-sessions", page="/admin/users")
    assert response.status_code == 302
    assert not _signed_in(first) and not _signed_in(second) and not _signed_in(remembered)
    assert _signed_in(admin_client)
    assert {r.revoked_reason for r in _records("bob")} == {"ended_by_admin"}
    [entry] = _audit("user_sessions_ended")
    assert entry.username == "alice" and entry.category == "admin"
    assert entry.details == {"target": "bob", "target_id": trader.id, "sessions_ended": 2}
    assert _signed_in(_client(app, "bob"))  # the user may sign in again


def test_password_change_ends_other_sessions_and_keeps_this_one(app, trader):
    here = _client(app, "bob")
    other = _client(app, "bob", remember=True)
    other_remember = _copy(app, other, names=("remember_token",))
    here_copy = _copy(app, here)
    response = here.post_form("/auth/change-password", {
        "current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        page="/auth/change-password", follow_redirects=True)
    assert "Password changed. 1 other sign-in ended." in response.get_data(as_text=True)
    assert _signed_in(here) and _signed_in(here_copy)
    assert not _signed_in(other) and not _signed_in(other_remember)
    kept, ended = _records("bob")
    assert kept.revoked_at is None and ended.revoked_reason == "password_change"
    assert _audit("password_change")[0].details == {"sessions_ended": 1}


def test_admin_password_reset_ends_every_session(app, admin, trader):
    admin_client = _client(app, "alice")
    bob = _client(app, "bob", remember=True)
    admin_client.post_form(f"/admin/users/{trader.id}/reset-password", page="/admin/users")
    assert not _signed_in(bob)
    assert [r.revoked_reason for r in _records("bob")] == ["password_reset"]


def test_deactivation_ends_every_session_and_reactivation_does_not_revive_them(app, admin, trader):
    admin_client = _client(app, "alice")
    bob = _client(app, "bob", remember=True)
    bob_copy = _copy(app, bob)
    admin_client.post_form(f"/admin/users/{trader.id}/deactivate", page="/admin/users")
    assert not _signed_in(bob_copy)
    assert [r.revoked_reason for r in _records("bob")] == ["deactivated"]
    assert _audit("user_deactivated")[0].details["sessions_ended"] == 1
    admin_client.post_form(f"/admin/users/{trader.id}/reactivate", page="/admin/users")
    assert not _signed_in(bob) and not _signed_in(bob_copy)


def test_last_seen_is_written_at_most_once_a_minute(app, trader):
    bob = _client(app, "bob")
    [record] = _records("bob")
    created = record.created_at
    assert _signed_in(bob)
    assert _records("bob")[0].last_seen_at == created  # seconds later: no write
    two_minutes_ago = utcnow() - timedelta(minutes=2)
    record.last_seen_at = two_minutes_ago
    db.session.commit()
    assert _signed_in(bob)
    refreshed = _records("bob")[0].last_seen_at
    assert refreshed > two_minutes_ago + timedelta(minutes=1)
    assert _signed_in(bob)
    assert _records("bob")[0].last_seen_at == refreshed


def test_sign_in_unused_for_the_remember_duration_has_expired(app, trader):
    bob = _client(app, "bob", remember=True)
    [record] = _records("bob")
    record.last_seen_at = utcnow() - app.config["REMEMBER_COOKIE_DURATION"] - timedelta(seconds=1)
    db.session.commit()
    assert not _signed_in(bob)


def test_forged_or_oversized_session_tokens_are_signed_out(app, trader):
    from app.services import sessions

    assert sessions.resolve("x" * 200, ip=None) is None
    assert sessions.resolve("not-a-token", ip=None) is None
    assert sessions.resolve("", ip=None) is None


def test_registration_signs_in_with_a_record(app, client):
    client.post_form("/auth/register", {"username": "first", "email": "first@example.com",
                                        "password": PASSWORD, "confirm": PASSWORD}, page="/auth/register")
    assert _signed_in(client)
    assert len(_records("first")) == 1


def test_old_records_are_purged_at_the_next_sign_in(app, trader):
    _client(app, "bob").post_form("/auth/logout", page="/dashboard")
    [old] = _records("bob")
    old.revoked_at = utcnow() - timedelta(days=31)
    db.session.commit()
    _client(app, "bob")
    [fresh] = _records("bob")
    assert fresh.revoked_at is None
    assert db.session.scalar(select(func.count()).select_from(UserSession)) == 1


def test_users_are_equal_by_row_not_by_sign_in(app, trader):
    make_user(app, "carol")
    bob, carol = (db.session.scalar(select(User).where(User.username == n)) for n in ("bob", "carol"))
    assert bob == db.session.get(User, bob.id) and bob != carol
    with pytest.raises(RuntimeError, match="not bound to a sign-in"):
        bob.get_id()


@pytest.mark.parametrize(("user_agent", "expected"), [
    (FIREFOX_LINUX, "Firefox on Linux"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Safari/537.36", "Chrome on Windows"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Edge on Windows"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/18.1 Safari/605.1.15", "Safari on macOS"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/18.1 Mobile/15E148 Safari/604.1", "Safari on iOS"),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Mobile Safari/537.36", "Chrome on Android"),
    ("curl/8.5.0", "curl"),
    ("python-requests/2.32.3", "python-requests"),
    ("", "Unknown device"),
    (None, "Unknown device"),
    ("<script>alert(1)</script>", "Unknown device"),
    ("\x00\r\n\x1b[31m", "Unknown device"),
    ("A" * 300, "A" * 41),
])
def test_describe_user_agent(user_agent, expected):
    assert describe_user_agent(user_agent) == expected
