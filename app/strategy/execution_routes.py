"""Execution pages: Execute a strategy, the runs list and run page with its close/retry buttons,
and the kill switch (confirm, press, live report). Thin: app/services/execution/ does the work.

Every record is found through the current user (app/strategy/queries.py): another user's id
is a 404. Every POST carries the CSRF token (BaseForm).
"""

from __future__ import annotations

import logging
import uuid

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user

from app.extensions import db
from app.forms_common import ActionForm
from app.services.execution.errors import EngineOffline, ExecutionRefused, TradingHalted
from app.services.strategy import crud
from app.strategy import bp
from app.strategy.execution_forms import ExecuteForm, KillSwitchForm
from app.strategy.queries import (
    check_leg_number,
    get_owned_kill_switch,
    get_owned_run,
    get_owned_run_account,
    owned_runs,
)
from app.strategy.run_view import kill_switch_json, run_json

logger = logging.getLogger(__name__)
EXPIRED = "The form expired; try again."


def engine_panel() -> dict:
    """The engine's state and the trading halt, for the pages that queue orders."""
    from app.services.execution.engine_state import engine_status
    from app.services.execution.halt import current_halt

    return {"engine": engine_status(), "halt": current_halt()}


def execute_form(strategy, formdata=None) -> ExecuteForm:
    """The Execute form of a strategy: its accounts (all ticked) and a fresh idempotency key."""
    names = crud.own_account_names(current_user)
    choices = [(a.account_id, names.get(a.account_id, f"Account {a.account_id}")) for a in strategy.accounts]
    if formdata is None:
        form = ExecuteForm(formdata=None, idempotency_key=str(uuid.uuid4()),
                           account_ids=[c[0] for c in choices])
    else:
        form = ExecuteForm()
    form.account_ids.choices = choices
    return form


@bp.route("/<int:strategy_id>/execute", methods=["POST"])
def execute(strategy_id: int):
    strategy = crud.get_owned(current_user, strategy_id)
    form = execute_form(strategy, formdata=True)
    back = redirect(url_for("strategy.edit", strategy_id=strategy.id) + "#execute")
    if not form.validate_on_submit():
        errors = form.account_ids.errors or form.idempotency_key.errors or [EXPIRED]
        flash(str(errors[0]), "error")
        return back
    from app.services.execution.planner import submit_execution

    try:
        run = submit_execution(current_user, strategy, idempotency_key=form.idempotency_key.data,
                               account_ids=list(form.account_ids.data), trigger="manual")
    except (EngineOffline, TradingHalted, ExecutionRefused) as exc:
        db.session.rollback()
        flash(exc.user_message, "error")
        return back
    return redirect(url_for("strategy.run_page", run_id=run.id))


@bp.route("/runs")
def runs():
    rows = list(db.session.scalars(owned_runs(current_user).limit(200)))
    return render_template("strategy/runs.html", runs=rows)


@bp.route("/runs/<int:run_id>")
def run_page(run_id: int):
    run = get_owned_run(current_user, run_id)
    return render_template("strategy/run.html", run=run, data=run_json(run), action_form=ActionForm(),
                           **engine_panel())


def _back_to(run_id: int):
    return redirect(url_for("strategy.run_page", run_id=run_id))


def _request_exit(run, **scope):
    if not ActionForm().validate_on_submit():
        flash(EXPIRED, "error")
        return _back_to(run.id)
    from app.services.execution.exits import request_exit

    try:
        request_exit(current_user, run, purpose="exit", reason="closed from the run page", **scope)
    except LookupError:
        db.session.rollback()
        abort(404)
    except EngineOffline as exc:
        db.session.rollback()
        flash(exc.user_message, "error")
        return _back_to(run.id)
    flash("Close requested; the engine is closing what is held.", "success")
    return _back_to(run.id)


@bp.route("/runs/<int:run_id>/close", methods=["POST"])
def close_run(run_id: int):
    return _request_exit(get_owned_run(current_user, run_id))


@bp.route("/runs/<int:run_id>/accounts/<int:run_account_id>/close", methods=["POST"])
def close_account(run_id: int, run_account_id: int):
    run = get_owned_run(current_user, run_id)
    return _request_exit(run, run_account=get_owned_run_account(current_user, run, run_account_id))


@bp.route("/runs/<int:run_id>/accounts/<int:run_account_id>/legs/<int:leg_number>/close", methods=["POST"])
def close_leg(run_id: int, run_account_id: int, leg_number: int):
    run = get_owned_run(current_user, run_id)
    row = get_owned_run_account(current_user, run, run_account_id)
    return _request_exit(run, run_account=row, leg_number=check_leg_number(run, leg_number))


@bp.route("/runs/<int:run_id>/accounts/<int:run_account_id>/retry", methods=["POST"])
def retry_account(run_id: int, run_account_id: int):
    run = get_owned_run(current_user, run_id)
    row = get_owned_run_account(current_user, run, run_account_id)
    if not ActionForm().validate_on_submit():
        flash(EXPIRED, "error")
        return _back_to(run.id)
    from app.services.execution.policy import request_retry

    try:
        created = request_retry(current_user, row.id)
    except LookupError:
        db.session.rollback()
        abort(404)
    except (EngineOffline, TradingHalted, ExecutionRefused) as exc:
        db.session.rollback()
        flash(exc.user_message, "error")
        return _back_to(run.id)
    if created == []:
        flash(f"Nothing to retry on {row.account_name}: no failed legs.", "info")
        return _back_to(run.id)
    flash(f"Retry of the failed legs on {row.account_name} requested.", "success")
    return _back_to(run.id)


@bp.route("/kill-switch", methods=["GET", "POST"])
def kill_switch():
    form = KillSwitchForm()
    if form.validate_on_submit():
        try:
            from app.services.execution.killswitch import press_kill_switch
        except ImportError:  # the exits engineer's module is not there yet
            abort(503, description="The kill switch is not available yet.")
        try:
            press = press_kill_switch(current_user)
        except EngineOffline as exc:
            db.session.rollback()
            flash(exc.user_message, "error")
            return redirect(url_for("main.dashboard"))
        return redirect(url_for("strategy.kill_switch_report", kill_switch_id=press.id))
    status = 400 if form.is_submitted() else 200
    return render_template("strategy/kill_switch_confirm.html", form=form, **engine_panel()), status


@bp.route("/kill-switch/<int:kill_switch_id>")
def kill_switch_report(kill_switch_id: int):
    press = get_owned_kill_switch(current_user, kill_switch_id)
    return render_template("strategy/kill_switch_report.html", press=press, data=kill_switch_json(press))
