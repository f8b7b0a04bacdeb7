from flask import jsonify, request
from flask_login import current_user, login_required

from app.api import bp
from app.extensions import db, rate_tier
from app.services import accounts as account_service
from app.services.account_data import refresh_stale
from app.services.connection import check_connection
from app.services.dashboard import card_for, snapshot


@bp.before_request
@login_required
def _signed_in():
    return None


@bp.route("/dashboard")
@rate_tier("api")
def dashboard():
    return jsonify(snapshot(current_user))


@bp.route("/accounts")
@rate_tier("api")
def accounts():
    rows = db.session.scalars(account_service.owned_accounts(current_user))
    return jsonify({"accounts": [card_for(a).as_json() for a in rows]})


@bp.route("/accounts/<int:account_id>")
@rate_tier("api")
def account(account_id: int):
    return jsonify(card_for(account_service.get_owned(current_user, account_id)).as_json())


@bp.route("/accounts/<int:account_id>/test", methods=["POST"])
@rate_tier("heavy")
def test_account(account_id: int):
    target = account_service.get_owned(current_user, account_id)
    outcome = check_connection(target)
    return jsonify({"status": "success" if outcome.ok else "error", "broker": outcome.broker,
                    "message": outcome.error or "connected"}), (200 if outcome.ok else 502)


@bp.route("/accounts/<int:account_id>/refresh", methods=["POST"])
@rate_tier("heavy")
def refresh_account(account_id: int):
    target = account_service.get_owned(current_user, account_id)
    refresh_stale([target], wait_seconds=5.0, force=True)
    db.session.refresh(target)
    return jsonify(card_for(target).as_json())


@bp.route("/option-chain")
@rate_tier("api")
def option_chain():
    from app.domain.instruments import UNDERLYINGS
    from app.services.option_chain import OptionChainError, chain

    symbol = (request.args.get("underlying") or "NIFTY").upper()
    if symbol not in UNDERLYINGS:
        return jsonify({"status": "error", "message": f"Unknown underlying {symbol[:20]!r}."}), 400
    strikes = request.args.get("strikes", 10, type=int)
    if strikes is None or not 1 <= strikes <= 50:
        return jsonify({"status": "error", "message": "strikes must be between 1 and 50."}), 400
    try:
        data = chain(current_user, symbol, request.args.get("expiry") or None, strikes)
    except OptionChainError as exc:
        return jsonify({"status": "error", "message": str(exc)}), 502
    return jsonify({"status": "success", **data})
