"""Client-side pacing per account: bursts wait for a free slot instead of hitting a 429.

OpenAlgo counts requests as they arrive, per client and route, in a moving one-second window.
Our stamp for a request is the moment its answer came back (a request in flight holds its slot
until then): a request arrives at the server no later than its answer comes back, so the
server can never see more than `limit` arrivals in any window, even when requests sent at
different times arrive bunched together.

Two implementations share the `Limiter` interface: `SlidingWindowLimiter` counts inside one
process; `app.broker.ratelimit_redis.RedisWindowLimiter` counts in Redis, so every worker and
host pacing the same account shares one window. `AccountLimits.build` picks one from the
client's settings.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from app.broker.errors import RateLimited


class PacingTimeout(RateLimited, TimeoutError):
    """No slot freed up within the wait allowed: the request was not sent. Retry later."""


class Limiter(ABC):
    """At most `limit` requests in flight or finished within the last `window` seconds."""

    limit: int
    window: float

    @abstractmethod
    def acquire(self, timeout: float | None = None) -> Any:
        """Take a slot, waiting as needed; returns a token for `release`. Raises PacingTimeout (a
        TimeoutError and a RateLimited) when the wait would exceed `timeout` (None: the limiter's
        own default)."""

    @abstractmethod
    def release(self, token: Any) -> None:
        """The request of `token` has its answer (or failed): it counts from now for one window."""

    @contextmanager
    def slot(self, timeout: float | None = None) -> Iterator[None]:
        token = self.acquire(timeout)
        try:
            yield
        finally:
            self.release(token)


class SlidingWindowLimiter(Limiter):
    """The in-process limiter. Thread-safe. The clock and sleep are injectable so tests check
    pacing without waiting. `max_wait` bounds a wait when `acquire` gets no timeout (None: wait
    as long as it takes)."""

    def __init__(self, limit: int, window: float = 1.0, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] | None = None, max_wait: float | None = None):
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.window = window
        self.max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._cond = threading.Condition()
        self._in_flight: set[int] = set()
        self._finished: list[float] = []  # completion times, ascending
        self._ids = itertools.count()

    def _prune(self, now: float) -> None:
        cut = 0
        while cut < len(self._finished) and now - self._finished[cut] >= self.window:
            cut += 1
        del self._finished[:cut]

    def _wait(self, seconds: float | None) -> None:
        if self._sleep is not None:  # test clock: advance it instead of blocking
            self._cond.release()
            try:
                self._sleep(seconds if seconds is not None else self.window)
            finally:
                self._cond.acquire()
        else:
            self._cond.wait(seconds)

    def acquire(self, timeout: float | None = None) -> int:
        if timeout is None:
            timeout = self.max_wait
        started = self._clock()
        with self._cond:
            while True:
                now = self._clock()
                self._prune(now)
                if len(self._in_flight) + len(self._finished) < self.limit:
                    slot = next(self._ids)
                    self._in_flight.add(slot)
                    return slot
                # Free at the earliest expiry of a finished request, or when one in flight ends.
                delay = self.window - (now - self._finished[0]) if self._finished else None
                if timeout is not None:
                    remaining = timeout - (now - started)
                    if remaining <= 0 or (delay is not None and delay > remaining and not self._in_flight):
                        raise PacingTimeout("No free request slot for this account within the allowed wait.")
                    delay = remaining if delay is None else min(delay, remaining)
                self._wait(delay)

    def release(self, token: int) -> None:
        with self._cond:
            if token in self._in_flight:
                self._in_flight.discard(token)
                self._finished.append(self._clock())
            self._cond.notify_all()


def pacing_identity(host_url: str, api_key: str) -> str:
    """A stable name for one OpenAlgo account (host and key) that every process computes alike,
    without revealing the key (Redis key names are visible to anyone who can read Redis)."""
    return hashlib.sha256(f"{host_url.rstrip('/')}\n{api_key}".encode()).hexdigest()[:24]


def is_redis_url(url: str | None) -> bool:
    return bool(url) and str(url).split("://", 1)[0].lower() in ("redis", "rediss", "unix")


@dataclass(frozen=True)
class PacingConfig:
    """How an account's calls are paced. With a Redis URL the windows are shared by every process."""

    orders_per_second: int = 10
    reads_per_second: int = 50
    max_wait: float | None = 30.0  # seconds a call may wait for a slot before PacingTimeout
    redis_url: str | None = None  # redis://, rediss:// or unix://; anything else: in-process
    key_prefix: str = "algomirror:pacing"
    # How long a slot in flight holds in Redis without an answer before it is presumed dead (its
    # process crashed); must exceed the longest call, or a slow call frees its slot too early.
    in_flight_lease: float = 30.0


class AccountLimits:
    """The two buckets OpenAlgo enforces per client: order routes and everything else."""

    def __init__(self, orders: Limiter, reads: Limiter):
        self.orders = orders
        self.reads = reads

    @classmethod
    def build(cls, config: PacingConfig, *, account: str) -> AccountLimits:
        """Redis-backed limiters when `config.redis_url` is a Redis URL, in-process ones otherwise."""
        local_orders = SlidingWindowLimiter(config.orders_per_second, max_wait=config.max_wait)
        local_reads = SlidingWindowLimiter(config.reads_per_second, max_wait=config.max_wait)
        if not is_redis_url(config.redis_url):
            return cls(local_orders, local_reads)
        from app.broker.ratelimit_redis import RedisWindowLimiter, shared_redis

        conn = shared_redis(str(config.redis_url))
        return cls(
            RedisWindowLimiter(conn, f"{config.key_prefix}:{account}:orders", config.orders_per_second,
                               fallback=local_orders, lease=config.in_flight_lease, max_wait=config.max_wait),
            RedisWindowLimiter(conn, f"{config.key_prefix}:{account}:reads", config.reads_per_second,
                               fallback=local_reads, lease=config.in_flight_lease, max_wait=config.max_wait),
        )
