"""The risk event log: /strategy/risk-events (filters, pages, times in IST) and its CSV export.

Thin: app/services/risk/events.py owns the queries and the CSV. Everyone, admins included,
sees only their own events here; a filter naming another user's strategy or account simply
finds nothing (the owner condition is always in the query), so no id is ever confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Response, abort, current_app, render_template, request
from flask_login import current_user, login_required

from app.domain.formatting import indian_number
from app.domain.risk_settings import EVENT_TYPE_LABELS, RiskEventType
from app.extensions import db, rate_tier
from app.models.risk import RiskEvent
from app.models.types import utcnow
from app.request_input import day_arg, int_arg
from app.services.risk.events import (
    RiskEventFilter,
    account_label,
    account_names,
    event_strategies,
    events_csv,
    owned_events,
    type_label,
)
from app.strategy import bp
from app.timeutil import to_ist

DEFAULT_PAGE_SIZE = 50
EXPORT_MAX_ROWS = 50_000
MAX_PAGE = 100_000
MAX_ID = 2**63 - 1
COMBINED = "combined"


def _filter_from_args() -> RiskEventFilter:
    args = request.args
    raw_type = args.get("type") or None
    try:
        event_type = RiskEventType(raw_type) if raw_type else None
    except ValueError:
        abort(400, description="Unknown risk event type.")
    account = args.get("account") or ""
    combined = account == COMBINED
    return RiskEventFilter(
        strategy_id=_optional_id("strategy"),
        account_id=None if combined else _optional_id("account"),
        combined_only=combined,
        event_type=event_type,
        day=day_arg(args.get("date")),
    )


def _optional_id(name: str) -> int | None:
    value = int_arg(name, 0, minimum=0, maximum=MAX_ID)
    return value or None


@dataclass(frozen=True)
class EventRow:
    """One event as the page shows it (numbers formatted by the server, times in IST)."""

    event: RiskEvent
    account: str
    type: str
    threshold: str
    current_value: str


def _rows(events: list[RiskEvent], names: dict[int, str]) -> list[EventRow]:
    return [EventRow(e, account_label(e, names), type_label(e), indian_number(e.threshold, 2),
                     indian_number(e.current_value, 2)) for e in events]


@bp.route("/risk-events")
@login_required
def risk_events():
    flt = _filter_from_args()
    page = int_arg("page", 1, minimum=1, maximum=MAX_PAGE)
    per_page = int(current_app.config.get("RISK_EVENTS_PAGE_SIZE", DEFAULT_PAGE_SIZE))
    pagination = db.paginate(owned_events(current_user.id, flt), page=page, per_page=per_page, error_out=False)
    names = account_names(current_user.id)
    return render_template(
        "strategy/risk_events.html",
        pagination=pagination,
        rows=_rows(list(pagination.items), names),
        flt=request.args,
        filter_args={k: v for k, v in request.args.items() if k != "page"},
        strategies=event_strategies(current_user.id),
        accounts=names,
        types=EVENT_TYPE_LABELS,
        combined=COMBINED,
    )


@bp.route("/risk-events.csv")
@rate_tier("heavy")
@login_required
def risk_events_csv():
    flt = _filter_from_args()
    events = db.session.scalars(owned_events(current_user.id, flt).limit(EXPORT_MAX_ROWS)).all()
    body = events_csv(events, account_names(current_user.id))
    stamp = to_ist(utcnow()).strftime("%Y%m%d-%H%M%S")
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="risk-events-{stamp}.csv"'})
