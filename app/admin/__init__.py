from flask import Blueprint

from app.security.guards import require_admin_for_blueprint

bp = Blueprint("admin", __name__)
# The whole blueprint is admin-only: no admin route can forget its guard.
bp.before_request(require_admin_for_blueprint)

from app.admin import calendar_routes, halt_routes, routes  # noqa: E402,F401
