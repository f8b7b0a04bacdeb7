"""Live market data: a last-price cache that refuses bad ticks, fed by one WebSocket per OpenAlgo host.

Prices here are what risk rules and exits will read, so the cache is strict (LESSONS.md "Zero or
stale prices"): zero, negative and non-numeric LTPs, ticks older than the configured age and ticks
older than the cached one are rejected and counted, and ``get`` answers None rather than a price
older than the caller can accept.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from app.broker.feed import DEFAULT_BACKOFF, FeedClient, FeedStatus, Instrument, Mode, Tick
from app.broker.feed_frames import parse_price

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
InstrumentLike = Instrument | Mapping[str, Any]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Rejection(StrEnum):
    NOT_A_NUMBER = "not_a_number"
    NOT_POSITIVE = "not_positive"
    STALE = "stale"  # older than max_tick_age when it arrived
    OUT_OF_ORDER = "out_of_order"  # older than the price already cached


@dataclass(frozen=True)
class CachedPrice:
    """The last accepted price of one instrument."""

    ltp: Decimal
    tick_time: datetime  # when the price was true (exchange time; received time when the feed gave none)
    received_at: datetime
    source: str  # the host key of the feed that delivered it


@dataclass(frozen=True)
class PriceReading:
    """A cached price with its age at the time of reading."""

    ltp: Decimal
    age: timedelta  # now - tick_time
    tick_time: datetime
    received_at: datetime
    source: str


class LastPriceCache:
    """Thread-safe map (exchange, symbol) -> last good price.

    Args:
        max_tick_age: ticks older than this on arrival are rejected (None: no limit).
        clock: returns aware UTC "now" (a fake clock in tests).
    """

    def __init__(self, max_tick_age: timedelta | None = timedelta(minutes=5), clock: Clock = utcnow) -> None:
        self._max_tick_age = max_tick_age
        self._clock = clock
        self._lock = threading.Lock()
        self._prices: dict[tuple[str, str], CachedPrice] = {}
        self._rejections: Counter[Rejection] = Counter()
        self._warned: set[tuple[tuple[str, str], Rejection]] = set()

    def update(self, symbol: str, exchange: str, ltp: Any, tick_time: datetime | None, source: str,
               received_at: datetime | None = None) -> Rejection | None:
        """Offer a price; returns None when accepted, else why it was rejected (also counted and logged).

        ``ltp`` may be a Decimal, number or numeric string. ``tick_time`` must be aware; None means
        "now". A tick stamped later than its arrival (server clock ahead) counts as received now.
        """
        received = received_at or self._clock()
        price = parse_price(ltp)
        when = received if tick_time is None else min(tick_time.astimezone(UTC), received)
        key = (exchange.upper(), symbol.upper())
        reason: Rejection | None = None
        with self._lock:
            if price is None:
                reason = Rejection.NOT_A_NUMBER
            elif price <= 0:
                reason = Rejection.NOT_POSITIVE
            elif self._max_tick_age is not None and self._clock() - when > self._max_tick_age:
                reason = Rejection.STALE
            else:
                current = self._prices.get(key)
                if current is not None and when < current.tick_time:
                    reason = Rejection.OUT_OF_ORDER
                else:
                    self._prices[key] = CachedPrice(price, when, received, source)
                    return None
            self._rejections[reason] += 1
            first = (key, reason) not in self._warned
            self._warned.add((key, reason))
        # The first rejection of a kind per instrument is a warning; repeats would flood the log.
        logger.log(logging.WARNING if first else logging.DEBUG, "price rejected (%s) for %s:%s from %s: %r at %s",
                   reason, key[0], key[1], source, ltp, when.isoformat())
        return reason

    def put_tick(self, tick: Tick, source: str) -> Rejection | None:
        """Offer a parsed feed tick (see ``update``)."""
        inst = tick.instrument
        return self.update(inst.symbol, inst.exchange, tick.ltp, tick.tick_time, source, tick.received_at)

    def get(self, symbol: str, exchange: str, max_age: timedelta) -> PriceReading | None:
        """The price and its age, or None when there is none or it is older than ``max_age``.

        Callers must treat None as "no reliable price" and not act (and say so in their log).
        """
        with self._lock:
            cached = self._prices.get((exchange.upper(), symbol.upper()))
        if cached is None:
            return None
        age = max(self._clock() - cached.tick_time, timedelta(0))
        if age > max_age:
            return None
        return PriceReading(cached.ltp, age, cached.tick_time, cached.received_at, cached.source)

    def peek(self, symbol: str, exchange: str) -> CachedPrice | None:
        """The cached price whatever its age (for display with its age; never for trading decisions)."""
        with self._lock:
            return self._prices.get((exchange.upper(), symbol.upper()))

    def discard(self, symbol: str, exchange: str, source: str | None = None) -> None:
        """Forget a price (only when it came from ``source``, if given)."""
        key = (exchange.upper(), symbol.upper())
        with self._lock:
            cached = self._prices.get(key)
            if cached is not None and (source is None or cached.source == source):
                del self._prices[key]

    def rejections(self) -> dict[str, int]:
        """Rejected ticks so far, by reason."""
        with self._lock:
            return {str(reason): self._rejections[reason] for reason in Rejection}

    def __len__(self) -> int:
        with self._lock:
            return len(self._prices)


@dataclass
class _Host:
    feed: FeedClient
    owners: dict[Instrument, dict[str, int]]  # instrument -> owner -> mode


class FeedManager:
    """One feed connection per OpenAlgo host, with reference-counted subscriptions, writing the cache.

    ``host_key`` names a host (e.g. its normalized URL); several accounts on one host share its
    connection, which uses the ws URL and key given by the first ``subscribe`` (change it with
    ``switch_source``). An instrument goes on the wire in the highest mode any owner asked for, and
    is unsubscribed only when its last owner releases it. A host's connection stays open while idle;
    ``drop_host`` closes it. ``feed_options`` go to each ``FeedClient`` (backoff, timeouts).
    """

    def __init__(self, cache: LastPriceCache | None = None, *, on_tick: Callable[[Tick], None] | None = None,
                 backoff: Sequence[float] = DEFAULT_BACKOFF, **feed_options: Any) -> None:
        self.cache = cache if cache is not None else LastPriceCache()
        self._on_tick = on_tick
        self._listeners: tuple[Callable[[Tick, str], None], ...] = ()
        self._feed_options = {"backoff": backoff, **feed_options}
        self._lock = threading.Lock()
        self._hosts: dict[str, _Host] = {}
        self._closed = False

    def subscribe(self, host_key: str, ws_url: str, api_key: str, instruments: Iterable[InstrumentLike],
                  owner: str, mode: int = Mode.LTP) -> None:
        """Add ``owner``'s interest in ``instruments`` on a host, starting its connection if needed."""
        wanted = [Instrument.of(i) for i in instruments]
        mode = int(Mode(mode))
        with self._lock:
            if self._closed:
                raise RuntimeError("FeedManager is closed")
            host = self._hosts.get(host_key)
            if host is None:
                host = self._hosts[host_key] = _Host(self._new_feed(host_key, ws_url, api_key), {})
                host.feed.start()
            changed: dict[int, list[Instrument]] = {}
            for inst in wanted:
                owners = host.owners.setdefault(inst, {})
                before = max(owners.values(), default=0)
                owners[owner] = max(owners.get(owner, 0), mode)
                after = max(owners.values())
                if after != before:
                    changed.setdefault(after, []).append(inst)
            for new_mode, insts in changed.items():
                host.feed.subscribe(insts, new_mode)

    def unsubscribe(self, host_key: str, instruments: Iterable[InstrumentLike], owner: str) -> None:
        """Release ``owner``'s interest; an instrument leaves the wire when its last owner is gone."""
        released = [Instrument.of(i) for i in instruments]
        with self._lock:
            host = self._hosts.get(host_key)
            if host is None:
                return
            gone: list[Instrument] = []
            lowered: dict[int, list[Instrument]] = {}
            for inst in released:
                owners = host.owners.get(inst)
                if owners is None or owners.pop(owner, None) is None:
                    continue
                if not owners:
                    del host.owners[inst]
                    gone.append(inst)
                else:
                    lowered.setdefault(max(owners.values()), []).append(inst)
            if gone:
                host.feed.unsubscribe(gone)
            for new_mode, insts in lowered.items():  # a no-op on the wire unless the highest mode left
                host.feed.subscribe(insts, new_mode)
        for inst in gone:  # no more updates will come, so a cached price would only go stale
            self.cache.discard(inst.symbol, inst.exchange, source=host_key)

    def release_owner(self, owner: str) -> None:
        """Release everything ``owner`` holds on every host (e.g. a strategy stopped)."""
        with self._lock:
            held = {key: [i for i, owners in host.owners.items() if owner in owners]
                    for key, host in self._hosts.items()}
        for key, insts in held.items():
            if insts:
                self.unsubscribe(key, insts, owner)

    def switch_source(self, host_key: str, ws_url: str, api_key: str) -> None:
        """Move a host's connection to another account's URL and key (failover); it reconnects now
        and resubscribes everything. Unknown hosts are ignored."""
        with self._lock:
            host = self._hosts.get(host_key)
        if host is None:
            logger.warning("feed switch for unknown host %s ignored", host_key)
            return
        logger.info("feed %s: switching source account", host_key)
        host.feed.set_credentials(ws_url, api_key)

    def drop_host(self, host_key: str) -> None:
        """Close a host's connection and forget its subscriptions (e.g. its last account was removed)."""
        with self._lock:
            host = self._hosts.pop(host_key, None)
        if host is not None:
            host.feed.close()
            for inst in host.owners:
                self.cache.discard(inst.symbol, inst.exchange, source=host_key)

    def owners(self, host_key: str, instrument: InstrumentLike) -> dict[str, int]:
        """The owners of an instrument on a host and the mode each asked for."""
        with self._lock:
            host = self._hosts.get(host_key)
            return dict(host.owners.get(Instrument.of(instrument), {})) if host else {}

    def status(self) -> dict[str, FeedStatus]:
        """Per host: connection state, subscription count, reconnects, last message time, last error."""
        with self._lock:
            hosts = list(self._hosts.items())
        return {key: host.feed.status() for key, host in hosts}

    def close(self, timeout: float = 5.0) -> None:
        """Close every connection and wait for their threads (idempotent)."""
        with self._lock:
            self._closed = True
            hosts, self._hosts = list(self._hosts.values()), {}
        for host in hosts:
            host.feed.close(timeout)

    def add_listener(self, listener: Callable[[Tick, str], None]) -> None:
        """Also call ``listener(tick, host_key)`` for every tick that arrives, after the cache took or refused it
        (a refused one, e.g. a zero price, is news to a risk monitor too). Idempotent. It runs on the
        feed's thread: it must be quick (e.g. mark work and wake a thread)."""
        with self._lock:
            if listener not in self._listeners:
                self._listeners = (*self._listeners, listener)

    def remove_listener(self, listener: Callable[[Tick, str], None]) -> None:
        with self._lock:
            self._listeners = tuple(x for x in self._listeners if x != listener)

    @property
    def closed(self) -> bool:
        return self._closed

    def _new_feed(self, host_key: str, ws_url: str, api_key: str) -> FeedClient:
        def deliver(tick: Tick) -> None:
            self.cache.put_tick(tick, host_key)
            if self._on_tick is not None:
                self._on_tick(tick)
            for listener in self._listeners:
                try:
                    listener(tick, host_key)
                except Exception:  # one listener's bug must not stop the feed
                    logger.exception("feed %s: a tick listener failed", host_key)

        return FeedClient(ws_url, api_key, deliver, name=host_key, **self._feed_options)
