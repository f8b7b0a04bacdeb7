"""JSON preview of a strategy before execution: GET /api/strategies/<id>/preview.

Owner-scoped (another user's id is a 404, never confirmed), signed-in only (the api
blueprint's guard), rate-limited in the heavy tier: every preview asks the market-data
account afresh. A GET: it changes nothing. The body is described in docs/strategies.md.
"""

from __future__ import annotations

from flask import jsonify
from flask_login import current_user

from app.api import bp
from app.extensions import rate_tier
from app.services.strategy import crud
from app.services.strategy import preview as preview_service


@bp.route("/strategies/<int:strategy_id>/preview")
@rate_tier("heavy")
def strategy_preview(strategy_id: int):
    strategy = crud.get_owned(current_user, strategy_id)
    try:
        body = preview_service.build_preview(current_user, strategy)
    except preview_service.PreviewInvalid as exc:
        return jsonify({"status": "error", "error": str(exc), "source_down": False}), 422
    # The market-data account failing is the server side's problem (retry later): 503. Legs
    # that do not resolve are an answer about the strategy: 200, with every leg's reason.
    return jsonify(body), 503 if body["source_down"] else 200
