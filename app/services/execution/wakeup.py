"""Waking the order engine: web processes commit work, then tell the leader at once.

The leader (the process holding the services lease) waits for work with an `EngineWaker`;
a web process calls `wake_engine()` *after* committing its order intents. The transport
follows the deployment:

- PostgreSQL: `NOTIFY algomirror_engine` on a short autocommit connection of its own, and a
  dedicated psycopg2 connection outside the pool that LISTENs (select() on its socket).
- Redis (REDIS_URL redis:// or rediss://, any other database): PUBLISH / SUBSCRIBE on
  "<ENGINE_CHANNEL_PREFIX>:engine".
- Otherwise (SQLite with memory://): a short poll of ENGINE_POLL_SECONDS.

Every wake also sets an in-process event, so a single-process server wakes instantly even
without a shared transport (and while a LISTEN/pub-sub connection is down).

A wake is only a hint: after every return from `EngineWaker.wait` (True or False) the
caller checks the database for work, so a lost wake costs at most the caller's wait
timeout, and a wake with nothing to do costs one query.
"""

from __future__ import annotations

import logging
import re
import select
import threading
import time
from typing import Any, Protocol

from flask import Flask, current_app, has_app_context

from app.extensions import db

logger = logging.getLogger(__name__)

PG_CHANNEL = "algomirror_engine"
_STATE_KEY = "algomirror_engine_wakeup"
_STATE_LOCK = threading.Lock()
_RECONNECT_SECONDS = 2.0
_REASON_MAX = 200  # NOTIFY payloads may be 8000 bytes; a reason is a short label
_PG_CONNECT_ARGS = {"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 5,
                    "keepalives_interval": 2, "keepalives_count": 3}


