"""Users and their roles."""

from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, Integer, String, false, true
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow

ROLE_ADMIN = "admin"
ROLE_TRADER = "trader"
ROLES = (ROLE_ADMIN, ROLE_TRADER)


class User(UserMixin, Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=ROLE_TRADER, server_default=ROLE_TRADER)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    failed_login_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    first_failed_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN

    @property
    def is_active(self) -> bool:  # Flask-Login: inactive users cannot log in
        return bool(self.active)

    def bind_sign_in(self, token: str) -> None:
        """Tie this loaded object to one sign-in (app/services/sessions.py).

        Flask-Login stores `get_id()` in the session and remember-me cookies, so they carry
        the sign-in's random token, never the user id. Not a column: set per request.
        """
        self._sign_in_token = token

    def get_id(self) -> str:
        token = getattr(self, "_sign_in_token", None)
        if token is None:
            raise RuntimeError("user is not bound to a sign-in; call bind_sign_in() first")
        return token

    # UserMixin compares users by get_id(); compare by row instead, so two objects of the same
    # user are equal whichever sign-in (if any) they were loaded through.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, User):
            return NotImplemented
        return self is other or (self.id is not None and self.id == other.id)

    def __hash__(self) -> int:
        # Consistent with __eq__: equal users hash alike. An unsaved user (no id yet) hashes by identity.
        return hash(("User", self.id)) if self.id is not None else object.__hash__(self)

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username} {self.role}>"
