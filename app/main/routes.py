import logging

from flask import current_app, jsonify, redirect, render_template, url_for
from flask_login import current_user, login_required
from sqlalchemy import text

from app.extensions import db, get_limiter, rate_tier
from app.main import bp
from app.services import users

logger = logging.getLogger(__name__)


@bp.route("/")
def index():
    if current_user.is_authenticated:
        return redirect(url_for("main.dashboard"))
    return render_template("main/landing.html", first_run=users.user_count() == 0)


@bp.route("/dashboard")
@login_required
def dashboard():
    from app.services.dashboard import snapshot
    from app.strategy.execution_routes import engine_panel

    return render_template("main/dashboard.html", snapshot=snapshot(current_user), **engine_panel())


@bp.route("/healthz")
@rate_tier("exempt")
def healthz():
    """Liveness: the process answers. No database, no auth."""
    return jsonify({"status": "ok"})


@bp.route("/readyz")
@rate_tier("exempt")
def readyz():
    """Readiness: the database answers at the latest schema revision, and rate-limit storage works."""
    checks = {"database": _database_check(), "rate_limit_storage": _limiter_check()}
    ready = all(value == "ok" for value in checks.values())
    return jsonify({"status": "ok" if ready else "unavailable", **checks}), (200 if ready else 503)


def _database_check() -> str:
    from alembic.script import ScriptDirectory

    try:
        current = db.session.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except Exception:
        logger.exception("Readiness: database query failed")
        db.session.rollback()
        return "error"
    heads = set(ScriptDirectory(current_app.extensions["migrate"].directory).get_heads())
    if set(current) != heads:
        logger.warning("Readiness: schema at %s, code expects %s", current, sorted(heads))
        return "migration pending"
    return "ok"


def _limiter_check() -> str:
    try:
        return "ok" if get_limiter().storage.check() else "error"
    except Exception:
        logger.exception("Readiness: rate-limit storage check failed")
        return "error"
