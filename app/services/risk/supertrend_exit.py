"""The Supertrend exit of one run: its net-premium candles and the decision on each candle close.

The risk monitor keeps one `SupertrendWatch` per run whose rules have a Supertrend exit. It loads
the 1-minute history of every leg once (from the user's market-data account), from a few sessions
before today (`premium_series.warmup_sessions`: the indicator is warmed up at the open, as on a
TradingView chart; only flips from the entry's candle on count), then takes the
legs' live prices as the current minute's closes; on each candle close of the run's timeframe it
runs the kernel over the closed candles and asks whether the trend flipped the exit's way since the
entry's candle (app/domain/premium_series.py). A leg without history holds the exit (the monitor
writes one risk event saying so) and is asked again after HISTORY_RETRY_SECONDS.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import date, datetime, timedelta
from decimal import Decimal

import numpy as np

from app.broker.client import OpenAlgoClient
from app.broker.errors import BrokerError
from app.broker.parsing import HistoryCandle
from app.domain.premium_series import (
    IST,
    SESSION_OPEN,
    Candle,
    PremiumCandles,
    PremiumLeg,
    entry_candle_index,
    supertrend_flip,
)
from app.domain.risk_pnl import leg_pnl
from app.domain.risk_rules import AccountPosition, Decision, LegToClose, ScopedDecision
from app.domain.risk_settings import RiskAction, RiskEventType
from app.indicators.supertrend import supertrend
from app.services.risk.book import RunBook
from app.services.risk.snapshot import SupertrendSettings

logger = logging.getLogger(__name__)

HISTORY_RETRY_SECONDS = 60.0


class SupertrendWatch:
    def __init__(self, book: RunBook, settings: SupertrendSettings, entered_at: datetime) -> None:
        self.run_id = book.run_id
        self.settings = settings
        self.entered_at = entered_at
        self.legs = [(leg.symbol.upper(), leg.exchange.upper()) for leg in book.legs]
        self.candles = PremiumCandles([PremiumLeg(leg.action, leg.lots) for leg in book.legs], settings.timeframe)
        self.loaded = False
        self.error: str | None = None
        self.next_load = 0.0
        self.last_end: datetime | None = None
        self.fired = False
        self.last: tuple[list[Candle], np.ndarray, np.ndarray] | None = None  # for the run page's chart
        self._lock = threading.Lock()  # history arrives on the loader's thread, prices on the monitor's

    def due(self) -> bool:
        """Its history should be (re)read now."""
        return not self.loaded and time.monotonic() >= self.next_load

    def fetch(self, client: OpenAlgoClient | None, now: datetime, first_day: date | None = None
              ) -> list[list[HistoryCandle]] | str:
        """Read the 1-minute history of every leg from `first_day` (default: today; the monitor passes
        the warm-up sessions' first day) to today (broker calls only; any thread): the candles per
        leg, or the problem in words."""
        self.next_load = time.monotonic() + HISTORY_RETRY_SECONDS
        today = now.astimezone(IST).date()
        start = (first_day or today).isoformat()
        if client is None:
            return "no market-data account to read the legs' history from"
        # Once a minute of today's session has closed, each leg must have it: yesterday's close carried
        # over a gap in the broker's history would make a jump (and a false flip) at the entry.
        session_started = now >= datetime.combine(today, SESSION_OPEN, IST) + timedelta(minutes=1)
        legs = []
        for symbol, exchange in self.legs:
            try:
                rows = client.history(symbol, exchange, "1m", start, today.isoformat())
            except BrokerError as exc:
                return f"no 1-minute history for {symbol}: {exc}"
            if not rows:
                return f"no 1-minute history for {symbol} since {start}"
            if session_started and not any(row.start.astimezone(IST).date() == today for row in rows):
                return f"no 1-minute history for {symbol} today"
            legs.append(rows)
        return legs

    def apply_history(self, fetched: list[list[HistoryCandle]] | str, now: datetime) -> str | None:
        """Take what `fetch` read: None when loaded, else the problem (kept in `error`)."""
        if isinstance(fetched, str):
            self.error = fetched
            return fetched
        with self._lock:
            for n, rows in enumerate(fetched):
                for row in rows:
                    if row.start < now:
                        self.candles.add_close(n, row.start, row.close)
        self.loaded, self.error = True, None
        logger.info("run %s: Supertrend history loaded for %d legs", self.run_id, len(self.legs))
        return None

    def load(self, client: OpenAlgoClient | None, now: datetime, first_day: date | None = None) -> str | None:
        """Fetch and apply in one go (when due); the problem in words, or None."""
        if not self.due():
            return None
        return self.apply_history(self.fetch(client, now, first_day), now)

    def chart(self, limit: int = 150) -> dict[str, object] | None:
        """The last closed candles with their Supertrend line and direction, for the run page."""
        if self.last is None:
            return None
        candles, line, direction = self.last
        start = max(0, len(candles) - limit)
        return {"timeframe": self.settings.timeframe.value, "candles": [
            {"time": int(c.start.timestamp()), "open": str(c.open), "high": str(c.high), "low": str(c.low),
             "close": str(c.close), "line": None if np.isnan(line[k]) else round(float(line[k]), 2),
             "direction": int(direction[k])} for k, c in enumerate(candles[start:], start=start)]}

    def on_price(self, symbol: str, exchange: str, moment: datetime, price: Decimal) -> None:
        key = (symbol.upper(), exchange.upper())
        for n, leg in enumerate(self.legs):
            if leg == key:
                with self._lock:
                    self.candles.add_close(n, moment, price)

    def evaluate(self, now: datetime) -> Decision | None:
        """On a new closed candle: the exit decision when the trend flipped since entry, else None."""
        if not self.loaded or self.fired:
            return None
        with self._lock:
            candles = self.candles.candles(now)
        if not candles or candles[-1].end == self.last_end:
            return None
        self.last_end = candles[-1].end
        s = self.settings
        high = np.array([float(c.high) for c in candles])
        low = np.array([float(c.low) for c in candles])
        close = np.array([float(c.close) for c in candles])
        line, direction = supertrend(high, low, close, s.period, float(s.multiplier))
        self.last = (candles, line, direction)
        entry = entry_candle_index(candles, self.entered_at)
        flip = supertrend_flip(direction.tolist(), entry, s.exit)
        if flip is None:  # (a flip on an earlier candle counts too: e.g. a new leader catching up)
            return None
        self.fired = True
        trend = "bullish (net premium rising)" if direction[flip] == 1 else "bearish (net premium falling)"
        at = candles[flip].end.astimezone(IST).strftime("%H:%M")
        return Decision(RiskEventType.SUPERTREND, s.action,
                        f"Supertrend {s.period}, {s.multiplier} on {s.timeframe.value}: the trend turned {trend} "
                        f"on the candle that closed at {at} IST ({s.exit.value} exit)",
                        Decimal(str(round(float(line[flip]), 2))), Decimal(str(round(float(close[flip]), 2))))


def supertrend_scope(decision: Decision, positions: list[AccountPosition]) -> ScopedDecision:
    """The Supertrend decision applied to its run: the series is the whole strategy's, so close_all
    closes every account, close_partial each account's losing legs."""
    accounts = tuple(p.account_id for p in positions if p.is_open)
    close_all = decision.action is RiskAction.CLOSE_ALL
    losing = () if close_all else tuple(LegToClose(p.account_id, leg.leg_number) for p in positions
                                        for leg in p.legs if leg.open_quantity and leg_pnl(leg).total < 0)
    return ScopedDecision(decision, None, accounts, close_all, losing, None, True)
