"""Signing in and out with server-side session records, and the first-login password rule.

Flask-Login keeps the sign-in's random token (`User.get_id()`) in the session cookie and
in the remember-me cookie; `load_user` accepts it only while its record in `user_sessions`
is live (app/services/sessions.py). Logging out revokes the record, so copies of either
cookie stop working too.
"""

from __future__ import annotations

from flask import flash, g, redirect, request, url_for
from flask_login import current_user, login_user, logout_user

from app.errors import _respond
from app.extensions import db
from app.models.sessions import UserSession
from app.models.users import User
from app.security.guards import wants_json
from app.services import sessions

# Endpoints a user who must change the password may still reach.
_ALLOWED_DURING_FORCED_CHANGE = {"auth.change_password", "auth.logout", "static", "main.healthz", "main.readyz"}


def load_user(token: str) -> User | None:
    """Flask-Login user loader: the cookie holds the sign-in's token, never the user id.

    A revoked, expired or unknown sign-in, or a deactivated user, gets None: signed out.
    """
    found = sessions.resolve(token, ip=request.remote_addr)
    if found is None:
        return None
    user, record = found
    g.sign_in_id = record.id
    return user


def current_sign_in_id() -> int | None:
    """The id of this request's sign-in record, when signed in."""
    current_user.is_authenticated  # noqa: B018  (loads the user, which sets g.sign_in_id)
    return g.get("sign_in_id")


def sign_in(user: User, *, remember: bool) -> UserSession:
    """Record a new sign-in for this browser and put its token in the cookies."""
    record = sessions.start(user, user_agent=request.user_agent.string, ip=request.remote_addr)
    record_id = record.id
    db.session.commit()
    login_user(user, remember=remember)
    g.sign_in_id = record_id
    return record


def sign_out(reason: str = sessions.REASON_LOGOUT) -> None:
    """Revoke this browser's sign-in on the server, then clear its cookies."""
    sign_in_id = current_sign_in_id()
    if sign_in_id is not None:
        record = db.session.get(UserSession, sign_in_id)
        if record is not None:
            sessions.revoke(record, reason)
            db.session.commit()
    logout_user()
    g.pop("sign_in_id", None)


def unauthorized():
    if wants_json():
        return _respond(401)
    flash("Please sign in to continue.", "info")
    return redirect(url_for("auth.login", next=request.full_path if request.method == "GET" else None))


def enforce_password_change():
    if (
        current_user.is_authenticated
        and current_user.must_change_password
        and request.endpoint not in _ALLOWED_DURING_FORCED_CHANGE
    ):
        if wants_json():
            return _respond(403, "Change your one-time password before continuing.")
        return redirect(url_for("auth.change_password"))
    return None
