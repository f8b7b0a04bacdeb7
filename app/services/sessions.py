"""Server-side sign-in records: create, resolve on every request, list, and revoke.

One record per sign-in (login or registration). The browser keeps a random token in the
Flask session and, with "remember me", in the remember-me cookie; the database keeps only
the token's SHA-256. A request is signed in only while its record exists, is not revoked,
has been seen within the idle limit, and belongs to an active user, so logout, "end this
device", password changes and deactivation take effect on the server: a copied cookie
stops working at once.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, or_, select, update

from app.domain.devices import describe_user_agent
from app.extensions import db
from app.models.sessions import UserSession
from app.models.types import utcnow
from app.models.users import User
from app.services import audit

logger = logging.getLogger(__name__)

# last_seen_at is written at most this often per sign-in, not on every request.
DEFAULT_TOUCH_SECONDS = 60
# Revoked and expired records stay visible to audits this long, then a later sign-in of the
# same user deletes them.
RETENTION_DAYS = 30
MAX_TOKEN_LENGTH = 128

REASON_LOGOUT = "logout"
REASON_ENDED_BY_USER = "ended_by_user"
REASON_ENDED_BY_ADMIN = "ended_by_admin"
REASON_PASSWORD_CHANGE = "password_change"
REASON_PASSWORD_RESET = "password_reset"
REASON_DEACTIVATED = "deactivated"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _touch_interval() -> timedelta:
    return timedelta(seconds=current_app.config.get("SESSION_TOUCH_SECONDS", DEFAULT_TOUCH_SECONDS))


def idle_limit() -> timedelta:
    """A sign-in unused this long is over: the remember-me cookie's own lifetime."""
    return current_app.config["REMEMBER_COOKIE_DURATION"]


def start(user: User, *, user_agent: str | None, ip: str | None) -> UserSession:
    """Create the record of a new sign-in and bind `user` to its token (the caller commits).

    Also deletes this user's records that ended more than RETENTION_DAYS ago.
    """
    token = secrets.token_urlsafe(32)
    now = utcnow()
    _purge_old(user.id, now)
    record = UserSession(user_id=user.id, token_hash=token_hash(token), device=describe_user_agent(user_agent),
                         ip_address=ip[:45] if ip else None, created_at=now, last_seen_at=now)
    db.session.add(record)
    db.session.flush()
    user.bind_sign_in(token)
    return record


def resolve(token: str, *, ip: str | None) -> tuple[User, UserSession] | None:
    """The user and live record behind a cookie's token, or None (signed out).

    Refreshes last_seen_at (and the IP) when it is older than the touch interval, and
    commits that at once: this runs first thing in a request, before any other change.
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    now = utcnow()
    row = db.session.execute(
        select(UserSession, User)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == token_hash(token), UserSession.revoked_at.is_(None),
               UserSession.last_seen_at > now - idle_limit())
    ).first()
    if row is None:
        return None
    record, user = row
    if not user.is_active:
        return None
    if now - record.last_seen_at >= _touch_interval():
        record.last_seen_at = now
        if ip:
            record.ip_address = ip[:45]
        db.session.commit()
    user.bind_sign_in(token)
    return user, record


def live_for(user: User) -> list[UserSession]:
    """The user's sign-ins that still work, most recently used first."""
    stmt = (select(UserSession)
            .where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None),
                   UserSession.last_seen_at > utcnow() - idle_limit())
            .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc()))
    return list(db.session.scalars(stmt))


def live_counts() -> dict[int, int]:
    """Live sign-ins per user id (for the admin's Users page)."""
    stmt = (select(UserSession.user_id, func.count())
            .where(UserSession.revoked_at.is_(None), UserSession.last_seen_at > utcnow() - idle_limit())
            .group_by(UserSession.user_id))
    return {user_id: count for user_id, count in db.session.execute(stmt)}


def get_live_owned(user: User, session_id: int) -> UserSession | None:
    """One of the user's own live sign-ins; None for another user's id, an ended one or none."""
    return db.session.scalar(
        select(UserSession).where(UserSession.id == session_id, UserSession.user_id == user.id,
                                  UserSession.revoked_at.is_(None),
                                  UserSession.last_seen_at > utcnow() - idle_limit()))


def revoke(record: UserSession, reason: str) -> None:
    """End one sign-in (the caller commits)."""
    if record.revoked_at is None:
        record.revoked_at = utcnow()
        record.revoked_reason = reason


def revoke_all(user_id: int, reason: str, *, keep_id: int | None = None) -> int:
    """End every sign-in of a user except `keep_id`; returns how many ended (the caller commits)."""
    stmt = (update(UserSession)
            .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
            .values(revoked_at=utcnow(), revoked_reason=reason)
            .execution_options(synchronize_session="fetch"))
    if keep_id is not None:
        stmt = stmt.where(UserSession.id != keep_id)
    return db.session.execute(stmt).rowcount or 0  # type: ignore[attr-defined]


def end_own(user: User, record: UserSession) -> None:
    """The user ends one of their other sign-ins from the devices page (audited)."""
    revoke(record, REASON_ENDED_BY_USER)
    audit.record("session_ended", category="auth", user=user,
                 details={"session_id": record.id, "device": record.device}, commit=False)
    db.session.commit()


def end_own_others(user: User, current_id: int | None) -> int:
    """The user ends every sign-in but this one (audited); returns how many ended."""
    count = revoke_all(user.id, REASON_ENDED_BY_USER, keep_id=current_id)
    audit.record("sessions_ended", category="auth", user=user, details={"count": count}, commit=False)
    db.session.commit()
    return count


def _purge_old(user_id: int, now: datetime) -> None:
    cutoff = now - timedelta(days=RETENTION_DAYS)
    db.session.execute(
        delete(UserSession)
        .where(UserSession.user_id == user_id,
               or_(UserSession.revoked_at < cutoff, UserSession.last_seen_at < cutoff - idle_limit()))
        .execution_options(synchronize_session=False))
