"""Admin trading halt: block new entries for everyone until lifted (issue 9, point 6).

The admin blueprint is guarded as a whole (app/admin/__init__.py), so these views need no
guard of their own; the banner shown on every page is for admins only.
"""

from __future__ import annotations

import logging

from flask import abort, flash, has_request_context, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError
from wtforms import StringField, SubmitField
from wtforms.validators import DataRequired, Length

from app.admin import bp
from app.extensions import db
from app.forms_common import ActionForm, BaseForm
from app.services.execution import halt as halts
from app.services.execution.errors import InvalidHaltRequest

logger = logging.getLogger(__name__)


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


class HaltForm(BaseForm):
    reason = StringField("Reason", validators=[DataRequired(message=InvalidHaltRequest.user_message),
                                               Length(max=halts.REASON_MAX)], filters=[_strip])
    submit = SubmitField("Halt trading")


def _page(form: HaltForm, status: int = 200):
    return render_template("admin/trading_halt.html", form=form, lift_form=ActionForm(),
                           halt=halts.current_halt()), status


@bp.route("/trading-halt", methods=["GET"])
def trading_halt():
    """The halt switch: the halt in force (if any), the form to halt or change the reason, and lift."""
    return _page(HaltForm())


@bp.route("/trading-halt", methods=["POST"])
def halt_trading():
    form = HaltForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return _page(form, 400)
    try:
        halt = halts.halt_trading(current_user, form.reason.data or "")
    except InvalidHaltRequest as exc:
        db.session.rollback()
        form.reason.errors = [exc.user_message]
        return _page(form, 400)
    flash(f"Trading is halted for everyone: {halt.reason}", "warning")
    return redirect(url_for("admin.trading_halt"))


@bp.route("/trading-halt/lift", methods=["POST"])
def lift_halt():
    if not ActionForm().validate_on_submit():
        abort(400)
    lifted = halts.lift_halt(current_user)
    if lifted is None:
        flash("Trading was not halted.", "info")
    else:
        flash("The trading halt is lifted; new entries are accepted again.", "success")
    return redirect(url_for("admin.trading_halt"))


@bp.app_context_processor
def _trading_halt_banner() -> dict[str, object]:
    """Admins see the halt in force on every page."""
    if not has_request_context():
        return {}
    try:
        if not (current_user.is_authenticated and current_user.is_admin):
            return {}
        return {"trading_halt": halts.current_halt()}
    except SQLAlchemyError:  # e.g. rendering the error page of a database outage
        logger.debug("trading halt banner skipped", exc_info=True)
        return {}
