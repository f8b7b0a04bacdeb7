"""Per-account pacing counted in Redis, shared by every worker and host (see ratelimit.py).

Each bucket is two sorted sets under one hash tag (so a Redis Cluster keeps them together):
`<key>:flight` holds the requests sent and not yet answered, scored by a lease expiry, and
`<key>:done` holds the answered ones, scored by answer time + window. A request takes a slot
when fewer than `limit` members remain in both after pruning, exactly like the in-process
limiter; its answer moves it from flight to done. All times are Redis TIME, so hosts whose
clocks disagree still share one window. A lease stands in for "until its answer arrives" when
the sender dies and never answers: the slot is freed when the lease runs out.

If Redis stops answering, the limiter logs one WARNING and paces with its in-process fallback
(each process on its own, as without Redis) until Redis answers again: calls never block on a
dead Redis and never fail because of it. It retries Redis every `RETRY_SECONDS`.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.broker.ratelimit import Limiter, PacingTimeout, SlidingWindowLimiter

logger = logging.getLogger(__name__)

# KEYS: flight, done. ARGV: limit, window_us, lease_us, member. Returns {1, 0} when the slot is
# taken, else {0, microseconds until the earliest moment a slot can free}: a finished request's
# expiry, a lease running out, or one window (a request still in flight counts for a window
# after its answer, so nothing frees sooner than that).
_ACQUIRE = """
if redis.replicate_commands then redis.replicate_commands() end
local flight, done = KEYS[1], KEYS[2]
local limit, window, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', flight, '-inf', now)
redis.call('ZREMRANGEBYSCORE', done, '-inf', now)
if redis.call('ZCARD', flight) + redis.call('ZCARD', done) < limit then
  redis.call('ZADD', flight, now + lease, ARGV[4])
  redis.call('PEXPIRE', flight, math.floor(lease / 1000) + 1000)
  return {1, 0}
end
local wait = window
for _, key in ipairs({flight, done}) do
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if first[2] then wait = math.min(wait, tonumber(first[2]) - now) end
end
return {0, wait}
"""

# KEYS: flight, done. ARGV: window_us, member. The answer came: the request counts for one
# window from now. Added even if its lease already ran out, so a late answer errs on the safe side.
_RELEASE = """
if redis.replicate_commands then redis.replicate_commands() end
local window = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], now + window, ARGV[2])
redis.call('PEXPIRE', KEYS[2], math.floor(window / 1000) + 1000)
return 1
"""


class RedisLink:
    """One Redis connection pool per process with the pacing scripts and an up/down state, shared
    by every account's limiters so that an outage is logged once, not once per account."""

    RETRY_SECONDS = 5.0

    def __init__(self, client: redis.Redis, *, clock: Callable[[], float] = time.monotonic):
        self.client = client
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self._clock = clock
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._retry_at = 0.0

    def usable(self) -> bool:
        with self._lock:
            return self._down_since is None or self._clock() >= self._retry_at

    def mark_down(self, exc: Exception) -> None:
        with self._lock:
            now = self._clock()
            if self._down_since is None:
                self._down_since = now
                logger.warning("Redis pacing unavailable (%s: %s); pacing each process on its own until "
                               "Redis answers again", type(exc).__name__, exc)
            self._retry_at = now + self.RETRY_SECONDS

    def mark_up(self) -> None:
        if self._down_since is None:  # the common case: no lock needed to see that
            return
        with self._lock:
            if self._down_since is not None:
                logger.warning("Redis pacing restored after %.1f s", self._clock() - self._down_since)
                self._down_since = None

    def try_acquire(self, key: str, limit: int, window_us: int, lease_us: int, member: str) -> tuple[bool, float]:
        """One attempt: (True, 0) with the slot taken, or (False, seconds until one may free)."""
        granted, wait_us = self._acquire(keys=_keys(key), args=[limit, window_us, lease_us, member])
        return bool(granted), max(int(wait_us), 0) / 1e6

    def release(self, key: str, window_us: int, member: str) -> None:
        self._release(keys=_keys(key), args=[window_us, member])


def _keys(key: str) -> list[str]:
    return [f"{{{key}}}:flight", f"{{{key}}}:done"]


_links: dict[str, RedisLink] = {}
_links_lock = threading.Lock()


def shared_redis(url: str) -> RedisLink:
    """The process's link for `url`. Short socket timeouts and no retries: a Redis that hangs
    costs a call at most about a second before the fallback takes over."""
    with _links_lock:
        link = _links.get(url)
        if link is None:
            client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5,
                                          retry=Retry(NoBackoff(), 0), health_check_interval=30)
            link = _links[url] = RedisLink(client)
        return link


@dataclass(frozen=True)
class _RedisSlot:
    member: str


class RedisWindowLimiter(Limiter):
    """The same window as SlidingWindowLimiter, counted in Redis under `key` (prefix, account and
    bucket). `lease`: seconds a slot in flight holds before it is presumed dead; it must exceed the
    longest call. `max_wait`: default bound of a wait for a slot (None: no bound)."""

    def __init__(self, link: RedisLink, key: str, limit: int, window: float = 1.0, *,
                 fallback: SlidingWindowLimiter | None = None, lease: float = 30.0,
                 max_wait: float | None = 30.0):
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.window = window
        self.key = key
        self.max_wait = max_wait
        self._link = link
        self._window_us = round(window * 1e6)
        self._lease_us = round(lease * 1e6)
        self._fallback = fallback or SlidingWindowLimiter(limit, window, max_wait=max_wait)
        self._member_prefix = f"{os.getpid()}-"

    def try_acquire(self) -> tuple[_RedisSlot | None, float]:
        """One attempt without waiting: (slot, 0), or (None, seconds until a slot may free).
        Raises redis.RedisError when Redis does not answer."""
        member = self._member_prefix + uuid.uuid4().hex
        granted, wait = self._link.try_acquire(self.key, self.limit, self._window_us, self._lease_us, member)
        return (_RedisSlot(member) if granted else None), wait

    def acquire(self, timeout: float | None = None) -> Any:
        if timeout is None:
            timeout = self.max_wait
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._link.usable():
            try:
                slot, wait = self.try_acquire()
            except redis.RedisError as exc:
                self._link.mark_down(exc)
                break
            self._link.mark_up()
            if slot is not None:
                return slot
            if deadline is not None and wait > deadline - time.monotonic():
                raise PacingTimeout("No free request slot for this account within the allowed wait.")
            # A little jitter so processes woken by the same expiry do not all retry at once.
            time.sleep(wait + random.uniform(0, 0.002))
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        return self._fallback.acquire(remaining)

    def release(self, token: Any) -> None:
        if not isinstance(token, _RedisSlot):
            self._fallback.release(token)
            return
        try:
            self._link.release(self.key, self._window_us, token.member)
        except redis.RedisError as exc:  # the slot's lease frees it in Redis later
            self._link.mark_down(exc)
