"""Sign-ins: one server-side record per login, checked on every request."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow


class UserSession(Model):
    """One sign-in of one user on one device.

    The browser holds a random token (in the Flask session and in the remember-me cookie);
    only its SHA-256 is stored here, so a copy of this table cannot be replayed as cookies.
    A record with `revoked_at` set is signed out, whatever cookie still carries its token.
    """

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    device: Mapped[str] = mapped_column(String(64), default="Unknown device", server_default="Unknown device")
    ip_address: Mapped[str | None] = mapped_column(String(45))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Refreshed at most once a minute (SESSION_TOUCH_SECONDS), not on every request.
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # logout, ended_by_user, ended_by_admin, password_change, password_reset, deactivated
    revoked_reason: Mapped[str | None] = mapped_column(String(32))

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def __repr__(self) -> str:
        return f"<UserSession {self.id} user={self.user_id} {self.device}>"
