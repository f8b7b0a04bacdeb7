"""Whether the order engine runs: a background process holds the services lease.

All orders are sent by the leader (app.services.runner), so when no process holds the lease
an action that queues orders must say so at once instead of waiting for nobody.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from app.extensions import db
from app.models.services import ServiceLease
from app.models.types import utcnow
from app.services.execution.errors import EngineOffline
from app.services.lease import DEFAULT_LEASE_NAME
from app.timeutil import to_ist


@dataclass(frozen=True)
class EngineStatus:
    """The engine as the lease row shows it.

    Attributes:
        online: a process holds the lease and its expiry is in the future.
        holder: the holder id ("host:pid:id") of the current or last holder, None when never held.
        since: when that holder acquired the lease (aware UTC), None when never held.
        detail: one sentence for the dashboard or an error page.
    """

    online: bool
    holder: str | None
    since: datetime | None
    detail: str


def engine_status(now: datetime | None = None) -> EngineStatus:
    """Read the services lease row (always from the database, never a cached object).

    Args:
        now: the instant to judge expiry at (aware UTC); defaults to the current time.
    """
    now = now or utcnow()
    row = db.session.execute(
        select(ServiceLease.holder, ServiceLease.acquired_at, ServiceLease.expires_at)
        .where(ServiceLease.name == DEFAULT_LEASE_NAME)
    ).first()
    if row is None:
        return EngineStatus(False, None, None, "No background process has ever held the services lease.")
    holder, acquired_at, expires_at = row
    if expires_at <= now:
        return EngineStatus(False, holder, acquired_at,
                            f"The services lease of {holder} expired at "
                            f"{to_ist(expires_at):%Y-%m-%d %H:%M:%S} IST; no process holds it now.")
    return EngineStatus(True, holder, acquired_at,
                        f"Running in {holder} since {to_ist(acquired_at):%Y-%m-%d %H:%M:%S} IST.")


def require_engine_online(now: datetime | None = None) -> EngineStatus:
    """Return the status when the engine is online.

    Raises:
        EngineOffline: no process holds the services lease (nothing may be queued).
    """
    status = engine_status(now)
    if not status.online:
        raise EngineOffline()
    return status
