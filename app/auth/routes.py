from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.auth import bp
from app.auth.forms import ChangePasswordForm, LoginForm, RegisterForm
from app.auth.session import current_sign_in_id, sign_in, sign_out
from app.extensions import rate_tier
from app.forms_common import ActionForm, is_safe_next
from app.services import audit, users
from app.services.settings import registration_open


def _registration_allowed() -> bool:
    return users.user_count() == 0 or registration_open()


@bp.route("/register", methods=["GET", "POST"])
@rate_tier("auth")
def register():
    if current_user.is_authenticated:
        return redirect(url_for("main.dashboard"))
    if not _registration_allowed():
        return render_template("auth/register_closed.html"), 403
    form = RegisterForm()
    first_user = users.user_count() == 0
    if form.validate_on_submit():
        try:
            user = users.register(form.username.data, form.email.data, form.password.data)
        except users.UserError as exc:
            _attach_error(form, exc)
        else:
            sign_in(user, remember=False)
            flash(f"Welcome, {user.username}. " + ("You are the administrator." if user.is_admin else ""),
                  "success")
            return redirect(url_for("main.dashboard"))
    status = 400 if form.errors else 200
    return render_template("auth/register.html", form=form, first_user=first_user), status


@bp.route("/login", methods=["GET", "POST"])
@rate_tier("auth")
def login():
    if current_user.is_authenticated:
        return redirect(url_for("main.dashboard"))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        result = users.authenticate(form.identifier.data, form.password.data)
        if result.ok and result.user is not None:
            sign_in(result.user, remember=bool(form.remember.data))
            target = request.args.get("next")
            if result.user.must_change_password:
                flash("Choose a new password to replace your one-time password.", "warning")
                return redirect(url_for("auth.change_password"))
            return redirect(target if target and is_safe_next(target) else url_for("main.dashboard"))
        error = result.error
    status = 401 if error else (400 if form.errors else 200)
    return render_template("auth/login.html", form=form, error=error,
                           can_register=_registration_allowed()), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    form = ActionForm()
    if form.validate_on_submit():
        audit.record("logout", category="auth", user=current_user)
        sign_out()
        flash("You have signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/change-password", methods=["GET", "POST"])
@rate_tier("auth")
@login_required
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            ended = users.change_password(current_user, form.current_password.data, form.password.data,
                                          keep_session_id=current_sign_in_id())
        except users.UserError as exc:
            _attach_error(form, exc)
        else:
            # This browser stays signed in; every other sign-in of the user was revoked.
            others = f" {ended} other sign-in{'s' if ended != 1 else ''} ended." if ended else ""
            flash("Password changed." + others, "success")
            return redirect(url_for("main.dashboard"))
    status = 400 if form.errors else 200
    return render_template("auth/change_password.html", form=form), status


def _attach_error(form, exc: users.UserError) -> None:
    field = getattr(form, exc.field, None) if exc.field else None
    if field is not None:
        field.errors = [*list(field.errors), exc.message]
    else:
        form.form_errors.append(exc.message)
