"""The leader lease: exactly one process across all workers and hosts runs the background services.

Two implementations behind one interface:

- `AdvisoryLease` (PostgreSQL): a session-level `pg_try_advisory_lock` held on a dedicated
  connection outside the request pool. The server releases it when that connection ends, so
  a killed holder loses it at once (a dead host after the TCP keepalives below give up,
  about 10 s). Needs a direct or session-pooled connection: a transaction-mode pooler
  (pgbouncer) cannot hold a session lock, and the lock check in `renew` would notice.
- `RowLease` (SQLite and any other database): a row in `service_leases` with `expires_at`,
  taken by an atomic conditional UPDATE (or an INSERT when the row is absent) and renewed
  by its holder. A holder that cannot renew before its own deadline must stop.

Both keep the `service_leases` row current (holder, acquired/renewed/expiry times and a
generation bumped at every change of holder) so /healthz/services can show who leads.

A lease is valid locally until `ttl` after the start of its last successful acquire or
renew (`is_valid`). A row lease can be taken by another process only after `expires_at`,
which is at least that late, so a holder that stops by its local deadline never overlaps
with the next one, provided the hosts' clocks agree (NTP).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, Table, case, create_engine, insert, literal, or_, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from app.models.services import ServiceLease

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
DEFAULT_LEASE_NAME = "background-services"
_LEASES = cast(Table, ServiceLease.__table__)
_TIME = _LEASES.c.expires_at.type


def system_clock() -> datetime:
    return datetime.now(UTC)


def make_holder_id() -> str:
    """A process-unique holder id: "host:pid:short-uuid"."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def parse_holder(holder: str) -> dict[str, Any]:
    """Split a holder id into host and pid (unknown parts are None)."""
    parts = holder.rsplit(":", 2)
    if len(parts) != 3:
        return {"host": None, "pid": None}
    host, pid, _ = parts
    return {"host": host, "pid": int(pid) if pid.isdigit() else None}


