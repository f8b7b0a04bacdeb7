"""JSON endpoints used by the pages' live updates (and usable by scripts with a session)."""

from flask import Blueprint

bp = Blueprint("api", __name__)

from app.api import preview, routes, runs, strategies  # noqa: E402,F401
