"""The prices the risk monitor judges by, and how far each can be trusted (LESSONS.md "Data").

The feed's thread tells the board about every tick of a watched instrument (`note_tick`): a refused
one (zero, not a number) is kept until a good one replaces it, and a tick with a recent trade time
marks its host's market as trading. The monitor's thread asks `check` for one instrument's verdict:
the last refused tick, else the later of the feed's accepted price and a quote of a quiet leg
(app/services/risk/quotes.py; a quote counts only while its own host trades and the leg's exchange
is in session, from the trading calendar).

A pass over many runs asks about the same instruments again and again (a contract is in several
runs, and the account limits read every leg once more): `checker(now)` answers each instrument
once per pass. A tick that arrives during the pass marks its runs for the next pass, which
asks again.

`note_tick` also answers how far the tick moved its instrument (relative to the last good price;
a first price counts as the biggest move): the monitor evaluates the runs whose prices moved most
first, because a breach comes with a move.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import Flask

from app.broker.feed import Tick
from app.domain.price_guard import PriceCheck, PriceProblem, check_price
from app.services.calendar import get_calendar
from app.services.monitors import last_prices
from app.services.risk.quotes import QuoteReader, judge_price

logger = logging.getLogger(__name__)

Instrument = tuple[str, str]  # (symbol, exchange), upper case
PriceCheckFn = Callable[[str, str, datetime], PriceCheck]

CALENDAR_EXCHANGE = {"NFO": "NSE", "CDS": "NSE", "BFO": "BSE"}  # whose sessions a segment follows
SESSION_RECHECK_SECONDS = 1.0


def instrument_key(symbol: str, exchange: str) -> Instrument:
    return symbol.upper(), exchange.upper()


class PriceBoard:
    """See the module docstring. `note_tick` runs on the feed's thread; the rest on the monitor's."""

    def __init__(self, app: Flask, max_age: timedelta, first_price_grace: float, quotes: QuoteReader) -> None:
        self.app = app
        self.max_age = max_age
        self.first_price_grace = first_price_grace
        self.quotes = quotes
        self._lock = threading.Lock()
        self._bad_ticks: dict[Instrument, tuple[Any, datetime]] = {}  # the last refused tick, until a good one
        self._live_at: dict[str, datetime] = {}  # host → arrival of its last tick with a recent trade time
        self._sessions: dict[str, tuple[float, bool]] = {}  # calendar exchange → (checked at, open)
        self._subscribed_at: dict[Instrument, float] = {}  # monotonic: when the monitor first subscribed it
        self._last_ltp: dict[Instrument, Decimal] = {}  # the last good price of each instrument

    # -- the feed's thread --
    def note_tick(self, key: Instrument, tick: Tick, host: str) -> float:
        """Take in a tick; answer its move: |ltp / last good ltp - 1| (inf for a first good price,
        0 for a refused one)."""
        ltp = tick.ltp
        with self._lock:
            if ltp is None or ltp <= 0:
                self._bad_ticks[key] = (tick.data.get("ltp"), tick.received_at)
                return 0.0
            self._bad_ticks.pop(key, None)
            if tick.tick_time is not None and tick.received_at - tick.tick_time <= self.max_age:
                self._live_at[host] = tick.received_at  # this host's market is trading
            before = self._last_ltp.get(key)
            self._last_ltp[key] = ltp
        return math.inf if before is None else float(abs(ltp - before) / before)

    # -- the monitor's thread --
    def subscribed(self, instruments: Iterable[Instrument]) -> None:
        """These were just subscribed: a missing first price is awaited for `first_price_grace`."""
        for instrument in instruments:
            self._subscribed_at.setdefault(instrument, time.monotonic())

    def keep_only(self, instruments: Iterable[Instrument]) -> None:
        """Forget the last prices of instruments no longer watched."""
        keep = set(instruments)
        with self._lock:
            self._last_ltp = {k: v for k, v in self._last_ltp.items() if k in keep}

    def check(self, symbol: str, exchange: str, now: datetime) -> PriceCheck:
        """The instrument's price as the rules may use it at `now`, or the reason it may not."""
        key = instrument_key(symbol, exchange)
        with self._lock:
            bad = self._bad_ticks.get(key)
        if bad is not None:
            return check_price(bad[0], bad[1], now, self.max_age)
        quoted = self.quotes.get(key)
        live = quoted is not None and self.host_live(quoted.host, now) and self.in_session(exchange, now)
        return judge_price(last_prices(self.app).peek(symbol, exchange), quoted, now, self.max_age, market_live=live)

    def checker(self, now: datetime) -> PriceCheckFn:
        """`check` for one pass at `now`: each instrument is judged once (another time is asked anew)."""
        memo: dict[Instrument, PriceCheck] = {}

        def check(symbol: str, exchange: str, at: datetime) -> PriceCheck:
            if at is not now:
                return self.check(symbol, exchange, at)
            found = memo.get((symbol, exchange))
            if found is None:
                found = memo[(symbol, exchange)] = self.check(symbol, exchange, now)
            return found

        return check

    def host_live(self, host: str, now: datetime) -> bool:
        """A tick with a recent trade time came from this host within the price age limit."""
        with self._lock:
            live = self._live_at.get(host)
        return live is not None and now - live <= self.max_age

    def live_hosts(self) -> list[str]:
        with self._lock:
            return list(self._live_at)

    def in_session(self, exchange: str, now: datetime) -> bool:
        """The leg's exchange is open now (the trading calendar; NFO and CDS follow NSE, BFO BSE),
        asked at most once a second per exchange."""
        name = CALENDAR_EXCHANGE.get(exchange.upper(), exchange.upper())
        known = self._sessions.get(name)
        if known is not None and time.monotonic() - known[0] < SESSION_RECHECK_SECONDS:
            return known[1]
        try:
            is_open = get_calendar().is_market_open(now, name)
        except Exception:  # no calendar answer: no quote (the rules hold on the stale price)
            logger.exception("trading calendar not read for %s", name)
            is_open = False
        self._sessions[name] = (time.monotonic(), is_open)
        return is_open

    def awaiting_first_prices(self, reliability: Any) -> bool:
        """Every problem is a missing price of an instrument subscribed less than the grace ago."""
        horizon = time.monotonic() - self.first_price_grace
        for key, check in reliability.problems:
            exchange, _, symbol = key.partition(":")
            since = self._subscribed_at.get(instrument_key(symbol, exchange))
            if check.problem is not PriceProblem.MISSING or since is None or since < horizon:
                return False
        return True
