"""A strategy's net premium per unit as candles, for its Supertrend exit (DOMAIN.md "Supertrend").

The series is Σ over legs of (+1 for SELL, −1 for BUY) × lots × price, built from each leg's
1-minute closes (history, then live prices) and aggregated to the strategy's timeframe: open = the
first minute's value, high = the highest, low = the lowest, close = the last. Pure: times are
passed in, nothing reads a clock or the network.

Decisions (DOMAIN.md is silent on them):
- a minute counts only once every leg has had a price; after that a leg without a close in some
  minute carries its last close forward (an illiquid strike did not trade, it did not vanish);
- only minutes of the regular session make candles (09:15 ≤ minute < 15:30 IST), as TradingView
  draws NSE charts; a pre-open price still counts as a leg's last close for the carry-forward.
  (A special evening session such as Muhurat trading therefore makes no candles.)
- buckets are aligned to the session open, 09:15 IST, each day (a 5-minute candle covers
  09:15–09:20, 09:20–09:25, …; the hour candle 09:15–10:15), and the last bucket of the session
  ends at the close, 15:30 IST (the hour candle from 15:15 closes at 15:30, not at 16:15);
- a candle is closed once `now` is at or past its end; only closed candles are used for exits. A
  price that arrives after its minute's candle closed still changes that candle (the next
  evaluation sees it), but a decision already taken on the candle stands;
- an exit counts flips from the entry's candle on: the candle in progress at entry closes after
  it, so its trend is news. The trend at entry is the one of the last candle closed by then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np

from app.domain.instruments import Action
from app.domain.strategy_settings import MARKET_CLOSE, MARKET_OPEN, SupertrendExit, SupertrendTimeframe

IST = ZoneInfo("Asia/Kolkata")
SESSION_OPEN = MARKET_OPEN
SESSION_CLOSE = MARKET_CLOSE
TIMEFRAME_MINUTES: dict[SupertrendTimeframe, int] = {
    SupertrendTimeframe.M1: 1, SupertrendTimeframe.M3: 3, SupertrendTimeframe.M5: 5, SupertrendTimeframe.M10: 10,
    SupertrendTimeframe.M15: 15, SupertrendTimeframe.M30: 30, SupertrendTimeframe.H1: 60}
SESSION_MINUTES = 375  # 09:15–15:30
WARMUP_PERIODS = 3  # closed candles behind the first decision of the day, in Supertrend periods
MAX_WARMUP_SESSIONS = 5


def warmup_sessions(period: int, timeframe: SupertrendTimeframe) -> int:
    """How many trading sessions before today a run's series starts, so that at the open its
    Supertrend already has WARMUP_PERIODS × period closed candles behind it, as on a TradingView
    chart, instead of being undefined for the first period candles (at least 1, at most 5).
    A session has ceil(375 / minutes) candles (the last one is cut at the close)."""
    if period < 1:
        raise ValueError(f"period must be >= 1, got {period}")
    per_session = -(-SESSION_MINUTES // TIMEFRAME_MINUTES[SupertrendTimeframe(timeframe)])
    return min(MAX_WARMUP_SESSIONS, max(1, -(-WARMUP_PERIODS * period // per_session)))


def sessions_back(today: date, sessions: int, is_trading_day: Callable[[date], bool]) -> date:
    """The first day of the `sessions` trading days before `today` (holidays and weekends skipped;
    looks back at most 7 days per session, and gives the earliest day looked at when the calendar
    has fewer trading days there: a calendar without sessions must not ask for months of minutes)."""
    day, found = today, 0
    for _ in range(7 * max(1, sessions)):
        if found == sessions:
            break
        day -= timedelta(days=1)
        if is_trading_day(day):
            found += 1
    return day


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
    """The start of the minute holding `moment` (aware). Raises ValueError for a naive time."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("times must be timezone-aware")
    return moment.replace(second=0, microsecond=0)


