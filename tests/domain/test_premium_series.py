"""The net premium series of a strategy: per-minute values from leg closes, aggregation to the
timeframe aligned to 09:15 IST, closed candles only, and the breakout / breakdown flip."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import numpy as np
import pytest

from app.domain.instruments import Action
from app.domain.premium_series import (
    IST,
    Candle,
    PremiumCandles,
    PremiumLeg,
    aggregate,
    bucket_end,
    bucket_start,
    candle_arrays,
    closed,
    entry_candle_index,
    net_premium_minutes,
    sessions_back,
    supertrend_exit_decision,
    supertrend_flip,
    warmup_sessions,
)
from app.domain.strategy_settings import SupertrendExit
from app.domain.strategy_settings import SupertrendTimeframe as TF
from app.indicators.supertrend import supertrend

BREAKOUT, BREAKDOWN = SupertrendExit.BREAKOUT, SupertrendExit.BREAKDOWN


def at(hh: int, mm: int, ss: int = 0, day: int = 5) -> datetime:
    return datetime(2026, 1, day, hh, mm, ss, tzinfo=IST)


def minutes_from(start: datetime, values) -> list[tuple[datetime, D]]:
    return [(start + timedelta(minutes=k), D(v)) for k, v in enumerate(values)]


STRADDLE = [PremiumLeg(Action.SELL, 1), PremiumLeg(Action.SELL, 1)]  # short CE + short PE

# Rising, then falling, then rising again (candles 0-17); with period 3, multiplier 1 and bars of
# close ± 1 the kernel gives the directions below: bullish from 4, bearish from 9, bullish from 15.
SCRIPT = [100, 101, 102, 104, 106, 108, 110, 112, 111, 109, 104, 98, 92, 90, 91, 95, 101, 108]
SCRIPT_DIRECTIONS = [0, 0, -1, -1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, 1, 1, 1]


def test_net_premium_weights_sells_plus_and_buys_minus_by_lots():
    legs = [PremiumLeg(Action.SELL, 2), PremiumLeg(Action.BUY, 1)]
    closes = [{at(9, 15): D("100"), at(9, 16): D("101")}, {at(9, 15): D("40"), at(9, 16): D("39.5")}]
    assert net_premium_minutes(legs, closes) == [(at(9, 15), D("160")), (at(9, 16), D("162.5"))]


def test_a_minute_counts_once_every_leg_has_a_price_then_carries_forward():
    closes = [{at(9, 15): D("100"), at(9, 16): D("102"), at(9, 17): D("103")},
              {at(9, 16): D("50")}]  # the second leg first trades at 09:16, then not again
    assert net_premium_minutes(STRADDLE, closes) == [(at(9, 16), D("152")), (at(9, 17), D("153"))]


@pytest.mark.parametrize(("minute", "timeframe", "start"), [
    (at(9, 15), TF.M1, at(9, 15)), (at(9, 15), TF.M5, at(9, 15)), (at(9, 19), TF.M5, at(9, 15)),
    (at(9, 20), TF.M5, at(9, 20)), (at(9, 44), TF.M30, at(9, 15)), (at(9, 45), TF.M30, at(9, 45)),
    (at(10, 14), TF.H1, at(9, 15)), (at(10, 15), TF.H1, at(10, 15)), (at(9, 17), TF.M3, at(9, 15)),
    (at(9, 18), TF.M3, at(9, 18)), (at(9, 34), TF.M10, at(9, 25)), (at(9, 10), TF.M5, at(9, 10)),
    (at(15, 29), TF.M15, at(15, 15)), (at(15, 29), TF.H1, at(15, 15))])
def test_buckets_are_aligned_to_the_session_open(minute, timeframe, start):
    assert bucket_start(minute, timeframe) == start
    assert bucket_start(minute.astimezone(UTC), timeframe) == start  # the same instant from UTC


@pytest.mark.parametrize(("start", "timeframe", "end"), [
    (at(9, 15), TF.M5, at(9, 20)), (at(14, 15), TF.H1, at(15, 15)), (at(15, 15), TF.H1, at(15, 30)),
    (at(15, 15), TF.M30, at(15, 30)), (at(15, 25), TF.M10, at(15, 30)), (at(15, 15), TF.M15, at(15, 30)),
    (at(15, 27), TF.M3, at(15, 30)), (at(15, 29), TF.M1, at(15, 30))])
def test_the_last_bucket_of_the_session_ends_at_the_close(start, timeframe, end):
    assert bucket_end(start, timeframe) == end
    assert bucket_end(start.astimezone(UTC), timeframe) == end


def test_aggregation_takes_first_highest_lowest_last():
    minutes = minutes_from(at(9, 15), ["100", "104", "97", "99", "101", "105"])
    assert aggregate(minutes, TF.M5) == [
        Candle(at(9, 15), at(9, 20), D("100"), D("104"), D("97"), D("101")),
        Candle(at(9, 20), at(9, 25), D("105"), D("105"), D("105"), D("105"))]


def test_aggregation_to_the_hour_across_the_close_and_days():
    minutes = (minutes_from(at(9, 5), ["1", "2"])  # pre-open: no candle
               + minutes_from(at(15, 14), ["10", "11", "9", "12"])  # 15:14 | 15:15 15:16 15:17
               + minutes_from(at(15, 30), ["99"])  # after the close: no candle
               + minutes_from(at(9, 15, day=6), ["20", "21"]))
    assert aggregate(minutes, TF.H1) == [
        Candle(at(14, 15), at(15, 15), D("10"), D("10"), D("10"), D("10")),
        Candle(at(15, 15), at(15, 30), D("11"), D("12"), D("9"), D("12")),
        Candle(at(9, 15, day=6), at(10, 15, day=6), D("20"), D("21"), D("20"), D("21"))]


def test_from_two_legs_one_minute_candles_to_five_minute_candles():
    # A SELL 2 lots CE and a BUY 1 lot CE hedge; the hedge has no trade at 09:17 (carried forward).
    sell = {at(9, 15) + timedelta(minutes=k): D(p) for k, p in enumerate(["50", "52", "55", "51", "49", "47"])}
    hedge = {at(9, 15) + timedelta(minutes=k): D(p) for k, p in enumerate(["10", "11", "", "9", "8", "7"]) if p}
    feed = PremiumCandles([PremiumLeg(Action.SELL, 2), PremiumLeg(Action.BUY, 1)], TF.M5)
    for leg, series in enumerate((sell, hedge)):
        for minute, price in series.items():
            feed.add_close(leg, minute + timedelta(seconds=59), price)
    # net per minute: 90, 93, 99 (110 − 11), 93, 90 | 87
    assert feed.candles(at(9, 20)) == [Candle(at(9, 15), at(9, 20), D(90), D(99), D(90), D(90))]
    assert feed.candles(at(9, 25)) == [Candle(at(9, 15), at(9, 20), D(90), D(99), D(90), D(90)),
                                       Candle(at(9, 20), at(9, 25), D(87), D(87), D(87), D(87))]
    high, low, close = candle_arrays(feed.candles(at(9, 25)))
    assert high.dtype == np.float64 and high.tolist() == [99.0, 87.0] and low.tolist() == [90.0, 87.0]
    assert close.tolist() == [90.0, 87.0]


def test_only_closed_candles_are_used():
    minutes = minutes_from(at(9, 15), [100 + k for k in range(12)])  # 09:15 … 09:26
    candles = aggregate(minutes, TF.M5)
    assert [c.start for c in closed(candles, at(9, 24, 59))] == [at(9, 15)]
    assert [c.start for c in closed(candles, at(9, 25))] == [at(9, 15), at(9, 20)]
    feed = PremiumCandles(STRADDLE, TF.M5)
    for leg in (0, 1):
        feed.add_close(leg, at(9, 15, 5), D("50"))
        feed.add_close(leg, at(9, 19, 30), D("60"))
        feed.add_close(leg, at(9, 19, 59), D("55"))  # a later price of the same minute replaces it
        feed.add_close(leg, at(9, 20, 1), D("70"))
    assert [(c.open, c.high, c.low, c.close) for c in feed.candles(at(9, 21))] == [(D(100), D(110), D(100), D(110))]
    assert feed.candles(at(9, 19, 59)) == []  # asked about an earlier moment: still only what had closed
    assert [c.start for c in feed.candles(at(9, 25))] == [at(9, 15), at(9, 20)]


def test_the_closed_candles_follow_new_prices_and_late_ones():
    feed = PremiumCandles(STRADDLE, TF.M5)
    for leg in (0, 1):
        feed.add_close(leg, at(9, 15), D("50"))
    assert feed.candles(at(9, 19)) == []
    assert [c.close for c in feed.candles(at(9, 20))] == [D(100)]
    feed.add_close(0, at(9, 21), D("60"))  # the next candle, still open
    assert [c.close for c in feed.candles(at(9, 24))] == [D(100)]
    feed.add_close(0, at(9, 19, 59), D("45"))  # a late price for the closed 09:15 candle
    assert [(c.low, c.close) for c in feed.candles(at(9, 24))] == [(D(95), D(95))]
    assert [c.close for c in feed.candles(at(9, 25))] == [D(95), D(110)]


def test_the_scripted_series_has_the_directions_the_flips_are_read_from():
    _, direction = supertrend([c + 1 for c in SCRIPT], [c - 1 for c in SCRIPT], SCRIPT, 3, 1.0)
    assert direction.tolist() == SCRIPT_DIRECTIONS


@pytest.mark.parametrize(("entry", "exit_type", "flip"), [
    (0, BREAKOUT, 4), (3, BREAKOUT, 4),  # bearish when entered, turns bullish on candle 4
    (4, BREAKOUT, 4),  # entered during candle 4: it closes bullish after the entry
    (5, BREAKOUT, 15), (6, BREAKOUT, 15),  # already bullish at entry: only the later turn counts
    (5, BREAKDOWN, 9), (9, BREAKDOWN, 9), (10, BREAKDOWN, None),  # already bearish, stays so
    (16, BREAKOUT, None), (18, BREAKOUT, None), (2, BREAKDOWN, 9)])  # undefined → bearish is no flip
def test_breakout_and_breakdown_flips_on_a_scripted_series(entry, exit_type, flip):
    assert supertrend_flip(SCRIPT_DIRECTIONS, entry, exit_type) == flip
    assert supertrend_exit_decision(SCRIPT_DIRECTIONS, entry, exit_type) is (flip is not None)


def test_the_decision_is_taken_on_each_close_from_the_entry_on():
    # The monitor sees one more closed candle each time; entered during candle 6 (already bullish).
    fired = [n for n in range(1, len(SCRIPT_DIRECTIONS) + 1)
             if supertrend_exit_decision(SCRIPT_DIRECTIONS[:n], 6, BREAKDOWN)]
    assert fired[0] == 10  # the first time 10 candles have closed, candle 9 is the bearish turn


def test_the_entry_candle_is_found_by_time_and_through_gaps():
    candles = aggregate(minutes_from(at(9, 15), range(1, 16)), TF.M5)  # 09:15, 09:20, 09:25 candles
    candles += aggregate(minutes_from(at(9, 40), [5]), TF.M5)  # a gap, then 09:40
    assert entry_candle_index(candles, at(9, 14)) == 0
    assert entry_candle_index(candles, at(9, 19, 59)) == 0
    assert entry_candle_index(candles, at(9, 20)) == 1  # the 09:15 candle closed at the entry
    assert entry_candle_index(candles, at(9, 31)) == 3  # in the gap: the next candle
    assert entry_candle_index(candles, at(9, 45)) == 4  # all ended before
    directions = [-1, -1, 1, 1]
    assert supertrend_exit_decision(directions, at(9, 22), BREAKOUT, candles) is True  # on 09:25
    assert supertrend_exit_decision(directions, at(9, 31), BREAKOUT, candles) is False  # turned before
    with pytest.raises(ValueError, match="needs the candles"):
        supertrend_exit_decision(directions, at(9, 22), BREAKOUT)


def test_naive_times_and_mismatched_legs_are_refused():
    with pytest.raises(ValueError, match="aware"):
        PremiumCandles(STRADDLE, TF.M5).add_close(0, datetime(2026, 1, 5, 9, 15), D(1))
    with pytest.raises(ValueError, match="one close series per leg"):
        net_premium_minutes(STRADDLE, [{}])
    with pytest.raises(ValueError, match="one close series per leg"):
        PremiumCandles(STRADDLE, TF.M5, [{}])


@pytest.mark.parametrize(("period", "timeframe", "sessions"), [
    (7, TF.M5, 1),  # 21 candles of 75 a session
    (2, TF.M1, 1),
    (7, TF.M30, 2),  # 21 of 13 (12 × 30 min + the cut 15 min)
    (7, TF.H1, 3),  # 21 of 7
    (10, TF.H1, 5),  # 30 of 7 → 5
    (50, TF.H1, 5),  # capped
    (125, TF.M3, 3),  # 375 of 125
    (126, TF.M3, 4),
])
def test_warmup_sessions_give_three_periods_of_closed_candles_before_the_open(period, timeframe, sessions):
    assert warmup_sessions(period, timeframe) == sessions


def test_warmup_sessions_refuse_a_period_below_one():
    with pytest.raises(ValueError, match="period must be >= 1"):
        warmup_sessions(0, TF.M5)


def test_sessions_back_skip_weekends_and_holidays():
    holidays = {date(2026, 1, 26)}  # a Monday

    def trading(day: date) -> bool:
        return day.weekday() < 5 and day not in holidays

    assert sessions_back(date(2026, 1, 27), 1, trading) == date(2026, 1, 23)  # Tue → the Friday before
    assert sessions_back(date(2026, 1, 27), 3, trading) == date(2026, 1, 21)
    assert sessions_back(date(2026, 1, 5), 1, trading) == date(2026, 1, 2)
    assert sessions_back(date(2026, 1, 5), 0, trading) == date(2026, 1, 5)
    assert sessions_back(date(2026, 1, 5), 1, lambda day: False) == date(2026, 1, 5) - timedelta(days=7)
    assert sessions_back(date(2026, 1, 5), 5, lambda day: False) == date(2026, 1, 5) - timedelta(days=35)
