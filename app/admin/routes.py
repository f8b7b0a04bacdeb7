import logging

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app.admin import bp
from app.admin.forms import CreateUserForm, RoleForm
from app.extensions import db
from app.forms_common import ActionForm
from app.models.users import User
from app.services import sessions, users
from app.services.settings import registration_open

logger = logging.getLogger(__name__)


def _target(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


@bp.route("/users")
def list_users():
    all_users = db.session.scalars(select(User).order_by(User.created_at, User.id)).all()
    return render_template(
        "admin/users.html",
        users=all_users,
        action_form=ActionForm(),
        role_form=RoleForm(),
        registration_open=registration_open(),
        active_admins=users.active_admin_count(),
        live_sessions=sessions.live_counts(),
    )


@bp.route("/users/create", methods=["GET", "POST"])
def create_user():
    form = CreateUserForm()
    if form.validate_on_submit():
        try:
            user, otp = users.admin_create_user(current_user, form.username.data, form.email.data, form.role.data)
        except users.UserError as exc:
            field = getattr(form, exc.field, None) if exc.field else None
            (field.errors if field is not None else form.form_errors).append(exc.message)
        else:
            # Shown once, never stored in clear or logged.
            return render_template("admin/one_time_password.html", user=user, otp=otp, created=True)
    return render_template("admin/create_user.html", form=form), (400 if form.errors else 200)


def _post_action(user_id: int, action) -> object:
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    target = _target(user_id)
    try:
        result = action(target)
    except users.UserError as exc:
        flash(exc.message, "error")
        return redirect(url_for("admin.list_users"))
    return result


@bp.route("/users/<int:user_id>/deactivate", methods=["POST"])
def deactivate_user(user_id: int):
    def act(target: User):
        users.admin_set_active(current_user, target, False)
        flash(f"{target.username} is deactivated and can no longer sign in.", "success")
        return redirect(url_for("admin.list_users"))

    return _post_action(user_id, act)


@bp.route("/users/<int:user_id>/reactivate", methods=["POST"])
def reactivate_user(user_id: int):
    def act(target: User):
        users.admin_set_active(current_user, target, True)
        flash(f"{target.username} is active again.", "success")
        return redirect(url_for("admin.list_users"))

    return _post_action(user_id, act)


@bp.route("/users/<int:user_id>/reset-password", methods=["POST"])
def reset_password(user_id: int):
    def act(target: User):
        otp = users.admin_reset_password(current_user, target)
        return render_template("admin/one_time_password.html", user=target, otp=otp, created=False)

    return _post_action(user_id, act)


@bp.route("/users/<int:user_id>/end-sessions", methods=["POST"])
def end_user_sessions(user_id: int):
    def act(target: User):
        ended = users.admin_end_sessions(current_user, target)
        flash(f"Signed out {target.username} on {ended} device{'s' if ended != 1 else ''}.", "success")
        return redirect(url_for("admin.list_users"))

    return _post_action(user_id, act)


@bp.route("/users/<int:user_id>/role", methods=["POST"])
def set_role(user_id: int):
    form = RoleForm()
    if not form.validate_on_submit():
        abort(400)
    target = _target(user_id)
    try:
        users.admin_set_role(current_user, target, form.role.data)
    except users.UserError as exc:
        flash(exc.message, "error")
    else:
        flash(f"{target.username} is now {target.role}.", "success")
    return redirect(url_for("admin.list_users"))


@bp.route("/registration/<state>", methods=["POST"])
def set_registration(state: str):
    if state not in ("open", "close"):
        abort(404)
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    users.admin_set_registration(current_user, state == "open")
    flash("Public registration is " + ("open." if state == "open" else "closed."), "success")
    return redirect(url_for("admin.list_users"))


@bp.route("/account-hosts", methods=["GET", "POST"])
def account_hosts():
    """The allow-list of hosts users may add accounts for: ``host`` or ``host:port`` entries (empty = any)."""
    from app.accounts.forms import HostAllowlistForm
    from app.domain.hosts import HostRuleError
    from app.services import outbound

    form = HostAllowlistForm()
    if request.method == "GET":
        form.hosts.data = ", ".join(outbound.allowlist_text())
    if form.validate_on_submit():
        try:
            saved = outbound.save_allowlist(current_user, form.hosts.data or "")
        except HostRuleError as exc:
            db.session.rollback()
            form.hosts.errors = [exc.message]
        else:
            flash("Allowed hosts saved." if saved else "Any host is allowed.", "success")
            return redirect(url_for("admin.account_hosts"))
    return render_template("admin/account_hosts.html", form=form, paper_hint=_paper_broker_entries()), (
        400 if form.errors else 200)


def _paper_broker_entries() -> str:
    """The entries the bundled paper broker needs (REST and WebSocket), for the page's hint."""
    from flask import current_app

    from app.domain import hosts

    found = []
    for key in ("PAPER_BROKER_URL", "PAPER_BROKER_WS_URL"):
        try:
            found.append(hosts.destination(current_app.config.get(key) or "").address)
        except hosts.HostRuleError:
            continue
    return ", ".join(found)


@bp.app_context_processor
def _host_allowlist_warning() -> dict[str, bool]:
    """Admins see a banner on every page while production runs without an outbound allow-list."""
    from flask import current_app, has_request_context
    from sqlalchemy.exc import SQLAlchemyError

    from app.services import outbound

    if not has_request_context() or not outbound.allowlist_required(current_app.config):
        return {}
    try:
        if not (current_user.is_authenticated and current_user.is_admin):
            return {}
        return {"host_allowlist_missing": outbound.allowlist() is None}
    except SQLAlchemyError:  # e.g. rendering the error page of a database outage
        logger.debug("host allow-list check skipped", exc_info=True)
        return {}
