from datetime import datetime, timedelta

from flask import Response, abort, current_app, render_template, request
from flask_login import current_user, login_required

from app.audit import bp
from app.extensions import db, rate_tier
from app.models.audit import OUTCOMES, ActivityLog
from app.request_input import day_arg, int_arg, text_arg
from app.services.audit import AuditFilter, distinct_values, to_csv, visible_entries
from app.timeutil import ist_day_start_utc

EXPORT_MAX_ROWS = 50_000
MAX_PAGE = 100_000


def _filter_from_args() -> AuditFilter:
    args = request.args
    outcome = args.get("outcome") or None
    if outcome and outcome not in OUTCOMES:
        abort(400, description="Outcome must be success or failure.")
    since_day, until_day = day_arg(args.get("from")), day_arg(args.get("to"))
    return AuditFilter(
        action=text_arg("action", max_length=64),
        category=text_arg("category", max_length=32),
        outcome=outcome,
        username=text_arg("user", max_length=64),
        since=ist_day_start_utc(since_day) if since_day else None,
        until=ist_day_start_utc(until_day + timedelta(days=1)) if until_day else None,
    )


@bp.route("/")
@login_required
def index():
    flt = _filter_from_args()
    page = int_arg("page", 1, minimum=1, maximum=MAX_PAGE)
    pagination = db.paginate(visible_entries(current_user, flt), page=page,
                             per_page=current_app.config["AUDIT_PAGE_SIZE"], error_out=False)
    return render_template(
        "audit/index.html",
        pagination=pagination,
        entries=pagination.items,
        flt=request.args,
        actions=distinct_values(current_user, ActivityLog.action),
        categories=distinct_values(current_user, ActivityLog.category),
        outcomes=OUTCOMES,
    )


@bp.route("/export.csv")
@rate_tier("heavy")
@login_required
def export_csv():
    flt = _filter_from_args()
    entries = db.session.scalars(visible_entries(current_user, flt).limit(EXPORT_MAX_ROWS)).all()
    body = to_csv(entries)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="audit-log-{stamp}.csv"'})
