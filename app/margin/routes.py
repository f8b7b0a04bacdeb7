"""The margin calculator page (GET: no state change) and its JSON (POST, CSRF header)."""

from __future__ import annotations

from typing import Any

from flask import jsonify, render_template, request
from flask_login import current_user, login_required

from app.domain.errors import DomainError
from app.domain.margin import AVAILABLE_MARGIN_FORMULA, TradeType
from app.domain.money import format_inr
from app.domain.sizing import RiskProfile
from app.extensions import db, rate_tier
from app.margin import bp
from app.margin.forms import CalculatorForm
from app.services.accounts import owned_accounts
from app.services.margin import tables
from app.services.margin.calculator import Calculation, calculate
from app.services.margin.contracts import ContractError
from app.services.margin.sizing import AccountNotFound, MarginUnavailable, result_as_json


@bp.before_request
@login_required
def _signed_in():
    return None


def _form(**kwargs: Any) -> CalculatorForm:
    form = CalculatorForm(**kwargs)
    form.set_share_choices(dict(tables.tables().grades))
    return form


def _run(form: CalculatorForm) -> Calculation:
    """Raises AccountNotFound, MarginUnavailable, ContractError, DomainError."""
    kind, _, value = str(form.share.data).partition(":")
    grades = tables.tables().grades
    return calculate(current_user, list(form.accounts.data or []), str(form.underlying.data),
                     TradeType(form.trade_type.data),
                     grade=value if kind == "grade" else None,
                     grade_percent=grades.get(value) if kind == "grade" else None,
                     profile=RiskProfile(value) if kind == "profile" else None,
                     allowed_splits=int(form.allowed_splits.data or 1))


def _as_json(calc: Calculation) -> dict[str, Any]:
    spec = calc.contract
    return {"status": "success", **result_as_json(calc.result), "share": calc.share_label,
            "percent": str(calc.percent), "market_data_account": calc.source_account,
            "contract": {"symbol": calc.contract_symbol, "lot_size": spec.lot_size, "freeze_qty": spec.freeze_qty,
                         "max_lots_per_order": spec.max_lots_per_order, "lot_source": spec.lot_source,
                         "freeze_source": spec.freeze_source}}


def _render(form: CalculatorForm, calc: Calculation | None = None, error: str | None = None, status: int = 200):
    accounts = list(db.session.scalars(owned_accounts(current_user, include_inactive=False)))
    chosen = set(form.accounts.data or [])
    return render_template("margin/calculator.html", form=form, accounts=accounts, chosen=chosen, calc=calc,
                           error=error, inr=format_inr, formula=AVAILABLE_MARGIN_FORMULA), status


@bp.route("/margin/calculator")
def calculator():
    """The empty form (opening it costs no "heavy" budget: only results call brokers)."""
    return _render(_form())


@bp.route("/margin/calculator/results")
@rate_tier("heavy")
def calculator_results():
    """The form's GET submission: per-account sizing (reads, changes nothing)."""
    form = _form(formdata=request.args)
    if not form.validate():
        return _render(form, status=400)
    try:
        return _render(form, _run(form))
    except AccountNotFound as exc:
        form.accounts.errors = [str(exc)]
        return _render(form, status=400)
    except (MarginUnavailable, ContractError, DomainError) as exc:
        return _render(form, error=str(exc), status=422)


@bp.route("/api/margin/calculate", methods=["POST"])
@rate_tier("heavy")
def api_calculate():
    form = _form()  # reads the JSON body as flat fields (lists become repeated fields)
    if not form.validate():
        return jsonify({"status": "error", "message": "Invalid input.", "errors": form.errors}), 400
    try:
        calc = _run(form)
    except AccountNotFound as exc:
        return jsonify({"status": "error", "message": str(exc), "errors": {"accounts": [str(exc)]}}), 404
    except (MarginUnavailable, ContractError, DomainError) as exc:
        return jsonify({"status": "error", "message": str(exc)}), 422
    return jsonify(_as_json(calc))