def net_premium_minutes(legs: Sequence[PremiumLeg], closes: Sequence[Mapping[datetime, Decimal]]
                        ) -> list[tuple[datetime, Decimal]]:
    """The net premium per minute, in time order, from each leg's closes keyed by minute start.

    A minute appears once every leg has had a close at or before it; a leg without a close in that
    minute contributes its last earlier close. Raises ValueError unless there is one series per leg.
    """
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
    """The start of the timeframe's bucket holding `minute`, aligned to 09:15 IST of its day (in
    `minute`'s time zone). Minutes before 09:15 fall in buckets counted back from 09:15."""
    local = minute.astimezone(IST)
    session = local.replace(hour=SESSION_OPEN.hour, minute=SESSION_OPEN.minute, second=0, microsecond=0)
    size = TIMEFRAME_MINUTES[SupertrendTimeframe(timeframe)]
    offset = int((local - session).total_seconds() // 60)
    start = session + timedelta(minutes=(offset // size) * size)  # floor division: before 09:15 too
    return start.astimezone(minute.tzinfo)


def bucket_end(start: datetime, timeframe: SupertrendTimeframe) -> datetime:
    """The end of the bucket that starts at `start`: start + timeframe, cut at 15:30 IST when the
    bucket starts inside the session and would run past its close."""
    end = start + timedelta(minutes=TIMEFRAME_MINUTES[SupertrendTimeframe(timeframe)])
    local = start.astimezone(IST)
    close = local.replace(hour=SESSION_CLOSE.hour, minute=SESSION_CLOSE.minute, second=0, microsecond=0)
    return close.astimezone(start.tzinfo) if local < close < end else end


def in_session(minute: datetime) -> bool:
    """Whether the minute starting at `minute` lies in the regular session (09:15 ≤ t < 15:30 IST)."""
    return SESSION_OPEN <= minute.astimezone(IST).time() < SESSION_CLOSE


def aggregate(minutes: Iterable[tuple[datetime, Decimal]], timeframe: SupertrendTimeframe) -> list[Candle]:
    """Candles of the timeframe from per-minute values (in time order); minutes outside the
    regular session are left out."""
    candles: list[Candle] = []
    for minute, value in minutes:
        if not in_session(minute):
            continue
        start = bucket_start(minute, timeframe)
        if candles and candles[-1].start == start:
            c = candles[-1]
            candles[-1] = Candle(c.start, c.end, c.open, max(c.high, value), min(c.low, value), value)
        else:
            candles.append(Candle(start, bucket_end(start, timeframe), value, value, value, value))
    return candles


def closed(candles: Iterable[Candle], now: datetime) -> list[Candle]:
    """Only the candles that have ended at `now`."""
    return [c for c in candles if c.end <= now]


def candle_arrays(candles: Sequence[Candle]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """High, low and close as float64 arrays, the Supertrend kernel's input (prices convert at this
    boundary; the kernel's results are compared, never summed into money)."""
    return (np.array([float(c.high) for c in candles], dtype=np.float64),
            np.array([float(c.low) for c in candles], dtype=np.float64),
            np.array([float(c.close) for c in candles], dtype=np.float64))


@dataclass
class PremiumCandles:
    """A run's net premium, fed with 1-minute history and live leg prices; yields closed candles.

    `add_close(leg, moment, price)` records a leg's close of the minute holding `moment` (history,
    or the latest live price of the current minute, which later prices of that minute replace).
    `candles(now)` is cheap between candle closes: the closed candles are rebuilt only when a
    bucket has closed since the last call or a price arrived for a bucket that is closed by now.
    Add prices through `add_close` only (it keeps that cache honest).
    """

    legs: Sequence[PremiumLeg]
    timeframe: SupertrendTimeframe
    closes: list[dict[datetime, Decimal]] = field(default_factory=list)
    _closed: list[Candle] | None = field(default=None, init=False, repr=False)
    _built_at: datetime | None = field(default=None, init=False, repr=False)
    _valid_until: datetime | None = field(default=None, init=False, repr=False)  # None: no end in sight

    def __post_init__(self) -> None:
        if not self.closes:
            self.closes = [{} for _ in self.legs]
        elif len(self.closes) != len(self.legs):
            raise ValueError("one close series per leg")

    def add_close(self, leg: int, moment: datetime, price: Decimal) -> None:
        minute = minute_of(moment)
        self.closes[leg][minute] = price
        end = bucket_end(bucket_start(minute, self.timeframe), self.timeframe)
        if self._valid_until is None or end < self._valid_until:
            self._valid_until = end  # that bucket's candle must be rebuilt once it has closed

    def candles(self, now: datetime) -> list[Candle]:
        """The candles closed at `now`, oldest first."""
        if self._closed is not None and self._built_at is not None and self._built_at <= now \
                and (self._valid_until is None or now < self._valid_until):
            return list(self._closed)
        everything = aggregate(net_premium_minutes(self.legs, self.closes), self.timeframe)
        self._closed, self._built_at = closed(everything, now), now
        self._valid_until = min((c.end for c in everything if c.end > now), default=None)
        return list(self._closed)


def entry_candle_index(candles: Sequence[Candle], entered_at: datetime) -> int:
    """The index of the entry's candle: the first candle that ends after `entered_at` (the one in
    progress at entry, or the first one after a gap); len(candles) when every candle ended by then."""
    return next((k for k, c in enumerate(candles) if c.end > entered_at), len(candles))


def supertrend_flip(directions: Sequence[int], since: int, exit_type: SupertrendExit) -> int | None:
    """The first candle from `since` (the entry's candle, see `entry_candle_index`) on whose close the
    trend flips the exit's way, or None.

    Breakout exits on a flip to bullish (+1: the net premium rising), breakdown on a flip to bearish
    (−1). A flip is a candle whose direction is the target while the previous candle's was the
    opposite (undefined, 0, is neither: the first defined candle is no flip). The candle before
    `since` closed by the entry, so a trend that already pointed the target way then, and stays so,
    is no flip; a flip on the entry's own candle is one (that candle closed after the entry).
    """
    target = 1 if SupertrendExit(exit_type) is SupertrendExit.BREAKOUT else -1
    for k in range(max(since, 1), len(directions)):
        if directions[k] == target and directions[k - 1] == -target:
            return k
    return None


def supertrend_exit_decision(directions: Sequence[int], entry: int | datetime, exit_type: SupertrendExit,
                             candles: Sequence[Candle] | None = None) -> bool:
    """Whether the Supertrend exit fires on these closed candles.

    Args:
        directions: the kernel's direction per closed candle (+1, −1, 0).
        entry: the entry's candle index, or the entry time (then `candles`, the same closed candles,
            locate it with `entry_candle_index`).
        exit_type: breakout or breakdown.
    Returns:
        True when the trend flipped the exit's way on a candle from the entry's candle on. Evaluated
        on every candle close, that flip is the last closed candle; an earlier flip counts too, so a
        monitor that missed a close (a restart, a new leader) still exits instead of never.
    Raises:
        ValueError: an entry time without the candles.
    """
    if isinstance(entry, datetime):
        if candles is None:
            raise ValueError("an entry time needs the candles to find the entry's candle")
        entry = entry_candle_index(candles, entry)
    return supertrend_flip(directions, entry, exit_type) is not None
