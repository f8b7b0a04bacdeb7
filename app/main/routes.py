import logging

from flask import jsonify, redirect, render_template, url_for
from flask_login import current_user, login_required
from sqlalchemy import text

from app.extensions import db, rate_tier
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
    return render_template("main/dashboard.html")


@bp.route("/healthz")
@rate_tier("exempt")
def healthz():
    """Liveness: the process answers. No database, no auth."""
    return jsonify({"status": "ok"})


@bp.route("/readyz")
@rate_tier("exempt")
def readyz():
    """Readiness: the database answers."""
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:
        logger.exception("Readiness check failed")
        db.session.rollback()
        return jsonify({"status": "unavailable", "database": "error"}), 503
    return jsonify({"status": "ok", "database": "ok"})
