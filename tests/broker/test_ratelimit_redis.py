"""The Redis pacing window (app/broker/ratelimit_redis.py) against a real Redis, and its fallback
to in-process pacing when Redis is unreachable or dies mid-run."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from app.broker.client import ClientSettings, OpenAlgoClient
from app.broker.errors import RateLimited
from app.broker.ratelimit import AccountLimits, PacingConfig, PacingTimeout, SlidingWindowLimiter
from app.broker.ratelimit_redis import RedisLink, RedisWindowLimiter

LOGGER = "app.broker.ratelimit_redis"


def _link(url: str) -> RedisLink:
    """A link with its own connection pool, as another process would have."""
    return RedisLink(redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5))


def _wait_for(condition, deadline: float = 30.0, step: float = 0.01):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("TEST_REDIS_URL not set")
    return url


@pytest.fixture
def key(redis_url) -> Iterator[str]:
    """A bucket key of its own; its Redis keys are deleted afterwards."""
    name = f"algomirror-test-pacing-{uuid.uuid4().hex[:8]}:acct:orders"
    yield name
    conn = redis.Redis.from_url(redis_url)
    conn.delete(f"{{{name}}}:flight", f"{{{name}}}:done")
    conn.close()


def _limiter(url: str, key: str, limit: int, window: float = 1.0, **kw) -> RedisWindowLimiter:
    return RedisWindowLimiter(_link(url), key, limit, window, **kw)


# --- the window ----------------------------------------------------------------------------------

@pytest.mark.redis
def test_redis_window_grants_exactly_limit_slots_then_refuses(redis_url, key):
    limiter = _limiter(redis_url, key, 3, window=2.0)

    results = [limiter.try_acquire() for _ in range(5)]

    assert [slot is not None for slot, _ in results] == [True, True, True, False, False]
    # All three are in flight: none can free before its answer plus one window.
    assert [wait for _, wait in results[3:]] == [2.0, 2.0]


@pytest.mark.redis
def test_redis_window_is_shared_by_limiters_with_separate_connections(redis_url, key):
    one, two = _limiter(redis_url, key, 3), _limiter(redis_url, key, 3)

    granted = [one.try_acquire()[0] is not None for _ in range(2)] + [two.try_acquire()[0] is not None
                                                                       for _ in range(2)]

    assert granted == [True, True, True, False]


@pytest.mark.redis
def test_redis_window_keeps_accounts_and_buckets_apart(redis_url, key):
    _limiter(redis_url, key, 1).try_acquire()

    other_bucket = _limiter(redis_url, key.replace(":orders", ":reads"), 1)
    try:
        assert other_bucket.try_acquire()[0] is not None
    finally:
        conn = redis.Redis.from_url(redis_url)
        conn.delete(*[f"{{{other_bucket.key}}}:{part}" for part in ("flight", "done")])


def _redis_now_us(conn: redis.Redis) -> int:
    seconds, micros = conn.time()
    return seconds * 1_000_000 + micros


def _granted_at(conn: redis.Redis, limiter: RedisWindowLimiter, frees_at_us: int) -> int | None:
    """One attempt: Redis TIME just after it when granted, else None. A refusal must have started
    before `frees_at_us`, the stored score at which the held slot frees."""
    before_us = _redis_now_us(conn)
    taken, _ = limiter.try_acquire()
    after_us = _redis_now_us(conn)
    if taken is None:
        assert before_us < frees_at_us, "refused although the slot's stored expiry had passed"
        return None
    return after_us


@pytest.mark.redis
def test_redis_slot_counts_for_one_window_after_its_answer(redis_url, key):
    window_us = 2_000_000  # far longer than the few Redis round trips between the answer and the refusal
    conn = redis.Redis.from_url(redis_url)
    limiter = _limiter(redis_url, key, 1, window=window_us / 1e6)
    slot, _ = limiter.try_acquire()
    assert slot is not None

    before_release_us = _redis_now_us(conn)
    limiter.release(slot)
    after_release_us = _redis_now_us(conn)

    assert conn.zcard(f"{{{key}}}:flight") == 0
    [(member, score)] = conn.zrange(f"{{{key}}}:done", 0, -1, withscores=True)
    assert member.decode() == slot.member
    expiry_us = int(score)
    # Stamped with Redis TIME at the answer (taken inside release()) plus exactly one window.
    assert before_release_us + window_us <= expiry_us <= after_release_us + window_us
    before_refusal_us = _redis_now_us(conn)
    refused, wait = limiter.try_acquire()
    after_refusal_us = _redis_now_us(conn)
    assert refused is None
    # The wait is the time left until the stored expiry, as Redis saw it during the call.
    assert expiry_us - after_refusal_us <= round(wait * 1e6) <= expiry_us - before_refusal_us
    assert 0 < wait <= window_us / 1e6
    # Free again once the answer is one window old, and not before.
    assert _wait_for(lambda: _granted_at(conn, limiter, expiry_us)) >= expiry_us


@pytest.mark.redis
def test_redis_lease_frees_a_slot_whose_sender_never_answers(redis_url, key):
    lease_us = 1_000_000  # far longer than the Redis round trips between taking the slot and the refusal
    conn = redis.Redis.from_url(redis_url)
    limiter = _limiter(redis_url, key, 1, window=5.0, lease=lease_us / 1e6)
    before_us = _redis_now_us(conn)
    assert limiter.try_acquire()[0] is not None  # never released: its process "died"
    after_us = _redis_now_us(conn)
    [(_member, score)] = conn.zrange(f"{{{key}}}:flight", 0, -1, withscores=True)
    lease_ends_us = int(score)
    assert before_us + lease_us <= lease_ends_us <= after_us + lease_us

    before_us = _redis_now_us(conn)
    refused, wait = limiter.try_acquire()
    after_us = _redis_now_us(conn)

    assert refused is None
    # The lease, not the (longer) window, bounds the wait.
    assert lease_ends_us - after_us <= round(wait * 1e6) <= lease_ends_us - before_us
    assert 0 < wait <= lease_us / 1e6
    assert _wait_for(lambda: _granted_at(conn, limiter, lease_ends_us)) >= lease_ends_us


@pytest.mark.redis
def test_redis_keys_expire_when_the_account_goes_quiet(redis_url, key):
    conn = redis.Redis.from_url(redis_url)
    limiter = _limiter(redis_url, key, 2, window=0.5, lease=5.0)
    held, _ = limiter.try_acquire()
    answered, _ = limiter.try_acquire()
    limiter.release(answered)

    assert 5_000 < conn.pttl(f"{{{key}}}:flight") <= 6_000  # lease + 1 s
    assert 0 < conn.pttl(f"{{{key}}}:done") <= 1_500  # window + 1 s
    limiter.release(held)
    assert conn.exists(f"{{{key}}}:flight") == 0


@pytest.mark.redis
def test_redis_acquire_waits_for_the_window_then_proceeds(redis_url, key):
    limiter = _limiter(redis_url, key, 2, window=0.5)
    started = time.monotonic()

    for _ in range(5):
        with limiter.slot():
            pass

    # Calls 3-4 wait for the answers of 1-2 to be one window old, call 5 for those of 3-4.
    assert time.monotonic() - started >= 1.0


@pytest.mark.redis
def test_redis_acquire_gives_up_at_its_deadline_with_pacing_timeout(redis_url, key):
    # The held slot frees in 30 s (its lease, shorter than the window), far beyond the 5 s allowed.
    limiter = _limiter(redis_url, key, 1, window=60.0, lease=30.0)
    assert limiter.try_acquire()[0] is not None
    started = time.monotonic()

    with pytest.raises(PacingTimeout) as caught:
        limiter.acquire(timeout=5.0)

    assert isinstance(caught.value, RateLimited) and isinstance(caught.value, TimeoutError)
    # A wait that cannot end in time is refused at once, not after sleeping out the allowed 5 s.
    assert time.monotonic() - started < 5.0


# --- choosing the implementation -----------------------------------------------------------------

def test_account_limits_use_redis_only_for_a_redis_url():
    memory = AccountLimits.build(PacingConfig(redis_url="memory://"), account="a")
    shared = AccountLimits.build(PacingConfig(redis_url="redis://127.0.0.1:1/0", key_prefix="p"), account="a")

    assert type(memory.orders) is SlidingWindowLimiter and type(memory.reads) is SlidingWindowLimiter
    assert type(shared.orders) is RedisWindowLimiter and type(shared.reads) is RedisWindowLimiter
    assert (shared.orders.key, shared.reads.key) == ("p:a:orders", "p:a:reads")
    assert (shared.orders.limit, shared.reads.limit) == (10, 50)


def test_client_names_its_redis_buckets_by_host_and_key_never_the_key_itself():
    settings = ClientSettings(pacing_redis_url="redis://127.0.0.1:1/0", pacing_key_prefix="p")
    one = OpenAlgoClient("http://127.0.0.1:9/", "secret-key-1", settings=settings)
    same = OpenAlgoClient("http://127.0.0.1:9", "secret-key-1", settings=settings)
    other = OpenAlgoClient("http://127.0.0.1:9", "secret-key-2", settings=settings)
    try:
        assert one._limits.orders.key == same._limits.orders.key != other._limits.orders.key
        assert "secret" not in one._limits.orders.key
    finally:
        for client in (one, same, other):
            client.close()


def test_app_passes_redis_url_and_prefix_to_the_client(app_factory):
    from app.services.accounts import client_settings

    application = app_factory(REDIS_URL="redis://127.0.0.1:1/0", BROKER_PACING_KEY_PREFIX="mine",
                              BROKER_PACING_MAX_WAIT_SECONDS=7.0)
    with application.app_context():
        settings = client_settings()

    assert (settings.pacing_redis_url, settings.pacing_key_prefix, settings.pacing_max_wait) == (
        "redis://127.0.0.1:1/0", "mine", 7.0)


# --- Redis unreachable ---------------------------------------------------------------------------

def test_unreachable_redis_paces_in_process_with_one_warning(caplog):
    link = _link(f"redis://127.0.0.1:{_free_port()}/0")  # nothing listens there
    orders = RedisWindowLimiter(link, "p:a:orders", 2, max_wait=5.0)
    reads = RedisWindowLimiter(link, "p:b:reads", 2, max_wait=5.0)

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        tokens = [orders.acquire(), orders.acquire(), reads.acquire()]
        with pytest.raises(PacingTimeout):
            orders.acquire(timeout=0.05)  # the in-process window still holds: 2 in flight
        for token in tokens[:2]:
            orders.release(token)
        reads.release(tokens[2])

    warnings = [r for r in caplog.records if r.name == LOGGER]
    assert [r.levelname for r in warnings] == ["WARNING"]
    assert "pacing each process on its own" in warnings[0].getMessage()


class PrivateRedis:
    """A redis-server of one test's own on a free port, which the test may stop and start again."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL)
        probe = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        _wait_for(lambda: _pings(probe))
        probe.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def zcard(self, name: str) -> int:
        conn = redis.Redis(port=self.port)
        try:
            return int(conn.zcard(name))
        finally:
            conn.close()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not installed")
    server = PrivateRedis(binary)
    server.start()
    yield server
    server.stop()


