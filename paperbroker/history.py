"""OHLCV history for /history: minute candles of the price path, aggregated to any interval."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from paperbroker import nse_calendar as cal
from paperbroker.candles import Candle, daily_epoch, stable_seed, week_start
from paperbroker.instruments import Instrument
from paperbroker.market import Market
from paperbroker.pricing import round_tick

INTRADAY_SECONDS = {
    "1m": 60, "2m": 120, "3m": 180, "5m": 300, "10m": 600, "15m": 900, "20m": 1200, "30m": 1800,
    "1h": 3600, "2h": 7200, "3h": 10800, "4h": 14400,
}
SUPPORTED = {
    "seconds": [], "minutes": ["1m", "2m", "3m", "5m", "10m", "15m", "20m", "30m"],
    "hours": ["1h", "2h", "3h", "4h"], "days": ["D"], "weeks": ["W"], "months": ["M"],
}
SCHEMA_INTERVALS = [
    "1s", "5s", "10s", "15s", "30s", "45s", "1m", "2m", "3m", "5m", "10m", "15m", "20m", "30m",
    "1h", "2h", "3h", "4h", "D", "W", "M", "Q", "Y",
]


def is_supported(interval: str) -> bool:
    return interval in INTRADAY_SECONDS or interval in ("D", "W", "M")


def _derive(market: Market, inst: Instrument, rows: list[Candle]) -> list[Candle]:
    """Price a derivative's candles from its underlying's candles at each candle's time."""
    if inst.expiry is None:
        return rows
    out: list[Candle] = []
    factor = 0.3 + (stable_seed(inst.symbol) % 1000) / 400.0
    tick = inst.tick_size
    cutoff = datetime.combine(inst.expiry, cal.EXPIRY_CUTOFF, cal.IST).timestamp()
    for ts, o, h, lo, c, v in rows:
        if ts >= cutoff:
            break
        at = ts + 59
        po, ph, pl, pc = (max(round_tick(market.theoretical(inst, x, at), tick), tick) for x in (o, h, lo, c))
        if inst.instrumenttype == "PE":
            ph, pl = pl, ph
        out.append((ts, po, max(ph, po, pc), min(pl, po, pc), pc, int(v * factor)))
    return out


def _bucket_key(ts: int, interval: str) -> int:
    ist = datetime.fromtimestamp(ts, cal.IST)
    if interval in INTRADAY_SECONDS:
        size = INTRADAY_SECONDS[interval]
        anchor = int(datetime.combine(ist.date(), cal.SESSION_OPEN, cal.IST).timestamp())
        return anchor + ((ts - anchor) // size) * size
    d = ist.date()
    if interval == "W":
        d = week_start(d)
    elif interval == "M":
        d = d.replace(day=1)
    return daily_epoch(d)


def aggregate(rows: list[Candle], interval: str) -> list[dict[str, float | int]]:
    """Group minute candles into ``interval`` buckets (first open, max high, min low, last close)."""
    buckets: dict[int, list[float]] = {}
    for ts, o, h, lo, c, v in rows:
        key = _bucket_key(ts, interval)
        b = buckets.get(key)
        if b is None:
            buckets[key] = [o, h, lo, c, v]
        else:
            b[1] = max(b[1], h)
            b[2] = min(b[2], lo)
            b[3] = c
            b[4] += v
    return [
        {"timestamp": k, "open": round(b[0], 2), "high": round(b[1], 2), "low": round(b[2], 2),
         "close": round(b[3], 2), "volume": int(b[4]), "oi": 0}
        for k, b in sorted(buckets.items())
    ]


def history(market: Market, inst: Instrument, interval: str, start: date, end: date) -> list[dict[str, float | int]]:
    """Candles of ``inst`` from IST ``start`` to ``end`` inclusive, up to the simulated now."""
    lo = datetime.combine(start, datetime.min.time(), cal.IST).timestamp()
    hi = datetime.combine(end + timedelta(days=1), datetime.min.time(), cal.IST).timestamp()
    hi = min(hi, market.clock.epoch() + 60)
    rows = market.candles.minutes(inst.name, lo, hi)
    rows = _derive(market, inst, rows)
    data = aggregate(rows, interval)
    if inst.expiry is not None:
        oi = market.open_interest(inst)
        for row in data:
            row["oi"] = oi
    return data
