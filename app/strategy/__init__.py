"""Strategy builder pages: list, builder, edit, delete, templates."""

from flask import Blueprint

bp = Blueprint("strategy", __name__)

from app.strategy import execution_routes, risk_event_routes, routes  # noqa: E402,F401
