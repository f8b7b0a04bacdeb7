"""Admin pages for contract settings, margin per lot and trade-quality grades (/margin/settings).

Part of the margin_admin blueprint (guarded as a whole). Each row is its own POST form with
CSRF; a change goes through app.services.margin.tables, which audits it with before/after.
The contract table shows, beside the stored figures, what the broker reports for the
nearest futures contract through the admin's own market-data account, when that differs.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import date
from typing import Any

from flask import Flask, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user

from app.broker.client import OpenAlgoClient
from app.broker.errors import BrokerError, HostNotAllowed
from app.domain.errors import DomainError
from app.domain.legs import expiry_reference_day
from app.domain.margin import TradeType
from app.domain.money import format_inr
from app.extensions import db
from app.margin import admin_bp
from app.margin.forms import TRADE_TYPE_NAMES, ContractForm, GradeForm, MarginForm
from app.models.types import utcnow
from app.services.accounts import client_for
from app.services.margin import tables
from app.services.margin.contracts import ContractError, ContractSpec, contract_spec, reference_future
from app.services.market_source import market_data_account
from app.services.short_cache import CacheWaitTimeout

logger = logging.getLogger(__name__)


def _broker_spec(app: Flask, client: OpenAlgoClient, underlying: str, today: date) -> ContractSpec | str:
    """One underlying's broker figures (nearest futures contract), or why there are none."""
    with app.app_context():
        try:
            symbol, exchange, expiry = reference_future(client, underlying, today)
            spec = contract_spec(client, underlying, symbol, exchange, expiry, today=today)
        except (BrokerError, CacheWaitTimeout, ContractError, DomainError, KeyError) as exc:
            return f"{underlying}: {exc}"
        finally:
            db.session.remove()
        return spec if spec.lot_source == "broker" else (spec.broker_error or f"{underlying}: no lot size reported")


def _broker_specs() -> tuple[dict[str, ContractSpec], str | None, str | None]:
    """What the broker reports per underlying (asked in parallel), the account asked, and a
    note when it could not be asked."""
    account = market_data_account(current_user)
    if account is None:
        return {}, None, "Add an account to compare with what the broker reports."
    name = account.account_name
    try:
        client = client_for(account)
    except HostNotAllowed as exc:
        return {}, name, str(exc)
    underlyings = list(tables.tables().contracts)
    db.session.commit()  # nothing held across the broker calls
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    today = expiry_reference_day(utcnow())  # the session a contract would trade in (after 15:30: tomorrow)
    cfg = current_app.config
    deadline = float(cfg["BROKER_CONNECT_TIMEOUT"] + 2 * cfg["BROKER_READ_TIMEOUT"])
    pool = ThreadPoolExecutor(max_workers=len(underlyings) or 1, thread_name_prefix="contract-spec")
    futures = {u: pool.submit(_broker_spec, app, client, u, today) for u in underlyings}
    wait(list(futures.values()), timeout=deadline)
    pool.shutdown(wait=False)  # a look-up past the deadline finishes (and fills the cache) on its own
    found: dict[str, ContractSpec] = {}
    notes = []
    for underlying, future in futures.items():
        outcome = future.result() if future.done() else f"{underlying}: no answer within {deadline:g} s"
        if isinstance(outcome, str):
            notes.append(outcome)
        else:
            found[underlying] = outcome
    return found, name, "; ".join(notes) or None


def _page(status: int = 200, failed: tuple[str, Any] | None = None):
    current = tables.tables()
    broker, source, note = _broker_specs()
    return render_template(
        "margin/settings.html", contracts=list(current.contracts.values()), margins=current.margins,
        grades=current.grades, broker=broker, source=source, broker_note=note, failed=failed,
        trade_types=[TradeType(v) for v in TRADE_TYPE_NAMES], trade_type_names=TRADE_TYPE_NAMES,
        inr=format_inr), status


@admin_bp.route("/margin/settings")
def settings():
    return _page()


@admin_bp.route("/margin/settings/contracts/<underlying>", methods=["POST"])
def update_contract(underlying: str):
    if underlying.upper() not in tables.tables().contracts:
        abort(404)
    form = ContractForm()
    if not form.validate():
        return _page(400, (f"contract:{underlying.upper()}", form))
    try:
        changed = tables.update_contract(current_user, underlying, lot_size=form.lot_size.data,
                                         next_month_lot_size=form.next_month_lot_size.data,
                                         freeze_qty=form.freeze_qty.data, strike_step=form.strike_step.data)
    except (tables.UnknownRow, DomainError, ValueError) as exc:
        form.form_errors.append(str(exc))
        return _page(400, (f"contract:{underlying.upper()}", form))
    flash(f"{underlying.upper()} contract settings saved." if changed else "Nothing changed.", "success")
    return redirect(url_for("margin_admin.settings"))


@admin_bp.route("/margin/settings/margins/<underlying>/<trade_type>", methods=["POST"])
def update_margin(underlying: str, trade_type: str):
    key = underlying.upper()
    if key not in tables.tables().margins or trade_type not in TRADE_TYPE_NAMES:
        abort(404)
    form = MarginForm()
    if not form.validate():
        return _page(400, (f"margin:{key}:{trade_type}", form))
    try:
        changed = tables.update_margin(current_user, key, trade_type, expiry_margin=form.expiry_margin.data,
                                       non_expiry_margin=form.non_expiry_margin.data)
    except (tables.UnknownRow, ValueError) as exc:
        form.form_errors.append(str(exc))
        return _page(400, (f"margin:{key}:{trade_type}", form))
    flash(f"{key} {TRADE_TYPE_NAMES[trade_type]} margin saved." if changed else "Nothing changed.", "success")
    return redirect(url_for("margin_admin.settings"))


@admin_bp.route("/margin/settings/grades/<grade>", methods=["POST"])
def update_grade(grade: str):
    key = grade.upper()
    if key not in tables.tables().grades:
        abort(404)
    form = GradeForm()
    if not form.validate():
        return _page(400, (f"grade:{key}", form))
    try:
        changed = tables.update_grade(current_user, key, percent=form.percent.data)
    except (tables.UnknownRow, ValueError) as exc:
        form.form_errors.append(str(exc))
        return _page(400, (f"grade:{key}", form))
    flash(f"Grade {key} saved." if changed else "Nothing changed.", "success")
    return redirect(url_for("margin_admin.settings"))
