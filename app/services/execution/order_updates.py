"""The leader's order-update streams: what each account's OpenAlgo server pushes about its orders.

One WebSocket per trading account that has a WebSocket URL (OpenAlgo's ``subscribe_orders``), opened
the first time the engine sends to the account and closed after `idle_seconds` without a send. Each
pushed frame is kept for `keep_seconds` as the latest report of its (account, order id); a final
report (complete, rejected, cancelled) is never replaced by a later non-final one.

It answers one question: the order's first status right after its acknowledgement (sender.place).
Without it that is a status read, one more round trip before an account's SELL legs may follow its
BUY legs. A pushed frame may be lost (a slow client loses frames), so a report is only a shortcut:
when none arrives within the wait, the sender reads the status as before. An order placed before the
account's stream was confirmed is not waited for (its frames may have gone out before the
subscription), nor is one whose stream drops meanwhile. A report is applied like a status read:
an event on the intent through tracker.apply_report, never copied into it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from app.broker import parsing

logger = logging.getLogger(__name__)

FINAL_STATUSES = frozenset({"complete", "rejected", "cancelled"})
PRUNE_EVERY = 256  # reports stored between two prunes of the old ones


@dataclass(eq=False)
class _Stream:
    feed: Any  # app.broker.feed.FeedClient
    credentials: tuple[str | None, str]  # (WebSocket URL, the client's identity): a change restarts it
    used: float  # monotonic time of the last ensure()


def _settles_wait(order: parsing.Order) -> bool:
    """A report a MARKET order's first status may be: a final one, or one showing a part filled (an
    order filling in parts; the tracker reads the rest, as after a status read that shows a part)."""
    return _final(order) or (order.status not in FINAL_STATUSES and (order.filled_quantity or 0) > 0)


def _final(order: parsing.Order) -> bool:
    """A report that ends the order: rejected, cancelled, or complete with its whole quantity filled
    at a price (a "complete" frame without them is not trusted: the status read decides)."""
    if order.status == "complete":
        return order.filled_quantity == order.quantity and order.average_price is not None \
            and order.average_price > 0
    return order.status in FINAL_STATUSES


def _close_all(streams: list[_Stream]) -> None:
    """Close streams off the caller's thread (the engine's pass): a feed stuck connecting takes
    seconds to stop."""
    if not streams:
        return

    def close() -> None:
        for stream in streams:
            stream.feed.close(timeout=5.0)

    threading.Thread(target=close, name="order-updates-close", daemon=True).start()


class OrderUpdates:
    """The streams of one engine (thread-safe). See the module docstring."""

    def __init__(self, *, wait_seconds: float = 0.25, idle_seconds: float = 1800.0, keep_seconds: float = 120.0,
                 clock: Any = time.monotonic) -> None:
        self.wait_seconds = wait_seconds
        self.idle_seconds = idle_seconds
        self.keep_seconds = keep_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._streams: dict[int, _Stream] = {}
        self._reports: dict[tuple[int, str], tuple[parsing.Order, float]] = {}
        self._waiters: dict[tuple[int, str], threading.Event] = {}
        self._stored = 0

    def ensure(self, account_id: int, client: Any) -> None:
        """Have a stream for this account (`client`: its OpenAlgoClient); restarted when its URL or
        key changed; none when it has no WebSocket URL."""
        credentials = (client.ws_url, client.identity)
        now = self._clock()
        with self._lock:
            stream = self._streams.get(account_id)
            if stream is not None and stream.credentials == credentials:
                stream.used = now
                return
            old = self._streams.pop(account_id, None)
            if old is not None:  # another URL or key may be another broker account: forget its reports
                self._reports = {k: v for k, v in self._reports.items() if k[0] != account_id}
            stream = _Stream(None, credentials, now)
            # Frames of a replaced stream that are still on their way are dropped (_on_order).
            stream.feed = client.order_feed(lambda order: self._on_order(account_id, stream, order))
            if stream.feed is not None:
                self._streams[account_id] = stream
        _close_all([old] if old is not None else [])
        if stream.feed is not None:
            stream.feed.start()

    def forget(self, account_id: int) -> None:
        """Close the account's stream and drop its reports (deleted, refused, or its key changed)."""
        with self._lock:
            old = self._streams.pop(account_id, None)
            self._reports = {k: v for k, v in self._reports.items() if k[0] != account_id}
        _close_all([old] if old is not None else [])

    def live_since(self, account_id: int) -> float | None:
        """Since when (monotonic) the account's order updates flow on its current socket, or None."""
        with self._lock:
            stream = self._streams.get(account_id)
        return None if stream is None else stream.feed.orders_live_since

    def first_status(self, account_id: int, order_id: str, *, placed_at: float,
                     final_only: bool) -> parsing.Order | None:
        """The order's pushed report: a final one or one showing a fill (`final_only`, a MARKET order,
        which fills at once) or any, waiting up to `wait_seconds`; None when the stream was not live since before
        `placed_at` (monotonic, taken before the request) or nothing suitable came in time."""
        key = (account_id, order_id)
        deadline = self._clock() + self.wait_seconds
        try:
            while True:
                since = self.live_since(account_id)
                if since is None or since > placed_at:
                    return None
                with self._lock:
                    entry = self._reports.get(key)
                    # A report stored before the request went out is about another order of that id.
                    if entry is not None and entry[1] >= placed_at and (not final_only or _settles_wait(entry[0])):
                        return entry[0]
                    event = self._waiters.setdefault(key, threading.Event())
                    event.clear()
                remaining = deadline - self._clock()
                if remaining <= 0:
                    return None
                event.wait(remaining)
        finally:
            with self._lock:
                self._waiters.pop(key, None)

    def close_idle(self) -> int:
        """Close the streams of accounts not sent to for `idle_seconds`; returns how many."""
        cutoff = self._clock() - self.idle_seconds
        with self._lock:
            idle = [a for a, s in self._streams.items() if s.used < cutoff]
            streams = [self._streams.pop(a) for a in idle]
        _close_all(streams)
        return len(streams)

    def close(self) -> None:
        """Close every stream and wait for them (the engine is stopping)."""
        with self._lock:
            streams, self._streams = list(self._streams.values()), {}
        for stream in streams:
            stream.feed.close(timeout=1.0)

    def _on_order(self, account_id: int, stream: _Stream, order: parsing.Order) -> None:
        """A pushed report (the stream's own thread); dropped when the stream was replaced."""
        key = (account_id, order.order_id)
        now = self._clock()
        with self._lock:
            if self._streams.get(account_id) is not stream:
                return
            old = self._reports.get(key)
            if old is None or not _final(old[0]):
                self._reports[key] = (order, now)
            self._stored += 1
            if self._stored % PRUNE_EVERY == 0:
                cutoff = now - self.keep_seconds
                self._reports = {k: v for k, v in self._reports.items() if v[1] >= cutoff}
            waiter = self._waiters.get(key)
        if waiter is not None:
            waiter.set()
