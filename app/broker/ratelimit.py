"""Client-side pacing per account: bursts wait for a free slot instead of hitting a 429."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class SlidingWindowLimiter:
    """At most `limit` acquisitions in any `window` seconds; callers block until a slot frees.

    Thread-safe. `acquire` returns the seconds it waited. The clock and sleep are injectable so
    tests can check the pacing without real waiting.
    """

    def __init__(self, limit: int, window: float = 1.0, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._stamps: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self, timeout: float | None = None) -> float:
        """Take a slot, waiting as needed. Raises TimeoutError if `timeout` would be exceeded."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                while self._stamps and now - self._stamps[0] >= self.window:
                    self._stamps.popleft()
                if len(self._stamps) < self.limit:
                    self._stamps.append(now)
                    return waited
                delay = self.window - (now - self._stamps[0])
            if timeout is not None and waited + delay > timeout:
                raise TimeoutError("rate limiter wait would exceed the timeout")
            self._sleep(delay)
            waited += delay


class AccountLimits:
    """The two buckets OpenAlgo enforces per client: order routes and everything else."""

    def __init__(self, orders_per_second: int, reads_per_second: int):
        self.orders = SlidingWindowLimiter(orders_per_second)
        self.reads = SlidingWindowLimiter(reads_per_second)
