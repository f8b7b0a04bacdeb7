"""Session loading and the first-login password change rule."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app.errors import _respond
from app.extensions import db
from app.models.users import User
from app.security.guards import wants_json

# Endpoints a user who must change the password may still reach.
_ALLOWED_DURING_FORCED_CHANGE = {"auth.change_password", "auth.logout", "static", "main.healthz", "main.readyz"}


def load_user(session_token: str) -> User | None:
    """Flask-Login user loader: the cookie holds the session token, not the id.

    A deactivated user, or one whose password changed since the cookie was issued, gets None
    and is signed out.
    """
    user = db.session.scalar(select(User).where(User.session_token == session_token))
    if user is None or not user.is_active:
        return None
    return user


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
