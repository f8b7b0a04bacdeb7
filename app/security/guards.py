"""Access guards used by blueprints."""

from __future__ import annotations

from functools import wraps

from flask import abort, request
from flask_login import current_user


def wants_json() -> bool:
    """Whether the client expects a JSON answer (JSON routes, fetch calls, API clients)."""
    if request.path.startswith(("/api/", "/healthz", "/readyz")) or request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def admin_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            from app.extensions import login_manager

            return login_manager.unauthorized()
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def require_admin_for_blueprint() -> None:
    """before_request hook for the admin blueprint: the whole blueprint is admin-only."""
    if not current_user.is_authenticated:
        from app.extensions import login_manager

        return login_manager.unauthorized()
    if not current_user.is_admin:
        abort(403)
    return None
