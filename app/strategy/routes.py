"""Strategy pages. Thin: the form validates, app/services/strategy/ writes."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.extensions import db
from app.forms_common import ActionForm
from app.request_input import parse_bounded_int
from app.services.strategy import crud
from app.services.strategy import templates as template_service
from app.strategy import bp
from app.strategy.form_data import prefill_formdata
from app.strategy.forms import StrategyForm, TemplateNameForm, new_leg_form


@bp.before_request
@login_required
def _signed_in():
    return None


def _builder_form(body: dict[str, Any] | None = None) -> StrategyForm:
    own = crud.own_account_names(current_user)
    session = crud.regular_session()
    if request.method == "POST":
        return StrategyForm(own_accounts=own, session=session)
    return StrategyForm(formdata=prefill_formdata(body or _blank_body(), own), own_accounts=own, session=session)


def _blank_body() -> dict[str, Any]:
    return {"entry_time": "09:20", "exit_time": "15:00", "square_off_time": "15:15", "legs": [{}]}


def _render(form: StrategyForm, strategy=None, template_form: TemplateNameForm | None = None, status: int = 200):
    from app.strategy.execution_routes import engine_panel, execute_form

    extra = {"execute_form": execute_form(strategy), **engine_panel()} if strategy is not None else {}
    return render_template("strategy/builder.html", form=form, strategy=strategy, leg_template=new_leg_form(),
                           template_form=template_form or TemplateNameForm(formdata=None),
                           action_form=ActionForm(), session=form.session, **extra), status


@bp.route("")
def index():
    strategies = list(db.session.scalars(crud.owned_strategies(current_user)))
    templates = list(db.session.scalars(template_service.visible_templates(current_user)))
    return render_template("strategy/index.html", strategies=strategies, templates=templates,
                           action_form=ActionForm())


@bp.route("/builder", methods=["GET", "POST"])
def builder():
    body = None
    if request.method == "GET" and request.args.get("template") is not None:
        template_id = parse_bounded_int(request.args.get("template"), minimum=1, maximum=2**31 - 1)
        if template_id is None:
            abort(404)
        template = template_service.get_visible(current_user, template_id)
        body = template_service.strategy_body(template)
    form = _builder_form(body)
    if request.method == "GET":
        return _render(form)
    if form.validate():
        strategy = crud.create_strategy(current_user, form.to_spec())
        flash(f"Strategy {strategy.name} saved.", "success")
        return redirect(url_for("strategy.edit", strategy_id=strategy.id))
    return _render(form, status=400)


@bp.route("/<int:strategy_id>", methods=["GET", "POST"])
def edit(strategy_id: int):
    strategy = crud.get_owned(current_user, strategy_id)
    form = _builder_form(crud.strategy_dict(strategy))
    if request.method == "GET":
        return _render(form, strategy)
    if form.validate():
        crud.update_strategy(current_user, strategy, form.to_spec())
        flash(f"Strategy {strategy.name} saved.", "success")
        return redirect(url_for("strategy.edit", strategy_id=strategy.id))
    return _render(form, strategy, status=400)


@bp.route("/<int:strategy_id>/delete", methods=["POST"])
def delete(strategy_id: int):
    strategy = crud.get_owned(current_user, strategy_id)
    if not ActionForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for("strategy.edit", strategy_id=strategy_id))
    name = strategy.name
    try:
        crud.delete_strategy(current_user, strategy)
    except crud.StrategyHasOpenRuns as exc:
        flash(exc.user_message, "error")
        return redirect(url_for("strategy.edit", strategy_id=strategy_id))
    flash(f"Strategy {name} deleted.", "success")
    return redirect(url_for("strategy.index"))


@bp.route("/<int:strategy_id>/template", methods=["POST"])
def save_template(strategy_id: int):
    strategy = crud.get_owned(current_user, strategy_id)
    template_form = TemplateNameForm()
    if template_form.validate_on_submit():
        try:
            template = template_service.save_as_template(current_user, strategy, template_form.name.data)
        except template_service.TemplateError as exc:
            db.session.rollback()
            template_form.name.errors = [exc.message]
        else:
            flash(f"Template {template.name} saved.", "success")
            return redirect(url_for("strategy.index"))
    strategy = crud.get_owned(current_user, strategy_id)
    own = crud.own_account_names(current_user)
    form = StrategyForm(formdata=prefill_formdata(crud.strategy_dict(strategy), own), own_accounts=own,
                        session=crud.regular_session())
    return _render(form, strategy, template_form, status=400)


@bp.route("/templates/<int:template_id>/delete", methods=["POST"])
def delete_template(template_id: int):
    template = template_service.get_editable(current_user, template_id)
    if not ActionForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for("strategy.index"))
    name = template.name
    template_service.delete_template(current_user, template)
    flash(f"Template {name} deleted.", "success")
    return redirect(url_for("strategy.index"))
