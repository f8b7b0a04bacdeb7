"""Client-side pacing per account: bursts wait for a free slot instead of hitting a 429.

OpenAlgo counts requests as they arrive, per client and route, in a moving one-second window.
Our stamp for a request is the moment its answer came back (a request in flight holds its slot
until then): a request arrives at the server no later than its answer comes back, so the
server can never see more than `limit` arrivals in any window, even when requests sent at
different times arrive bunched together.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class SlidingWindowLimiter:
    """At most `limit` requests in flight or finished within the last `window` seconds.

    Thread-safe. The clock and sleep are injectable so tests check pacing without waiting.
    """

    def __init__(self, limit: int, window: float = 1.0, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] | None = None):
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.window = window
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
        """Take a slot, waiting as needed; returns its id for `release`. Raises TimeoutError when
        the wait would exceed `timeout`."""
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
                        raise TimeoutError("rate limiter wait would exceed the timeout")
                    delay = remaining if delay is None else min(delay, remaining)
                self._wait(delay)

    def release(self, slot: int) -> None:
        """The request of `slot` has its answer (or failed): it counts from now for one window."""
        with self._cond:
            if slot in self._in_flight:
                self._in_flight.discard(slot)
                self._finished.append(self._clock())
            self._cond.notify_all()

    @contextmanager
    def slot(self, timeout: float | None = None) -> Iterator[None]:
        token = self.acquire(timeout)
        try:
            yield
        finally:
            self.release(token)


class AccountLimits:
    """The two buckets OpenAlgo enforces per client: order routes and everything else."""

    def __init__(self, orders_per_second: int, reads_per_second: int):
        self.orders = SlidingWindowLimiter(orders_per_second)
        self.reads = SlidingWindowLimiter(reads_per_second)
