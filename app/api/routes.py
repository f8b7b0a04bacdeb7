from flask import jsonify
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
