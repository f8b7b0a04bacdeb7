"""One-minute candles of each spot price path: seeded backfill of past sessions plus live ticks.

Every interval served by /history is aggregated from these minutes, and live minutes are built
from the very ticks the market publishes, so history and ticks agree.
"""

from __future__ import annotations

import math
import zlib
from datetime import UTC, date, datetime, timedelta

import numpy as np

from paperbroker import nse_calendar as cal
from paperbroker.pricing import round_tick

TRADING_SECONDS_PER_YEAR = 252 * 375 * 60
Candle = tuple[int, float, float, float, float, int]


def stable_seed(*parts: object) -> int:
    """A process-independent seed (Python's str hash is salted per process)."""
    return zlib.crc32(":".join(map(str, parts)).encode())


def session_minutes(days: list[date], until: float) -> list[int]:
    """Epoch seconds of every session minute on ``days`` that starts before ``until``."""
    out: list[int] = []
    for d in days:
        open_, close = cal.session_bounds(d)
        t = int(open_.timestamp())
        end = min(int(close.timestamp()), int(until // 60 * 60))
        out.extend(range(t, end, 60))
    return out


class CandleStore:
    """Minute candles per spot name. Backfill is generated lazily and ends exactly at the anchor price."""

    def __init__(self, seed: int, backfill_days: int, anchor_epoch: float,
                 anchor_prices: dict[str, float], vols: dict[str, float]) -> None:
        self.seed = seed
        self.backfill_days = backfill_days
        self.anchor_epoch = anchor_epoch
        self.anchor_prices = dict(anchor_prices)
        self.vols = vols
        self._backfill: dict[str, np.ndarray] = {}
        self.live: dict[str, dict[int, list[float]]] = {name: {} for name in anchor_prices}
        self.dirty: set[tuple[str, int]] = set()

    def _generate(self, name: str) -> np.ndarray:
        anchor_day = datetime.fromtimestamp(self.anchor_epoch, cal.IST).date()
        days = cal.trading_days_before(anchor_day, self.backfill_days)
        if cal.is_trading_day(anchor_day):
            days.append(anchor_day)
        minutes = session_minutes(days, self.anchor_epoch)
        n = len(minutes)
        arr = np.zeros((n, 6))
        if n == 0:
            return arr
        rng = np.random.default_rng(stable_seed(self.seed, "backfill", name))
        sigma = self.vols[name] * math.sqrt(60 / TRADING_SECONDS_PER_YEAR)
        z = rng.standard_normal(n)
        ts = np.asarray(minutes, dtype=np.int64)
        gaps = np.ones(n)
        gaps[1:][np.diff(ts) > 60] = 4.0  # overnight moves are larger than a minute's
        gaps[0] = 4.0
        rets = z * sigma * gaps
        cum = np.cumsum(rets)
        closes = self.anchor_prices[name] * np.exp(cum - cum[-1])
        opens = closes / np.exp(np.where(gaps > 1, rets * 0.25, rets))  # gaps happen at the open
        wick = np.abs(rng.standard_normal((2, n))) * sigma * 0.6
        highs = np.maximum(opens, closes) * np.exp(wick[0])
        lows = np.minimum(opens, closes) * np.exp(-wick[1])
        vols = rng.lognormal(mean=8.0, sigma=0.6, size=n).astype(np.int64)
        tick = 0.05
        for col, values in ((1, opens), (2, highs), (3, lows), (4, closes)):
            arr[:, col] = np.round(values / tick) * tick
        arr[:, 0] = ts
        arr[:, 5] = vols
        arr[-1, 4] = round_tick(self.anchor_prices[name])
        arr[:, 2] = np.maximum(arr[:, 2], np.maximum(arr[:, 1], arr[:, 4]))
        arr[:, 3] = np.minimum(arr[:, 3], np.minimum(arr[:, 1], arr[:, 4]))
        return arr

    def backfill(self, name: str) -> np.ndarray:
        arr = self._backfill.get(name)
        if arr is None:
            arr = self._backfill[name] = self._generate(name)
        return arr

    def record(self, name: str, epoch: float, price: float, qty: int) -> None:
        """Fold one tick into its minute candle."""
        minute = int(epoch // 60 * 60)
        book = self.live[name]
        c = book.get(minute)
        if c is None:
            book[minute] = [price, price, price, price, float(qty)]
        else:
            if price > c[1]:
                c[1] = price
            if price < c[2]:
                c[2] = price
            c[3] = price
            c[4] += qty
        self.dirty.add((name, minute))

    def minutes(self, name: str, start: float, end: float) -> list[Candle]:
        """Minute candles with start ≤ ts < end, oldest first; live minutes override backfill."""
        arr = self.backfill(name)
        merged: dict[int, Candle] = {}
        if len(arr):
            ts = arr[:, 0]
            lo, hi = np.searchsorted(ts, start, "left"), np.searchsorted(ts, end, "left")
            for row in arr[lo:hi].tolist():
                merged[int(row[0])] = (int(row[0]), row[1], row[2], row[3], row[4], int(row[5]))
        for minute, c in self.live[name].items():
            if start <= minute < end:
                merged[minute] = (minute, c[0], c[1], c[2], c[3], int(c[4]))
        return [merged[k] for k in sorted(merged)]

    def day_stats(self, name: str, day: date) -> tuple[float, float, float, int] | None:
        """(open, high, low, volume) of the IST calendar day, or None when it has no candles."""
        start = datetime(day.year, day.month, day.day, tzinfo=cal.IST).timestamp()
        rows = self.minutes(name, start, start + 86400)
        if not rows:
            return None
        return rows[0][1], max(r[2] for r in rows), min(r[3] for r in rows), sum(r[5] for r in rows)

    def prev_close(self, name: str, day: date) -> float | None:
        """The last close before the IST day ``day``."""
        start = datetime(day.year, day.month, day.day, tzinfo=cal.IST).timestamp()
        arr = self.backfill(name)
        best_ts, best = -1, None
        if len(arr):
            i = int(np.searchsorted(arr[:, 0], start, "left")) - 1
            if i >= 0:
                best_ts, best = int(arr[i, 0]), float(arr[i, 4])
        for minute, c in self.live[name].items():
            if best_ts < minute < start:
                best_ts, best = minute, c[3]
        return best


def daily_epoch(d: date) -> int:
    """Daily candles carry the IST date at 00:00 expressed as UTC."""
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


def week_start(d: date) -> date:
    return d - timedelta(days=d.weekday())
