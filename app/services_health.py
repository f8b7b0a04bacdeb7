"""GET /healthz/services: who holds the service lease and how each background service is doing.

Admin only. JSON by default (monitoring, fetch); an HTML page when a browser asks for one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request
from sqlalchemy import select

from app.extensions import db
from app.models.services import ServiceHeartbeat, ServiceLease
from app.models.types import utcnow
from app.security.guards import admin_required
from app.services.lease import DEFAULT_LEASE_NAME, parse_holder
from app.services.runner import current_runner

bp = Blueprint("services_health", __name__)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def services_report(now: datetime | None = None) -> dict[str, Any]:
    """The lease row, every heartbeat row and this process's runner (times as aware UTC datetimes)."""
    now = now or utcnow()
    lease = db.session.get(ServiceLease, DEFAULT_LEASE_NAME)
    lease_info: dict[str, Any] | None = None
    if lease is not None:
        lease_info = {
            "name": lease.name, "holder": lease.holder, **parse_holder(lease.holder),
            "acquired_at": lease.acquired_at, "renewed_at": lease.renewed_at,
            "expires_at": lease.expires_at, "generation": lease.generation,
            "expired": lease.expires_at < now,
        }
    services = [
        {"service": hb.service, "holder": hb.holder, "status": hb.status, "last_beat_at": hb.last_beat_at,
         "age_seconds": round((now - hb.last_beat_at).total_seconds(), 1), "last_error": hb.last_error,
         "details": hb.details}
        for hb in db.session.scalars(select(ServiceHeartbeat).order_by(ServiceHeartbeat.service))
    ]
    runner = current_runner(current_app._get_current_object())  # type: ignore[attr-defined]
    healthy = lease_info is not None and not lease_info["expired"]
    return {"status": "ok" if healthy else "no_leader", "now": now, "lease": lease_info,
            "services": services, "this_process": runner.status() if runner is not None else None}


def _wants_html() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html" and request.args.get("format") != "json"


@bp.route("/healthz/services")
@admin_required
def services():
    report = services_report()
    if _wants_html():
        return render_template("admin/calendar/services_health.html", report=report)
    code = 200 if report["status"] == "ok" else 503  # a probe sees "no leader" without parsing JSON
    return jsonify(_jsonable(report)), code
