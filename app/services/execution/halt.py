"""The admins' trading halt: while it is set, no new entries are accepted for anyone.

Stored as JSON in the app_settings row "trading_halt" (absent = trading allowed). Exits,
square-off and the kill switch are not blocked: a halt must never keep a position open.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from app.extensions import db
from app.models.settings import AppSetting
from app.models.types import utcnow
from app.models.users import User
from app.services import audit
from app.services.execution.errors import InvalidHaltRequest, TradingHalted
from app.services.execution.wakeup import wake_engine
from app.services.settings import set_setting

logger = logging.getLogger(__name__)

HALT_KEY = "trading_halt"
REASON_MAX = 500
ACTION_HALTED, ACTION_LIFTED = "trading_halted", "trading_halt_lifted"


@dataclass(frozen=True)
class Halt:
    """A trading halt: why, which admin set it (username) and when (aware UTC)."""

    reason: str
    set_by: str
    set_at: datetime


def _read_value() -> str | None:
    # A column query, not session.get: a long-lived session must not see a stale cached row.
    return db.session.execute(select(AppSetting.value).where(AppSetting.key == HALT_KEY)).scalar_one_or_none()


def current_halt() -> Halt | None:
    """The halt in force, or None when trading is allowed.

    An unreadable stored value counts as a halt (failing closed: it blocks entries, never exits).
    """
    raw = _read_value()
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return Halt(reason=str(data["reason"]), set_by=str(data["set_by"]),
                    set_at=datetime.fromisoformat(data["set_at"]))
    except (ValueError, KeyError, TypeError):
        logger.error("Unreadable %s setting %r: treating trading as halted", HALT_KEY, raw[:200])
        return Halt(reason="the halt setting is unreadable; an admin must lift it", set_by="unknown",
                    set_at=utcnow())


def halt_trading(admin_user: User, reason: str) -> Halt:
    """Halt trading for everyone (or replace the reason of the halt in force), audited.

    Raises:
        InvalidHaltRequest: the reason is empty or longer than REASON_MAX characters.
    """
    text = (reason or "").strip()
    if not text:
        raise InvalidHaltRequest()
    if len(text) > REASON_MAX:
        raise InvalidHaltRequest(f"Keep the reason to {REASON_MAX} characters or fewer.")
    previous = current_halt()
    halt = Halt(reason=text, set_by=admin_user.username, set_at=utcnow())
    value = json.dumps({"reason": halt.reason, "set_by": halt.set_by, "set_at": halt.set_at.isoformat()})
    set_setting(HALT_KEY, value, commit=False)
    details: dict[str, str] = {"reason": text}
    if previous is not None:
        details["previous_reason"] = previous.reason
    audit.record(ACTION_HALTED, category="admin", user=admin_user, details=details, commit=False)
    db.session.commit()
    logger.warning("Trading halted by %s: %s", halt.set_by, halt.reason)
    wake_engine("halt")  # the leader re-reads the halt before its next entry instead of after a poll
    return halt


def lift_halt(admin_user: User) -> Halt | None:
    """Lift the halt in force, audited. Returns the lifted halt, or None when trading was not halted."""
    halt = current_halt()
    if halt is None:
        return None
    db.session.execute(delete(AppSetting).where(AppSetting.key == HALT_KEY))
    audit.record(ACTION_LIFTED, category="admin", user=admin_user,
                 details={"reason": halt.reason, "set_by": halt.set_by, "set_at": halt.set_at.isoformat()},
                 commit=False)
    db.session.commit()
    logger.warning("Trading halt lifted by %s (was: %s)", admin_user.username, halt.reason)
    return halt


def require_not_halted() -> None:
    """Refuse a new entry while trading is halted.

    Raises:
        TradingHalted: with the halt's reason, admin and time.
    """
    halt = current_halt()
    if halt is not None:
        raise TradingHalted(halt.reason, set_by=halt.set_by, set_at=halt.set_at)
