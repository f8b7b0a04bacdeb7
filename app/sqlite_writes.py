"""SQLite in a threaded process: WAL, and one in-process queue for writers.

SQLite lets one writer at a time hold the database. A second writer does not queue: its busy
handler sleeps and retries with growing pauses (up to 100 ms each), so a dozen engine threads
committing small transactions at once wait seconds in total, mostly asleep. Here every write
transaction of the process first takes one lock, at its first writing statement (where SQLite
takes its own write lock) until its commit or rollback, so writers of this process queue and
run back to back instead. The lock is taken only where SQLite would block anyway, so it adds
no deadlock: a thread never holds SQLite's write lock without it. Writers in other processes
still meet SQLite's busy handler (a 30 s timeout). WAL lets readers proceed during a write.

PostgreSQL needs none of this; `install` does nothing for other dialects.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import Engine, event

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
LOCK_WAIT_SECONDS = 30.0
_HELD = "algomirror_write_lock_held"
_READ_PREFIXES = ("SELECT", "PRAGMA", "WITH", "EXPLAIN")


def install(engine: Engine) -> None:
    """Tune a SQLite engine (WAL, busy timeout) and serialize its writers within this process."""
    if engine.dialect.name != "sqlite" or getattr(engine, "_algomirror_writes", False):
        return
    lock = threading.Lock()
    engine._algomirror_writes = True  # type: ignore[attr-defined]

    @event.listens_for(engine, "connect")
    def _tune(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        info = conn.connection.info
        if info.get(_HELD) or statement.lstrip()[:7].upper().startswith(_READ_PREFIXES):
            return
        if lock.acquire(timeout=LOCK_WAIT_SECONDS):
            info[_HELD] = True
        else:  # never a deadlock: fall back to SQLite's own waiting
            logger.warning("SQLite writer queue: no turn after %.0f s; writing without it", LOCK_WAIT_SECONDS)

    def _release(dbapi_connection: Any) -> None:
        info = getattr(dbapi_connection, "info", None)
        if info is not None and info.pop(_HELD, False):
            lock.release()

    @event.listens_for(engine, "commit")
    def _commit(conn: Any) -> None:
        _release(conn.connection)

    @event.listens_for(engine, "rollback")
    def _rollback(conn: Any) -> None:
        _release(conn.connection)

    @event.listens_for(engine.pool, "reset")
    def _reset(_dbapi_connection: Any, record: Any, _reset_state: Any) -> None:
        # Returned to the pool without a commit or rollback of the Connection: the pool rolls back.
        if record.info.pop(_HELD, False):
            lock.release()

    @event.listens_for(engine.pool, "invalidate")
    def _invalidate(_dbapi_connection: Any, record: Any, *_args: Any) -> None:
        if record.info.pop(_HELD, False):
            lock.release()