class _WakeState:
    """Per-app state shared by the wakers and senders of one process."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.lock = threading.Lock()
        self.redis_client: Any = None
        self.failing = False  # a failure was logged at WARNING; quiet until a success


def _state(app: Flask) -> _WakeState:
    with _STATE_LOCK:
        state = app.extensions.get(_STATE_KEY)
        if state is None:
            state = app.extensions[_STATE_KEY] = _WakeState()
        return state


def redis_channel(app: Flask) -> str | None:
    """The pub/sub channel when REDIS_URL is a Redis server, else None."""
    url = str(app.config.get("REDIS_URL") or "")
    if not url.startswith(("redis://", "rediss://")):
        return None
    return f"{app.config.get('ENGINE_CHANNEL_PREFIX') or 'algomirror'}:engine"


def _transport(app: Flask) -> str:
    with app.app_context():
        dialect = db.engine.dialect.name
    if dialect == "postgresql":
        return "postgresql"
    return "redis" if redis_channel(app) else "poll"


def wake_engine(reason: str = "work") -> None:
    """Tell the leader that work was committed. Call it after the commit, never before.

    Sets the in-process event, then sends a NOTIFY (PostgreSQL) or a PUBLISH (Redis) on a
    connection of its own, outside the caller's transaction. Never raises: a failure is logged
    at WARNING once per outage and the leader's short poll picks the work up anyway.
    """
    if not has_app_context():
        logger.warning("wake_engine(%r) called outside an app context; the leader's poll finds the work", reason)
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    state = _state(app)
    state.event.set()
    payload = (reason or "work")[:_REASON_MAX]
    try:
        if db.engine.dialect.name == "postgresql":
            _notify_postgres(payload)
        elif (channel := redis_channel(app)) is not None:
            _publish_redis(app, state, channel, payload)
        else:
            return
    except Exception:  # (a wake must never fail the caller's committed action)
        with state.lock:
            first, state.failing = not state.failing, True
        log = logger.warning if first else logger.debug
        log("Could not wake the order engine (%s); it finds the work at its next poll", payload, exc_info=True)
        return
    if state.failing:
        state.failing = False
        logger.info("Waking the order engine works again")


def _notify_postgres(payload: str) -> None:
    from sqlalchemy import text

    # A pooled connection other than the session's, in autocommit: the NOTIFY is delivered now,
    # whatever the caller's transaction does next.
    with db.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": PG_CHANNEL, "payload": payload})


def _redis_client(app: Flask, state: _WakeState) -> Any:
    import redis

    with state.lock:
        if state.redis_client is None:
            state.redis_client = redis.Redis.from_url(app.config["REDIS_URL"], socket_timeout=0.5,
                                                      socket_connect_timeout=0.5)
        return state.redis_client


def _publish_redis(app: Flask, state: _WakeState, channel: str, payload: str) -> None:
    _redis_client(app, state).publish(channel, payload)


class _Listener(Protocol):
    def wait(self, timeout: float) -> bool: ...

    def close(self) -> None: ...


class _PostgresListener:
    """LISTEN on a dedicated autocommit psycopg2 connection (never one of the pool's)."""

    def __init__(self, app: Flask):
        import psycopg2

        with app.app_context():
            engine = db.engine
            if engine.dialect.driver != "psycopg2":
                raise RuntimeError(f"LISTEN needs psycopg2, not {engine.dialect.driver}")
            cargs, cparams = engine.dialect.create_connect_args(engine.url)
        self.conn = psycopg2.connect(*cargs, **{**_PG_CONNECT_ARGS, **cparams})
        self.conn.autocommit = True
        with self.conn.cursor() as cur:
            cur.execute(f"LISTEN {PG_CHANNEL}")

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            self.conn.poll()  # raises psycopg2.Error when the connection is gone
            if self.conn.notifies:
                self.conn.notifies.clear()  # several wakes are one: the caller reads all the work
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            select.select([self.conn], [], [], remaining)

    def close(self) -> None:
        self.conn.close()


def waker_client_name(channel: str) -> str:
    """The Redis CLIENT SETNAME of a waker's subscription (no spaces allowed there)."""
    return "algomirror-waker:" + re.sub(r"[^A-Za-z0-9_.:-]", "_", channel)[:100]


class _RedisListener:
    """A pub/sub subscription to the engine channel."""

    def __init__(self, app: Flask, channel: str):
        import redis

        # Named after the channel so that CLIENT LIST shows which app's leader is listening.
        self.client = redis.Redis.from_url(app.config["REDIS_URL"], socket_connect_timeout=2, socket_keepalive=True,
                                           health_check_interval=10, client_name=waker_client_name(channel))
        self.pubsub = self.client.pubsub()
        self.pubsub.subscribe(channel)
        # Wait for the confirmation: a wake published before it would not reach this subscriber.
        deadline = time.monotonic() + 5
        while True:
            message = self.pubsub.get_message(timeout=max(deadline - time.monotonic(), 0.0))
            if message is not None and message.get("type") == "subscribe":
                break
            if time.monotonic() >= deadline:
                raise redis.ConnectionError("no confirmation of the engine channel subscription")
        self.channel = channel

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        woke = False
        while True:
            remaining = 0.0 if woke else max(deadline - time.monotonic(), 0.0)
            message = self.pubsub.get_message(timeout=remaining)
            if message is not None and message.get("type") == "message":
                woke = True  # keep draining what is already there: several wakes are one
                continue
            if woke or time.monotonic() >= deadline:
                return woke

    def close(self) -> None:
        try:
            self.pubsub.close()
        finally:
            self.client.close()


class EngineWaker:
    """What the leader waits on between rounds of work.

    `wait(timeout)` returns True as soon as a wake arrives (several are coalesced into one)
    and False when none came. On the poll transport (SQLite, memory://), or while a dropped
    LISTEN/pub-sub connection is being re-established, it returns after at most
    ENGINE_POLL_SECONDS even when `timeout` is longer. Either way the caller then checks
    the database for work: a wake is a hint, the database is the truth.

    One thread (the leader's engine loop) uses a waker; `wake_engine` may be called from any.
    """

    def __init__(self, app: Flask, transport: str, *, poll_seconds: float):
        self.app = app
        self.transport = transport
        self.poll_seconds = poll_seconds
        self._event = _state(app).event
        self._listener: _Listener | None = None
        self._next_connect = 0.0
        self._closed = False
        self._down = False  # an outage was logged at WARNING; quiet until the connection is back
        if transport != "poll":
            self._connect(first=True)

    @classmethod
    def for_app(cls, app: Flask) -> EngineWaker:
        """The waker suited to the app's database and REDIS_URL."""
        poll = float(app.config.get("ENGINE_POLL_SECONDS") or 0.25)
        return cls(app, _transport(app), poll_seconds=poll)

    @property
    def listening(self) -> bool:
        """Whether a LISTEN / pub-sub connection is up (False on the poll transport)."""
        return self._listener is not None

    def _connect(self, *, first: bool = False) -> bool:
        self._next_connect = time.monotonic() + _RECONNECT_SECONDS
        try:
            if self.transport == "postgresql":
                self._listener = _PostgresListener(self.app)
            else:
                self._listener = _RedisListener(self.app, redis_channel(self.app) or "")
        except Exception:  # (any driver error: poll until the server is back)
            # WARNING once per outage; the retries every few seconds stay at DEBUG.
            log = logger.debug if self._down else logger.warning
            log("Order engine wake-up (%s) unavailable; polling every %g s until it is back",
                self.transport, self.poll_seconds, exc_info=True)
            self._down = True
            return False
        if not first:
            logger.info("Order engine wake-up (%s) listening again", self.transport)
        self._down = False
        return True

    def _drop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.close()
            except Exception:
                logger.debug("Closing the wake-up connection failed", exc_info=True)

    def wait(self, timeout: float) -> bool:
        """Block until a wake arrives (True) or `timeout` seconds pass (False); see the class doc."""
        if self._take_local():
            return True
        if self._listener is None and self.transport != "poll" and not self._closed \
                and time.monotonic() >= self._next_connect and self._connect():
            return True  # wakes may have been missed while disconnected: look for work now
        if self._listener is None:
            woke = self._event.wait(max(0.0, min(timeout, self.poll_seconds)))
            return self._take_local() or woke
        try:
            woke = self._listener.wait(max(0.0, timeout))
        except Exception:  # (a dropped connection: fall back to polling)
            logger.warning("Order engine wake-up (%s) connection lost; polling until it is back",
                           self.transport, exc_info=True)
            self._down = True
            self._drop()
            return True  # a wake may have been lost with the connection
        return self._take_local() or woke

    def _take_local(self) -> bool:
        if self._event.is_set():
            self._event.clear()
            return True
        return False

    def close(self) -> None:
        """Close the LISTEN / pub-sub connection; the waker polls if used afterwards."""
        self._closed = True
        self._drop()
