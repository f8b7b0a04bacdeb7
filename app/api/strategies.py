"""JSON API for strategies and templates (docs/strategies.md).

Same validation as the builder page (app/strategy/forms.py), owner-scoped, CSRF-protected
by the app-wide check (header X-CSRFToken). A 400 names every bad field:
{"status": "error", "error": "...", "fields": {"legs.2.lots": "..."}}.
"""

from __future__ import annotations

from typing import Any

from flask import abort, jsonify, request
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from app.api import bp
from app.extensions import db, rate_tier
from app.services.strategy import crud
from app.services.strategy import templates as template_service
from app.strategy.form_data import dotted_errors, formdata_from_json
from app.strategy.forms import StrategyForm, TemplateNameForm


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description="The body must be a JSON object.")
    return body


def _invalid(fields: dict[str, str]):
    return jsonify({"status": "error", "error": "The strategy has errors; nothing was saved.",
                    "fields": fields}), 400


def _validated(body: dict[str, Any]) -> tuple[StrategyForm | None, Any]:
    """The valid form for a JSON strategy, or (None, the 400 response naming the fields)."""
    try:
        data = formdata_from_json(body)
    except ValueError as exc:
        return None, _invalid(exc.args[0])
    form = StrategyForm(formdata=data, own_accounts=crud.own_account_names(current_user),
                        session=crud.regular_session(), meta={"csrf": False})
    if not form.validate():
        return None, _invalid(dotted_errors(form))
    return form, None


@bp.route("/strategies")
@rate_tier("api")
def list_strategies():
    rows = db.session.scalars(crud.owned_strategies(current_user))
    return jsonify({"strategies": [crud.strategy_dict(s) for s in rows]})


@bp.route("/strategies", methods=["POST"])
@rate_tier("api")
def create_strategy():
    form, error = _validated(_body())
    if form is None:
        return error
    strategy = crud.create_strategy(current_user, form.to_spec())
    return jsonify(crud.strategy_dict(strategy)), 201


@bp.route("/strategies/<int:strategy_id>")
@rate_tier("api")
def get_strategy(strategy_id: int):
    return jsonify(crud.strategy_dict(crud.get_owned(current_user, strategy_id)))


@bp.route("/strategies/<int:strategy_id>", methods=["PUT", "PATCH"])
@rate_tier("api")
def update_strategy(strategy_id: int):
    strategy = crud.get_owned(current_user, strategy_id)
    body = _body()
    if request.method == "PATCH":  # the stored strategy, with the fields given replaced
        body = {**crud.strategy_dict(strategy), **body}
    form, error = _validated(body)
    if form is None:
        return error
    crud.update_strategy(current_user, strategy, form.to_spec())
    return jsonify(crud.strategy_dict(strategy))


@bp.route("/strategies/<int:strategy_id>", methods=["DELETE"])
@rate_tier("api")
def delete_strategy(strategy_id: int):
    try:
        crud.delete_strategy(current_user, crud.get_owned(current_user, strategy_id))
    except crud.StrategyHasOpenRuns as exc:
        return jsonify({"status": "error", "message": exc.user_message}), 409
    return jsonify({"status": "success", "deleted": strategy_id})


@bp.route("/templates")
@rate_tier("api")
def list_templates():
    rows = db.session.scalars(template_service.visible_templates(current_user))
    return jsonify({"templates": [template_service.template_dict(t) for t in rows]})


@bp.route("/templates/<int:template_id>")
@rate_tier("api")
def get_template(template_id: int):
    return jsonify(template_service.template_dict(template_service.get_visible(current_user, template_id)))


@bp.route("/templates", methods=["POST"])
@rate_tier("api")
def save_template():
    """Save one of the user's strategies as a template: {"strategy_id": 3, "name": "My condor"}."""
    body = _body()
    raw_id = body.get("strategy_id")
    if not isinstance(raw_id, int) or isinstance(raw_id, bool) or not 1 <= raw_id < 2**31:
        return jsonify({"status": "error", "error": "Name one of your strategies.",
                        "fields": {"strategy_id": "must be the id of one of your strategies"}}), 400
    strategy = crud.get_owned(current_user, raw_id)
    form = TemplateNameForm(formdata=MultiDict({"name": body.get("name") if isinstance(body.get("name"), str)
                                                else ""}), meta={"csrf": False})
    if not form.validate():
        return jsonify({"status": "error", "error": "The template name is not valid.",
                        "fields": {"name": form.name.errors[0]}}), 400
    try:
        template = template_service.save_as_template(current_user, strategy, form.name.data)
    except template_service.TemplateError as exc:
        db.session.rollback()
        return jsonify({"status": "error", "error": exc.message, "fields": {exc.field: exc.message}}), 400
    return jsonify(template_service.template_dict(template)), 201


@bp.route("/templates/<int:template_id>", methods=["DELETE"])
@rate_tier("api")
def delete_template(template_id: int):
    template = template_service.get_editable(current_user, template_id)
    template_service.delete_template(current_user, template)
    return jsonify({"status": "success", "deleted": template_id})


@bp.route("/templates/<int:template_id>/instantiate", methods=["POST"])
@rate_tier("api")
def instantiate_template(template_id: int):
    """A new strategy from a template: {"name": "...", "accounts": [...]} (both optional)."""
    template = template_service.get_visible(current_user, template_id)
    body = _body()
    name = body.get("name")
    accounts = body.get("accounts")
    form, error = _validated(template_service.strategy_body(
        template, name if name is None or isinstance(name, str) else str(name),
        accounts if isinstance(accounts, list) else None))
    if form is None:
        return error
    strategy = crud.create_strategy(current_user, form.to_spec())
    return jsonify(crud.strategy_dict(strategy)), 201
