import re

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app.admin import bp
from app.admin.forms import CreateUserForm, RoleForm
from app.extensions import db
from app.forms_common import ActionForm
from app.models.users import User
from app.services import users
from app.services.settings import registration_open


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
    """The allow-list of OpenAlgo hosts users may add accounts for (empty = any host)."""
    from app.accounts.forms import HostAllowlistForm
    from app.services.accounts import host_allowlist, set_host_allowlist

    form = HostAllowlistForm()
    if request.method == "GET":
        form.hosts.data = ", ".join(host_allowlist())
    if form.validate_on_submit():
        hosts = [h for h in (form.hosts.data or "").replace("\n", ",").split(",") if h.strip()]
        bad = [h for h in hosts if not _HOST_RE.match(h.strip())]
        if bad:
            form.hosts.errors = [f"Not a host name: {', '.join(b.strip() for b in bad[:3])}. "
                                 "Use names like openalgo.example.com or 127.0.0.1, without http://."]
        else:
            set_host_allowlist(current_user, hosts)
            flash("Allowed hosts saved." if hosts else "Any host is allowed.", "success")
            return redirect(url_for("admin.account_hosts"))
    return render_template("admin/account_hosts.html", form=form), (400 if form.errors else 200)


_HOST_RE = re.compile(r"^\s*[A-Za-z0-9.-]{1,253}\s*$")
