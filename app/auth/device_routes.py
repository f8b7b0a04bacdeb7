"""The "Signed-in devices" page: a user's live sign-ins, and ending the other ones."""

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from app.auth import bp
from app.auth.session import current_sign_in_id
from app.forms_common import ActionForm
from app.services import sessions


@bp.route("/sessions")
@login_required
def list_sessions():
    return render_template("auth/sessions.html", records=sessions.live_for(current_user),
                           current_id=current_sign_in_id(), action_form=ActionForm())


@bp.route("/sessions/<int:session_id>/end", methods=["POST"])
@login_required
def end_session(session_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    # Owner-scoped: another user's id, an ended sign-in and an unknown id all answer 404.
    record = sessions.get_live_owned(current_user, session_id)
    if record is None:
        abort(404)
    if record.id == current_sign_in_id():
        flash("This is the device you are using: sign out to end it.", "info")
    else:
        sessions.end_own(current_user, record)
        flash(f"Signed out {record.device}.", "success")
    return redirect(url_for("auth.list_sessions"))


@bp.route("/sessions/end-others", methods=["POST"])
@login_required
def end_other_sessions():
    if not ActionForm().validate_on_submit():
        abort(400)
    count = sessions.end_own_others(current_user, current_sign_in_id())
    flash(f"Signed out {count} other device{'s' if count != 1 else ''}.", "success")
    return redirect(url_for("auth.list_sessions"))
