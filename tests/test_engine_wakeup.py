"""Waking the order engine: the in-process event, PostgreSQL LISTEN/NOTIFY and Redis pub/sub.

A second app built by `app_factory` has its own in-process event, like another worker: when
it wakes the first app's waker, only the shared transport can have carried the wake.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid

import pytest
from sqlalchemy import create_engine, text

from app.services.execution.wakeup import PG_CHANNEL, EngineWaker, redis_channel, wake_engine, waker_client_name
from tests.helpers import wait_until

LONG_TIMEOUT = 30.0
QUICK = 5.0  # "well before the long timeout", with room for a loaded CI machine


def _is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


@pytest.fixture
def on_sqlite(database_url):
    if _is_postgres(database_url):
        pytest.skip("the poll transport is used on SQLite only")


@pytest.fixture
def on_postgres(database_url):
    if not _is_postgres(database_url):
        pytest.skip("needs TEST_DATABASE_URL=postgresql://…")


@pytest.fixture
def redis_url():
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("TEST_REDIS_URL not set")
    return url


def _wait_in_thread(waker: EngineWaker, timeout: float) -> tuple[threading.Thread, dict]:
    """Start `waker.wait(timeout)` in a thread; returns it and its result ("woke", "elapsed")."""
    result: dict = {}
    started = threading.Event()

    def run():
        started.set()
        begin = time.monotonic()
        result["woke"] = waker.wait(timeout)
        result["elapsed"] = time.monotonic() - begin

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(QUICK)
    return thread, result


def test_wait_on_poll_transport_with_in_process_wake_returns_true_at_once(on_sqlite, app_factory):
    # Arrange: a poll interval as long as the wait, so only the event can end it early.
    app = app_factory(ENGINE_POLL_SECONDS=LONG_TIMEOUT)
    waker = EngineWaker.for_app(app)
    assert waker.transport == "poll"
    thread, result = _wait_in_thread(waker, LONG_TIMEOUT)

    # Act
    with app.app_context():
        wake_engine("intents")
    thread.join(LONG_TIMEOUT + 5)

    # Assert
    assert result["woke"] is True
    assert result["elapsed"] < QUICK


def test_wait_on_poll_transport_without_wake_returns_false_after_poll_interval(on_sqlite, app_factory):
    app = app_factory(ENGINE_POLL_SECONDS=0.05)
    waker = EngineWaker.for_app(app)

    begin = time.monotonic()
    woke = waker.wait(LONG_TIMEOUT)

    assert woke is False
    assert time.monotonic() - begin < QUICK


def test_wait_after_several_wakes_returns_true_once(on_sqlite, app_factory):
    app = app_factory(ENGINE_POLL_SECONDS=0.05)
    waker = EngineWaker.for_app(app)
    with app.app_context():
        for _ in range(3):
            wake_engine()

    assert [waker.wait(LONG_TIMEOUT), waker.wait(LONG_TIMEOUT)] == [True, False]


def test_wake_with_nobody_listening_does_not_raise(app):
    wake_engine("nobody-listens")  # no waker exists: NOTIFY / PUBLISH / event go nowhere, no error


def test_wake_with_redis_down_logs_one_warning_and_does_not_raise(on_sqlite, app_factory, caplog):
    # Arrange: a Redis URL where nothing listens (port 1).
    app = app_factory(REDIS_URL="redis://127.0.0.1:1/0", RATELIMIT_ENABLED=False,
                      ENGINE_CHANNEL_PREFIX=f"test-{uuid.uuid4().hex[:8]}")
    caplog.set_level(logging.DEBUG, logger="app.services.execution.wakeup")

    # Act
    with app.app_context():
        wake_engine()
        wake_engine()

    # Assert
    warnings = [r for r in caplog.records if r.name == "app.services.execution.wakeup" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "Could not wake the order engine" in warnings[0].getMessage()


def test_wait_on_postgresql_with_notify_from_another_connection_returns_true_quickly(on_postgres, app_factory,
                                                                                     database_url):
    app = app_factory()
    waker = EngineWaker.for_app(app)
    try:
        assert (waker.transport, waker.listening) == ("postgresql", True)
        thread, result = _wait_in_thread(waker, LONG_TIMEOUT)
        other = create_engine(database_url)
        try:
            with other.connect() as conn:
                conn.execute(text("SELECT pg_notify(:c, 'from-another-connection')"), {"c": PG_CHANNEL})
                conn.commit()  # a NOTIFY is delivered when its transaction commits
        finally:
            other.dispose()
        thread.join(LONG_TIMEOUT + 5)
        assert result["woke"] is True
        assert result["elapsed"] < QUICK
    finally:
        waker.close()


def test_wait_on_postgresql_with_wake_engine_in_another_app_returns_true_quickly(on_postgres, app_factory):
    app, web = app_factory(), app_factory()
    waker = EngineWaker.for_app(app)
    try:
        thread, result = _wait_in_thread(waker, LONG_TIMEOUT)
        with web.app_context():
            wake_engine("intents")
        thread.join(LONG_TIMEOUT + 5)
        assert result["woke"] is True
        assert result["elapsed"] < QUICK
    finally:
        waker.close()


def test_wait_on_postgresql_after_listen_connection_killed_reconnects_and_wakes(on_postgres, app_factory,
                                                                               database_url):
    # Arrange: end the listener's session from the server side, as a restart or a failover would.
    app, web = app_factory(ENGINE_POLL_SECONDS=0.05), app_factory()
    waker = EngineWaker.for_app(app)
    try:
        pid = waker._listener.conn.get_backend_pid()  # type: ignore[union-attr]  # the test needs the session
        other = create_engine(database_url)
        try:
            with other.connect() as conn:
                assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar() is True
        finally:
            other.dispose()

        # Act: the drop is noticed, polling covers the gap, and the LISTEN comes back.
        wait_until(lambda: (waker.wait(0.2), waker.listening)[1], timeout=LONG_TIMEOUT,
                   message="the LISTEN connection is back")
        while waker.wait(0):  # drop the "check now" wakes of the reconnection itself
            pass
        thread, result = _wait_in_thread(waker, LONG_TIMEOUT)
        with web.app_context():
            wake_engine("after-reconnect")
        thread.join(LONG_TIMEOUT + 5)

        # Assert
        assert result["woke"] is True
        assert result["elapsed"] < QUICK
    finally:
        waker.close()


@pytest.mark.redis
def test_wait_on_redis_with_publish_from_another_client_returns_true_quickly(app_factory, redis_url):
    import redis

    app = app_factory(REDIS_URL=redis_url, ENGINE_CHANNEL_PREFIX=f"algomirror-test-{uuid.uuid4().hex}")
    # The Redis transport explicitly: on a PostgreSQL test database for_app would pick LISTEN/NOTIFY.
    waker = EngineWaker(app, "redis", poll_seconds=0.25)
    try:
        assert waker.listening is True
        thread, result = _wait_in_thread(waker, LONG_TIMEOUT)
        client = redis.Redis.from_url(redis_url)
        try:
            assert client.publish(redis_channel(app), "from-another-client") == 1
        finally:
            client.close()
        thread.join(LONG_TIMEOUT + 5)
        assert result["woke"] is True
        assert result["elapsed"] < QUICK
    finally:
        waker.close()


@pytest.mark.redis
def test_wait_on_redis_with_wake_engine_in_another_app_returns_true_quickly(on_sqlite, app_factory, redis_url):
    settings = {"REDIS_URL": redis_url, "ENGINE_CHANNEL_PREFIX": f"algomirror-test-{uuid.uuid4().hex}"}
    app, web = app_factory(**settings), app_factory(**settings)
    waker = EngineWaker.for_app(app)
    try:
        assert (waker.transport, waker.listening) == ("redis", True)
        thread, result = _wait_in_thread(waker, LONG_TIMEOUT)
        with web.app_context():
            wake_engine("intents")
        thread.join(LONG_TIMEOUT + 5)
        assert result["woke"] is True
        assert result["elapsed"] < QUICK
    finally:
        waker.close()


@pytest.mark.redis
def test_wait_on_redis_after_subscription_killed_resubscribes_and_wakes(app_factory, redis_url):
    import redis

    app = app_factory(REDIS_URL=redis_url, ENGINE_CHANNEL_PREFIX=f"algomirror-test-{uuid.uuid4().hex}")
    channel = redis_channel(app)
    waker = EngineWaker(app, "redis", poll_seconds=0.05)
    client = redis.Redis.from_url(redis_url)
    try:
        # Arrange: the server drops the waker's connection (a restart or a failover).
        [mine] = [c for c in client.client_list() if c["name"] == waker_client_name(channel)]
        assert client.client_kill_filter(_id=mine["id"]) == 1

        # Act: after the drop is noticed (or redis-py resubscribes by itself), a publish still wakes it.
        def published_and_woke() -> bool:
            client.publish(channel, "after-drop")
            return waker.wait(0.5) and waker.listening

        wait_until(published_and_woke, timeout=LONG_TIMEOUT, message="a publish wakes the waker again")
        while waker.wait(0):
            pass
        thread, result = _wait_in_thread(waker, LONG_TIMEOUT)
        assert client.publish(channel, "steady") >= 1

        # Assert
        thread.join(LONG_TIMEOUT + 5)
        assert result["woke"] is True
        assert result["elapsed"] < QUICK
    finally:
        client.close()
        waker.close()


def test_waker_with_redis_down_polls_and_still_wakes_in_process(on_sqlite, app_factory, caplog):
    # Arrange: nothing listens on port 1, so the subscription cannot be made.
    app = app_factory(REDIS_URL="redis://127.0.0.1:1/0", RATELIMIT_ENABLED=False, ENGINE_POLL_SECONDS=0.05,
                      ENGINE_CHANNEL_PREFIX=f"test-{uuid.uuid4().hex[:8]}")
    caplog.set_level(logging.WARNING, logger="app.services.execution.wakeup")
    waker = EngineWaker.for_app(app)
    try:
        assert (waker.transport, waker.listening) == ("redis", False)

        # Act / Assert: a short poll instead of the long wait, and the in-process wake still works.
        begin = time.monotonic()
        assert waker.wait(LONG_TIMEOUT) is False
        assert time.monotonic() - begin < QUICK
        with app.app_context():
            wake_engine()
        assert waker.wait(LONG_TIMEOUT) is True
        assert [r.getMessage() for r in caplog.records if r.name == "app.services.execution.wakeup"
                and "unavailable" in r.getMessage()] == [
            "Order engine wake-up (redis) unavailable; polling every 0.05 s until it is back"]
    finally:
        waker.close()


def _own_job_wakes_listening_leader(app) -> None:
    """An engine job that ends wakes the same process's leader while it waits on LISTEN / pub-sub
    (it blocks in select() there, not on the in-process event)."""
    from app.services.execution.engine import ExecutionEngine

    engine = ExecutionEngine(app, holder="wake-test")
    waker = EngineWaker.for_app(app)
    try:
        assert waker.listening
        thread, result = _wait_in_thread(waker, LONG_TIMEOUT)
        time.sleep(0.5)  # let the waiter block in its select (an earlier wake would only pass sooner)
        engine._wake()
        thread.join(LONG_TIMEOUT + 5)
        assert result["woke"] is True
        assert result["elapsed"] < QUICK
    finally:
        waker.close()
        engine.on_stop()


def test_engine_job_done_wakes_its_own_leader_listening_on_postgresql(on_postgres, app_factory):
    _own_job_wakes_listening_leader(app_factory())


@pytest.mark.redis
def test_engine_job_done_wakes_its_own_leader_listening_on_redis(on_sqlite, app_factory, redis_url):
    _own_job_wakes_listening_leader(app_factory(REDIS_URL=redis_url,
                                                ENGINE_CHANNEL_PREFIX=f"algomirror-test-{uuid.uuid4().hex}"))
