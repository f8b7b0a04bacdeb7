"""JSON of runs and kill-switch presses for the live pages: GET /api/runs/<id>, GET /api/kill-switches/<id>.

Owner-scoped (another user's id is a 404), signed-in only (the api blueprint's guard), in the
api rate-limit tier. Built from the database alone, so every web worker answers the same.
"""

from __future__ import annotations

from flask import jsonify
from flask_login import current_user

from app.api import bp
from app.extensions import rate_tier
from app.strategy.queries import get_owned_kill_switch, get_owned_run
from app.strategy.run_view import kill_switch_json, run_json


@bp.route("/runs/<int:run_id>")
@rate_tier("api")
def run_detail(run_id: int):
    return jsonify(run_json(get_owned_run(current_user, run_id)))


@bp.route("/kill-switches/<int:kill_switch_id>")
@rate_tier("api")
def kill_switch_detail(kill_switch_id: int):
    return jsonify(kill_switch_json(get_owned_kill_switch(current_user, kill_switch_id)))