def _pings(conn: redis.Redis) -> bool:
    try:
        return bool(conn.ping())
    except redis.RedisError:
        return False


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_redis_dying_mid_run_falls_back_then_comes_back(private_redis, caplog):
    clock = FakeClock()
    link = RedisLink(redis.Redis.from_url(private_redis.url, socket_timeout=0.5, socket_connect_timeout=0.5),
                     clock=clock)
    limiter = RedisWindowLimiter(link, "p:a:orders", 5, max_wait=5.0)
    before = limiter.acquire()
    assert private_redis.zcard("{p:a:orders}:flight") == 1

    private_redis.stop()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        limiter.release(before)  # lost with Redis: must not raise
        during = [limiter.acquire() for _ in range(2)]  # paced in process; Redis not tried again yet
        for token in during:
            limiter.release(token)
        private_redis.start()
        still_local = limiter.acquire()  # within RETRY_SECONDS of the failure: still in process
        clock.now += RedisLink.RETRY_SECONDS
        after = limiter.acquire()

    assert [type(t) for t in [*during, still_local]] == [int, int, int]
    assert private_redis.zcard("{p:a:orders}:flight") == 1  # counted in Redis again
    limiter.release(still_local)
    limiter.release(after)
    assert private_redis.zcard("{p:a:orders}:flight") == 0
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(messages) == 2
    assert "Redis pacing unavailable" in messages[0]
    assert messages[1].startswith("Redis pacing restored after")
