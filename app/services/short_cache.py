"""A small in-process cache with a time to live and single-flight loading.

Many open tabs poll the same broker data. `SingleFlightCache.get` lets the first request for
a key call the broker while concurrent requests for the same key wait for that one answer;
every request within the TTL after it is served from memory. Thread-safe; one per process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, cast


class CacheWaitTimeout(TimeoutError):
    """The fetch another request started for this key did not finish in time."""


@dataclass
class _Entry:
    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: Exception | None = None
    expires_at: float = 0.0  # meaningful once `done` is set


class SingleFlightCache:
    """Values by key for `ttl` seconds; one load at a time per key.

    A load that raises is shared with the requests waiting for it and remembered for at most
    `error_ttl` seconds (never longer than the key's TTL), so a failing broker is not asked
    again by every tab, but a long-lived key (an expiry list) is not stuck on one failure.
    """

    def __init__(self, *, max_entries: int = 2048, error_ttl: float = 1.0, wait_timeout: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: dict[Hashable, _Entry] = {}
        self._lock = threading.Lock()
        self._max_entries = max_entries
        self._error_ttl = error_ttl
        self._wait_timeout = wait_timeout
        self._clock = clock

    def get[T](self, key: Hashable, ttl: float, load: Callable[[], T]) -> T:
        """The cached value of `key`, loading it with `load()` when absent or expired.

        Raises what `load` raised (to the caller that loaded and to those that waited), or
        CacheWaitTimeout when another caller's load outlasts `wait_timeout`.
        """
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.done.is_set() and entry.expires_at <= self._clock():
                entry = None
            leader = entry is None
            if entry is None:
                entry = _Entry()
                self._entries[key] = entry
        if not leader:
            if not entry.done.wait(self._wait_timeout):
                raise CacheWaitTimeout(f"waited {self._wait_timeout:g} s for a fetch in flight")
            if entry.error is not None:
                raise entry.error
            return cast(T, entry.value)
        return self._load(key, entry, ttl, load)

    def _load[T](self, key: Hashable, entry: _Entry, ttl: float, load: Callable[[], T]) -> T:
        try:
            value = load()
        except Exception as exc:
            self._finish(key, entry, error=exc, lifetime=min(ttl, self._error_ttl))
            raise
        except BaseException:
            # Interpreter exit or the like: release the waiters and remember nothing.
            with self._lock:
                if self._entries.get(key) is entry:
                    del self._entries[key]
            entry.error = CacheWaitTimeout("the fetch in flight was abandoned")
            entry.done.set()
            raise
        self._finish(key, entry, value=value, lifetime=ttl)
        return value

    def _finish(self, key: Hashable, entry: _Entry, *, lifetime: float, value: Any = None,
                error: Exception | None = None) -> None:
        with self._lock:
            entry.value, entry.error = value, error
            entry.expires_at = self._clock() + lifetime
            entry.done.set()
            if len(self._entries) > self._max_entries:
                self._prune()

    def _prune(self) -> None:
        """Drop expired entries, then the soonest to expire; never a load in flight. Lock held."""
        now = self._clock()
        finished = [(e.expires_at, k) for k, e in self._entries.items() if e.done.is_set()]
        for expires_at, key in finished:
            if expires_at <= now:
                del self._entries[key]
        excess = len(self._entries) - self._max_entries
        if excess > 0:
            for _, key in sorted((x for x in finished if x[0] > now), key=lambda x: x[0])[:excess]:
                del self._entries[key]

    def invalidate(self, key: Hashable) -> None:
        """Forget a finished value now (a load in flight still completes for its waiters)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.done.is_set():
                del self._entries[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