class Lease(ABC):
    """Common state and the row bookkeeping; subclasses decide who may hold it."""

    def __init__(self, engine: Engine, *, name: str = DEFAULT_LEASE_NAME, holder: str | None = None,
                 ttl: float = 10.0, clock: Clock = system_clock):
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.engine = engine
        self.name = name
        self.holder = holder or make_holder_id()
        self.ttl = timedelta(seconds=ttl)
        self.clock = clock
        self.generation: int | None = None
        self._valid_until: datetime | None = None
        self._lock = threading.Lock()

    # -- interface --
    @abstractmethod
    def acquire(self) -> bool:
        """Try to become the leader. Returns True when this process now holds the lease."""

    @abstractmethod
    def renew(self) -> bool:
        """Extend the lease. False: it is lost (stop at once). Raises SQLAlchemyError on a
        transient failure; the caller may retry until `is_valid()` turns False."""

    @abstractmethod
    def release(self) -> None:
        """Give the lease up so another process can take it without waiting for expiry."""

    def close(self) -> None:
        """Release if held and free resources."""
        self.release()

    # -- local validity --
    @property
    def held(self) -> bool:
        return self._valid_until is not None

    def is_valid(self) -> bool:
        """Whether this process may still act as leader (held and before its local deadline)."""
        with self._lock:
            return self._valid_until is not None and self.clock() < self._valid_until

    def valid_until(self) -> datetime | None:
        with self._lock:
            return self._valid_until

    def _mark_held(self, started: datetime) -> None:
        with self._lock:
            self._valid_until = started + self.ttl

    def _mark_lost(self) -> None:
        with self._lock:
            self._valid_until = None
        self.generation = None

    # -- the service_leases row --
    def _take_row(self, conn: Connection, now: datetime, *, only_if_free: bool) -> bool:
        """Point the row at this holder (bumping the generation on a change of holder).

        With only_if_free the UPDATE applies only when the row expired or is already ours;
        that condition is evaluated atomically by the database. Returns whether a row changed.
        """
        mine = _LEASES.c.holder == self.holder
        stmt = update(_LEASES).where(_LEASES.c.name == self.name)
        if only_if_free:
            stmt = stmt.where(or_(_LEASES.c.expires_at < literal(now, _TIME), mine))
        result = conn.execute(stmt.values(
            holder=self.holder,
            acquired_at=case((mine, _LEASES.c.acquired_at), else_=literal(now, _TIME)),
            generation=case((mine, _LEASES.c.generation), else_=_LEASES.c.generation + 1),
            renewed_at=now,
            expires_at=now + self.ttl,
        ))
        if result.rowcount != 1:
            return False
        self.generation = conn.execute(select(_LEASES.c.generation).where(_LEASES.c.name == self.name)).scalar_one()
        return True

    def _insert_row(self, now: datetime) -> bool:
        """Create the row for this holder; False when another process inserted it first."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(_LEASES).values(name=self.name, holder=self.holder, acquired_at=now,
                                                    renewed_at=now, expires_at=now + self.ttl, generation=1))
        except IntegrityError:
            return False
        self.generation = 1
        return True

    def _expire_row(self) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(update(_LEASES).where(_LEASES.c.name == self.name, _LEASES.c.holder == self.holder,
                                               _LEASES.c.generation == self.generation)
                         .values(expires_at=now - timedelta(milliseconds=1)))


class RowLease(Lease):
    """A lease row with an expiry, renewed by its holder (SQLite and the generic fallback)."""

    def acquire(self) -> bool:
        now = self.clock()
        with self.engine.begin() as conn:
            if self._take_row(conn, now, only_if_free=True):
                self._mark_held(now)
                return True
            exists = conn.execute(select(_LEASES.c.name).where(_LEASES.c.name == self.name)).first() is not None
        if exists or not self._insert_row(now):
            return False
        self._mark_held(now)
        return True

    def renew(self) -> bool:
        if self.generation is None:
            return False
        now = self.clock()
        # Matching holder and generation proves nobody took the lease since we last held it,
        # even if it expired meanwhile: taking it changes the holder and bumps the generation.
        with self.engine.begin() as conn:
            result = conn.execute(
                update(_LEASES)
                .where(_LEASES.c.name == self.name, _LEASES.c.holder == self.holder,
                       _LEASES.c.generation == self.generation)
                .values(renewed_at=now, expires_at=now + self.ttl)
            )
        if result.rowcount != 1:
            self._mark_lost()
            return False
        self._mark_held(now)
        return True

    def release(self) -> None:
        if self.generation is None:
            return
        try:
            self._expire_row()
        except SQLAlchemyError:
            logger.warning("Could not release lease %s; it expires on its own", self.name, exc_info=True)
        self._mark_lost()


def advisory_key(name: str) -> int:
    """A stable positive 63-bit advisory-lock key for a lease name."""
    return int.from_bytes(hashlib.sha256(f"algomirror:{name}".encode()).digest()[:8], "big") & (2**63 - 1)


# The server drops a dead client's session (and its lock) after these keepalives fail.
_SESSION_SETTINGS = ("SET tcp_keepalives_idle = 5", "SET tcp_keepalives_interval = 2",
                     "SET tcp_keepalives_count = 3", "SET statement_timeout = 5000")
_CLIENT_CONNECT_ARGS = {"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 5,
                        "keepalives_interval": 2, "keepalives_count": 3}


class AdvisoryLease(Lease):
    """A PostgreSQL session-level advisory lock on a dedicated connection."""

    def __init__(self, engine: Engine, **kwargs: Any):
        super().__init__(engine, **kwargs)
        self.key = advisory_key(self.name)
        connect_args = _CLIENT_CONNECT_ARGS if engine.dialect.driver == "psycopg2" else {}
        # Its own engine without a pool: the connection is never shared with requests.
        self._lock_engine = create_engine(engine.url, poolclass=NullPool, connect_args=connect_args)
        self._conn: Connection | None = None

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed:
            conn = self._lock_engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            for statement in _SESSION_SETTINGS:
                conn.execute(text(statement))
            self._conn = conn
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except SQLAlchemyError:
                logger.debug("Closing the lease connection failed", exc_info=True)

    def acquire(self) -> bool:
        if self.held and self._conn is not None:
            # pg_try_advisory_lock is re-entrant per session: never stack a second hold.
            return self.renew()
        now = self.clock()
        try:
            got = bool(self._connection().execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
        except SQLAlchemyError:
            self._drop_connection()
            raise
        if not got:
            return False
        try:
            with self.engine.begin() as conn:
                taken = self._take_row(conn, now, only_if_free=False)
            if not taken and not self._insert_row(now):
                with self.engine.begin() as conn:
                    self._take_row(conn, now, only_if_free=False)
        except SQLAlchemyError:
            # Without the row the health page would lie; give the lock back and retry later.
            self._unlock()
            raise
        self._mark_held(now)
        return True

    def renew(self) -> bool:
        if self._conn is None:
            self._mark_lost()
            return False
        now = self.clock()
        try:
            held = bool(self._conn.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
                "AND pid = pg_backend_pid() AND ((classid::bigint << 32) | objid::bigint) = :k"), {"k": self.key},
            ).scalar())
        except SQLAlchemyError:
            # The session (and with it the lock) may be gone: leadership is lost.
            logger.warning("Lease connection failed; leadership of %s lost", self.name, exc_info=True)
            self._drop_connection()
            self._mark_lost()
            return False
        if not held:
            self._drop_connection()
            self._mark_lost()
            return False
        self._mark_held(now)
        try:
            with self.engine.begin() as conn:
                conn.execute(update(_LEASES).where(_LEASES.c.name == self.name, _LEASES.c.holder == self.holder)
                             .values(renewed_at=now, expires_at=now + self.ttl))
        except SQLAlchemyError:
            # The lock, not the row, decides leadership; the row only informs the health page.
            logger.warning("Could not update the lease row of %s", self.name, exc_info=True)
        return True

    def _unlock(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            except SQLAlchemyError:
                logger.debug("Unlock failed; closing the connection releases the lock", exc_info=True)
        self._drop_connection()

    def release(self) -> None:
        if self.held and self.generation is not None:
            try:
                self._expire_row()
            except SQLAlchemyError:
                logger.warning("Could not mark lease %s released", self.name, exc_info=True)
        self._unlock()
        self._mark_lost()

    def close(self) -> None:
        self.release()
        self._lock_engine.dispose()


def make_lease(engine: Engine, **kwargs: Any) -> Lease:
    """The lease suited to the database: an advisory lock on PostgreSQL, a lease row elsewhere."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLease(engine, **kwargs)
    return RowLease(engine, **kwargs)
