from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.accounts import bp
from app.accounts.forms import AccountForm
from app.extensions import db, rate_tier
from app.forms_common import ActionForm
from app.services import accounts as account_service
from app.services import audit
from app.services.account_data import refresh_stale
from app.services.accounts import AccountError, AccountInput
from app.services.dashboard import card_for


@bp.before_request
@login_required
def _signed_in():
    return None


def _attach(form, exc: AccountError) -> None:
    field = getattr(form, exc.field, None) if exc.field else None
    (field.errors if field is not None else form.form_errors).append(exc.message)


def _save_daily_limits(account, form: AccountForm) -> None:
    """Store the validated daily loss and profit limits (None = no limit); audit a change."""
    limits = {"daily_loss_limit": form.daily_loss_limit.data, "daily_profit_limit": form.daily_profit_limit.data}
    if all(getattr(account, name) == value for name, value in limits.items()):
        return
    for name, value in limits.items():
        setattr(account, name, value)
    audit.record("account_limits_updated", category="account", user=current_user, commit=False, details={
        "account_id": account.id, **{name: None if v is None else str(v) for name, v in limits.items()}})
    db.session.commit()


@bp.route("/manage")
def manage():
    accounts = list(db.session.scalars(account_service.owned_accounts(current_user)))
    return render_template("accounts/manage.html", accounts=accounts, action_form=ActionForm(),
                           cards={a.id: card_for(a) for a in accounts})


@bp.route("/add", methods=["GET", "POST"])
@rate_tier("heavy", methods=["POST"])
def add():
    form = AccountForm()
    if request.method == "GET" and not form.host_url.data:
        form.host_url.data = "http://127.0.0.1:5000"
    if form.validate_on_submit():
        data = AccountInput(form.account_name.data, form.host_url.data, form.websocket_url.data or None,
                            form.api_key.data or "", bool(form.is_primary.data))
        try:
            account = account_service.create_account(current_user, data)
        except AccountError as exc:
            db.session.rollback()
            _attach(form, exc)
        else:
            _save_daily_limits(account, form)
            flash(f"Account {account.account_name} added ({account.broker_name}).", "success")
            return redirect(url_for("accounts.manage"))
    return render_template("accounts/form.html", form=form, account=None), (400 if form.errors else 200)


@bp.route("/edit/<int:account_id>", methods=["GET", "POST"])
@rate_tier("heavy", methods=["POST"])
def edit(account_id: int):
    account = account_service.get_owned(current_user, account_id)
    form = AccountForm(obj=account if request.method == "GET" else None)
    if request.method == "GET":
        form.api_key.data = ""
    if form.validate_on_submit():
        data = AccountInput(form.account_name.data, form.host_url.data, form.websocket_url.data or None,
                            form.api_key.data or None, bool(form.is_primary.data))
        try:
            account_service.update_account(current_user, account, data)
        except AccountError as exc:
            db.session.rollback()
            _attach(form, exc)
        else:
            _save_daily_limits(account, form)
            flash(f"Account {account.account_name} saved.", "success")
            return redirect(url_for("accounts.manage"))
    return render_template("accounts/form.html", form=form, account=account), (400 if form.errors else 200)


def _action(account_id: int, act, success: str):
    form = ActionForm()
    if not form.validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for("accounts.manage"))
    account = account_service.get_owned(current_user, account_id)
    try:
        act(account)
    except AccountError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        flash(success.format(name=account.account_name), "success")
    return redirect(url_for("accounts.manage"))


@bp.route("/<int:account_id>/delete", methods=["POST"])
@rate_tier("heavy")
def delete(account_id: int):
    return _action(account_id, lambda a: account_service.delete_account(current_user, a), "Account deleted.")


@bp.route("/<int:account_id>/primary", methods=["POST"])
def make_primary(account_id: int):
    return _action(account_id, lambda a: account_service.set_primary(current_user, a), "{name} is now primary.")


@bp.route("/<int:account_id>/activate", methods=["POST"])
def activate(account_id: int):
    return _action(account_id, lambda a: account_service.set_active(current_user, a, True), "{name} is active.")


@bp.route("/<int:account_id>/deactivate", methods=["POST"])
def deactivate(account_id: int):
    return _action(account_id, lambda a: account_service.set_active(current_user, a, False),
                   "{name} is deactivated.")


@bp.route("/<int:account_id>/move/<direction>", methods=["POST"])
def move(account_id: int, direction: str):
    if direction not in ("up", "down"):
        return redirect(url_for("accounts.manage"))
    return _action(account_id, lambda a: account_service.move_in_failover(current_user, a, direction),
                   "Backup order updated.")


@bp.route("/<int:account_id>/test", methods=["POST"])
@rate_tier("heavy")
def test_connection(account_id: int):
    from app.services.connection import check_connection

    form = ActionForm()
    account = account_service.get_owned(current_user, account_id)
    if not form.validate_on_submit():
        return redirect(url_for("accounts.manage"))
    result = check_connection(account)
    flash(f"{account.account_name}: " + (f"connected ({result.broker})" if result.ok else result.error or ""),
          "success" if result.ok else "error")
    return redirect(url_for("accounts.manage"))


@bp.route("/<int:account_id>/refresh", methods=["POST"])
@rate_tier("heavy")
def refresh(account_id: int):
    form = ActionForm()
    account = account_service.get_owned(current_user, account_id)
    if form.validate_on_submit():
        refresh_stale([account], wait_seconds=5.0, force=True)
        db.session.refresh(account)
        if account.last_error:
            flash(f"{account.account_name}: refresh failed: {account.last_error}", "error")
        else:
            flash(f"{account.account_name}: data refreshed.", "success")
    if request.accept_mimetypes.best == "application/json":
        return jsonify(card_for(account).as_json())
    return redirect(url_for("accounts.manage"))


@bp.route("/add-paper", methods=["POST"])
@rate_tier("heavy")
def add_paper():
    form = ActionForm()
    if not form.validate_on_submit():
        return redirect(url_for("accounts.manage"))
    try:
        account = account_service.add_paper_account(current_user)
    except AccountError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        flash(f"Paper account {account.account_name} added with virtual funds.", "success")
    return redirect(url_for("accounts.manage"))
