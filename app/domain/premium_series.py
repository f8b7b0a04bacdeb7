"""A strategy's net premium per unit as candles, for its Supertrend exit (DOMAIN.md "Supertrend").

The series is Σ over legs of (+1 for SELL, −1 for BUY) × lots × price, built from each leg's
1-minute closes (history, then live prices) and aggregated to the strategy's timeframe: open = the
first minute's value, high = the highest, low = the lowest, close = the last. Pure: times are
passed in, nothing reads a clock or the network.

Decisions (DOMAIN.md is silent on them):
- a minute counts only once every leg has had a price; after that a leg without a close in some
  minute carries its last close forward (an illiquid strike did not trade, it did not vanish);
- buckets are aligned to the NSE session open, 09:15 IST, each day (a 5-minute candle covers
  09:15–09:20, 09:20–09:25, …; the hour candle 09:15–10:15), as exchanges and TradingView draw them;
- a candle is closed once `now` is at or past its end; only closed candles are used for exits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from app.domain.instruments import Action
from app.domain.strategy_settings import SupertrendExit, SupertrendTimeframe

IST = ZoneInfo("Asia/Kolkata")
SESSION_OPEN = time(9, 15)
MINUTE = timedelta(minutes=1)
TIMEFRAME_MINUTES: dict[SupertrendTimeframe, int] = {
    SupertrendTimeframe.M1: 1, SupertrendTimeframe.M3: 3, SupertrendTimeframe.M5: 5, SupertrendTimeframe.M10: 10,
    SupertrendTimeframe.M15: 15, SupertrendTimeframe.M30: 30, SupertrendTimeframe.H1: 60}


@dataclass(frozen=True)
class PremiumLeg:
    """A leg's weight in the net premium: +lots for SELL, −lots for BUY."""

    action: Action
    lots: int

    @property
    def weight(self) -> int:
        return self.lots if Action(self.action) is Action.SELL else -self.lots


@dataclass(frozen=True)
class Candle:
    start: datetime  # aware
    end: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


def minute_of(moment: datetime) -> datetime:
    """The start of the minute holding `moment` (aware)."""
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.replace(second=0, microsecond=0)


def net_premium_minutes(legs: Sequence[PremiumLeg], closes: Sequence[Mapping[datetime, Decimal]]
                        ) -> list[tuple[datetime, Decimal]]:
    """The net premium per minute from each leg's closes by minute start (see the module doc)."""
    if len(legs) != len(closes):
        raise ValueError("one close series per leg")
    minutes = sorted({m for series in closes for m in series})
    last: list[Decimal | None] = [None] * len(legs)
    out = []
    for minute in minutes:
        for n, series in enumerate(closes):
            if minute in series:
                last[n] = series[minute]
        if any(price is None for price in last):
            continue  # not every leg has had a price yet
        out.append((minute, sum((leg.weight * price for leg, price in zip(legs, last, strict=True)
                                 if price is not None), Decimal(0))))
    return out


def bucket_start(minute: datetime, timeframe: SupertrendTimeframe) -> datetime:
    """The start of the timeframe's bucket holding `minute`, aligned to 09:15 IST of its day."""
    local = minute.astimezone(IST)
    session = local.replace(hour=SESSION_OPEN.hour, minute=SESSION_OPEN.minute, second=0, microsecond=0)
    size = TIMEFRAME_MINUTES[SupertrendTimeframe(timeframe)]
    offset = int((local - session).total_seconds() // 60)
    start = session + timedelta(minutes=(offset // size) * size)  # floor division: before 09:15 too
    return start.astimezone(minute.tzinfo)


def aggregate(minutes: Iterable[tuple[datetime, Decimal]], timeframe: SupertrendTimeframe) -> list[Candle]:
    """Candles of the timeframe from per-minute values (in time order)."""
    size = timedelta(minutes=TIMEFRAME_MINUTES[SupertrendTimeframe(timeframe)])
    candles: list[Candle] = []
    for minute, value in minutes:
        start = bucket_start(minute, timeframe)
        if candles and candles[-1].start == start:
            c = candles[-1]
            candles[-1] = Candle(c.start, c.end, c.open, max(c.high, value), min(c.low, value), value)
        else:
            candles.append(Candle(start, start + size, value, value, value, value))
    return candles


def closed(candles: Iterable[Candle], now: datetime) -> list[Candle]:
    """Only the candles that have ended at `now`."""
    return [c for c in candles if c.end <= now]


@dataclass
class PremiumCandles:
    """A run's net premium, fed with 1-minute history and live leg prices; yields closed candles.

    `add_close(leg, minute, price)` records a leg's close of a minute (history, or the latest live
    price of the current minute, which later prices of that minute replace).
    """

    legs: Sequence[PremiumLeg]
    timeframe: SupertrendTimeframe
    closes: list[dict[datetime, Decimal]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.closes:
            self.closes = [{} for _ in self.legs]

    def add_close(self, leg: int, moment: datetime, price: Decimal) -> None:
        self.closes[leg][minute_of(moment)] = price

    def candles(self, now: datetime) -> list[Candle]:
        return closed(aggregate(net_premium_minutes(self.legs, self.closes), self.timeframe), now)


def supertrend_flip(directions: Sequence[int], since: int, exit_type: SupertrendExit) -> int | None:
    """The first candle after `since` (the entry's candle) where the trend flips the exit's way.

    Breakout exits on a flip to bullish (+1: the net premium rising), breakdown on a flip to bearish
    (−1). A flip is a candle whose direction is the target while the previous candle's was the
    opposite; a trend that already pointed the target way at entry and stays so is no flip.
    Returns its index, or None.
    """
    target = 1 if SupertrendExit(exit_type) is SupertrendExit.BREAKOUT else -1
    for k in range(max(since + 1, 1), len(directions)):
        if directions[k] == target and directions[k - 1] == -target:
            return k
    return None
