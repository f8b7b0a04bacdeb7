"""Writing and querying the audit log."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import has_request_context, request
from sqlalchemy import Select, select

from app.extensions import db
from app.models.audit import OUTCOME_FAILURE, OUTCOME_SUCCESS, ActivityLog
from app.models.users import User
from app.text_safety import replace_nul
from app.timeutil import to_ist

logger = logging.getLogger(__name__)

USERNAME_MAX = 64  # ActivityLog.username
SECRET_MARKERS = ("password", "secret", "token", "apikey", "api_key", "key", "otp", "csrf")
REDACTED = "[redacted]"


def scrub(details: Any) -> Any:
    """Remove values whose key looks secret, at any depth."""
    if isinstance(details, dict):
        return {
            k: (REDACTED if any(m in str(k).lower() for m in SECRET_MARKERS) else scrub(v))
            for k, v in details.items()
        }
    if isinstance(details, list | tuple):
        return [scrub(v) for v in details]
    return details


def _storable(value: str | None, max_length: int) -> str | None:
    return None if value is None else replace_nul(value)[:max_length]


def client_ip() -> str | None:
    return request.remote_addr if has_request_context() else None


def record(
    action: str,
    *,
    category: str,
    user: User | None = None,
    success: bool = True,
    details: dict[str, Any] | None = None,
    username: str | None = None,
    commit: bool = True,
) -> ActivityLog:
    """Append an entry to the audit log.

    Args:
        action: what happened, e.g. "login", "user_deactivated".
        category: area, e.g. "auth", "admin", "security".
        user: the user the entry belongs to (actor, or target of a failed login).
        success: outcome.
        details: context; keys that look secret are redacted before storing.
        username: name to record when there is no user row (e.g. an unknown login name).
        commit: commit the session now (False when the caller commits with its own change).
    """
    # Bad input is what an audit log must keep: NUL (refused by PostgreSQL) becomes U+FFFD and
    # over-long values are cut to the column, so a failed login with a NUL name is still recorded.
    name = user.username if user is not None else username
    entry = ActivityLog(
        user_id=user.id if user is not None else None,
        username=_storable(name, USERNAME_MAX),
        action=action,
        category=category,
        outcome=OUTCOME_SUCCESS if success else OUTCOME_FAILURE,
        ip_address=_storable(client_ip(), 64),
        user_agent=_storable(request.user_agent.string if has_request_context() else None, 255),
        details=replace_nul(scrub(details or {})),
    )
    db.session.add(entry)
    if commit:
        db.session.commit()
    logger.info(
        "audit action=%s category=%s outcome=%s user=%s", action, category, entry.outcome, entry.username
    )
    return entry


@dataclass(frozen=True)
class AuditFilter:
    action: str | None = None
    category: str | None = None
    outcome: str | None = None
    username: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def visible_entries(viewer: User, flt: AuditFilter) -> Select[ActivityLog]:
    """Entries the viewer may see (admins: all; others: their own), filtered, newest first."""
    stmt = select(ActivityLog)
    if not viewer.is_admin:
        stmt = stmt.where(ActivityLog.user_id == viewer.id)
    elif flt.username:
        stmt = stmt.where(ActivityLog.username == flt.username.strip().lower())
    if flt.action:
        stmt = stmt.where(ActivityLog.action == flt.action)
    if flt.category:
        stmt = stmt.where(ActivityLog.category == flt.category)
    if flt.outcome:
        stmt = stmt.where(ActivityLog.outcome == flt.outcome)
    if flt.since:
        stmt = stmt.where(ActivityLog.created_at >= flt.since)
    if flt.until:
        stmt = stmt.where(ActivityLog.created_at < flt.until)
    return stmt.order_by(ActivityLog.created_at.desc(), ActivityLog.id.desc())


def distinct_values(viewer: User, column) -> list[str]:
    stmt = select(column).distinct().order_by(column)
    if not viewer.is_admin:
        stmt = stmt.where(ActivityLog.user_id == viewer.id)
    return [v for v in db.session.scalars(stmt) if v]


CSV_HEADER = ["time_ist", "time_utc", "user", "action", "category", "outcome", "ip", "user_agent", "details"]


def _csv_safe(value: str) -> str:
    # Spreadsheet formula injection: a cell starting with = + - @ is shown as text.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def to_csv(entries: Iterable[ActivityLog]) -> str:
    import json

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    for e in entries:
        writer.writerow(
            [
                to_ist(e.created_at).strftime("%Y-%m-%d %H:%M:%S IST"),
                e.created_at.isoformat(),
                _csv_safe(e.username or ""),
                e.action,
                e.category,
                e.outcome,
                e.ip_address or "",
                _csv_safe(e.user_agent or ""),
                _csv_safe(json.dumps(e.details or {}, sort_keys=True)),
            ]
        )
    return buffer.getvalue()


__all__ = ["OUTCOME_FAILURE", "OUTCOME_SUCCESS", "AuditFilter", "record", "to_csv", "visible_entries"]
