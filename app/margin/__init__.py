"""Margin: the calculator (every signed-in user) and the settings pages (admins only).

Two blueprints so that the admin part is guarded as a whole: `margin` (calculator and its
JSON) and `margin_admin` (/margin/settings/..., every route refused to non-admins).
"""

from flask import Blueprint

from app.security.guards import require_admin_for_blueprint

bp = Blueprint("margin", __name__)
admin_bp = Blueprint("margin_admin", __name__)
admin_bp.before_request(require_admin_for_blueprint)

from app.margin import routes, settings_routes  # noqa: E402,F401
