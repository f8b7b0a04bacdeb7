"""Quotes for quiet legs: a held instrument that has not traded for a while is read by /multiquotes.

A far out-of-the-money hedge can go a minute without a trade. Judged by its last trade alone, its
price would be stale and every rule of its run would hold: the max loss of the short legs beside it
would never fire (the guard of LESSONS.md "Data" is against stale prices, not quiet ones). So while
the market is live (some tick carrying a recent trade time arrived within the price age limit), the
monitor asks the broker for the quotes of the legs whose price has not been confirmed for
RISK_QUOTE_REFRESH_SECONDS, one /multiquotes per market-data account on a worker thread. A quote is
true as of the moment it was asked for; the monitor uses whichever of the feed's price (by its
trade time) and the quote is the later.

Liveness is per market-data host, and only inside the leg's exchange session (the trading
calendar): when no fresh tick arrives from that host (its feed or its broker's data stopped), or
the exchange is closed, quotes are neither asked for nor used. A REST answer carries no time, and a
frozen broker would answer its frozen prices, hiding exactly the staleness the guard is for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from app.broker.client import OpenAlgoClient
from app.broker.errors import BrokerError
from app.domain.price_guard import PriceCheck, check_price
from app.models.types import utcnow
from app.services.market_data import CachedPrice

logger = logging.getLogger(__name__)

Instrument = tuple[str, str]  # (symbol, exchange), upper case


@dataclass(frozen=True)
class QuotedPrice:
    price: Decimal
    asked_at: datetime  # aware UTC: when it was asked for (the answer is true at least as of then)
    host: str  # the market-data host that answered (whose feed must be live for the quote to count)


class QuoteReader:
    """The quotes read for quiet instruments, and the reads in flight (one per market-data account)."""

    def __init__(self, every: float, on_quoted: Callable[[set[Instrument]], None]) -> None:
        self.every = every  # seconds without a confirmed price before a quote is asked for; 0: never
        self._on_quoted = on_quoted
        self._quotes: dict[Instrument, QuotedPrice] = {}
        self._asked: dict[Instrument, float] = {}  # instrument → when it was last asked for (monotonic)
        self._jobs: dict[int, Future[None]] = {}  # market-data account id → its read in flight
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self.reads = 0

    def get(self, instrument: Instrument) -> QuotedPrice | None:
        with self._lock:
            return self._quotes.get(instrument)

    def keep_only(self, instruments: Iterable[Instrument]) -> None:
        """Forget the quotes of instruments no longer watched."""
        wanted = set(instruments)
        with self._lock:
            for key in [k for k in self._quotes if k not in wanted]:
                del self._quotes[key]
            for key in [k for k in self._asked if k not in wanted]:
                del self._asked[key]

    def due(self, source_id: int, instruments: set[Instrument]) -> set[Instrument]:
        """Which of these instruments a read through this account would ask for now: none while a
        read of the account is in flight, none asked for within `every` seconds."""
        now = time.monotonic()
        with self._lock:
            job = self._jobs.get(source_id)
            if job is not None and not job.done():
                return set()
            return {i for i in instruments if now - self._asked.get(i, float("-inf")) >= self.every}

    def ask(self, source_id: int, host: str, client: OpenAlgoClient, instruments: set[Instrument]) -> bool:
        """Read these instruments' quotes through `client` (the account's, on `host`) on the worker
        thread, unless `due` leaves none. True when a read started."""
        due = self.due(source_id, instruments)
        if not due:
            return False
        now = time.monotonic()
        with self._lock:
            for instrument in due:
                self._asked[instrument] = now
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="risk-quotes")
            self._jobs[source_id] = self._pool.submit(self._read, client, host, sorted(due))
        return True

    def _read(self, client: OpenAlgoClient, host: str, instruments: list[Instrument]) -> None:
        asked = utcnow()
        try:
            quotes = client.multiquotes(instruments)
        except BrokerError as exc:
            logger.warning("quotes of %d quiet instruments not read: %s", len(instruments), exc)
            return
        except Exception:  # the worker must never die silently
            logger.exception("quotes of %d quiet instruments not read", len(instruments))
            return
        fresh: set[Instrument] = set()
        with self._lock:
            self.reads += 1
            for (symbol, exchange), quote in quotes.items():
                key = (symbol.upper(), exchange.upper())
                price = quote.ltp
                if key in instruments and isinstance(price, Decimal) and price.is_finite() and price > 0:
                    self._quotes[key] = QuotedPrice(price, asked, host)
                    fresh.add(key)
        if fresh:
            self._on_quoted(fresh)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            self._jobs.clear()
            self._quotes.clear()
            self._asked.clear()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def judge_price(cached: CachedPrice | None, quoted: QuotedPrice | None, now: datetime, max_age: timedelta, *,
                market_live: bool) -> PriceCheck:
    """One instrument's price for the rules: the feed's last accepted price, or a quote asked for
    after its trade (true as of the asking; only while the quote's host trades: `market_live`)."""
    if quoted is not None and market_live and (cached is None or quoted.asked_at > cached.tick_time):
        return check_price(quoted.price, quoted.asked_at, now, max_age)
    if cached is None:
        return check_price(None, None, now, max_age)
    return check_price(cached.ltp, cached.tick_time, now, max_age)
