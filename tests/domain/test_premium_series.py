"""The net premium series of a strategy: per-minute values from leg closes, aggregation to the
timeframe aligned to 09:15 IST, closed candles only, and the breakout / breakdown flip."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal as D

import pytest

from app.domain.instruments import Action
from app.domain.premium_series import (
    IST,
    Candle,
    PremiumCandles,
    PremiumLeg,
    aggregate,
    bucket_start,
    closed,
    net_premium_minutes,
    supertrend_flip,
)
from app.domain.strategy_settings import SupertrendExit
from app.domain.strategy_settings import SupertrendTimeframe as TF
from app.indicators.supertrend import supertrend


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2026, 1, 5, hh, mm, ss, tzinfo=IST)


STRADDLE = [PremiumLeg(Action.SELL, 1), PremiumLeg(Action.SELL, 1)]  # short CE + short PE


def test_net_premium_weights_sells_plus_and_buys_minus_by_lots():
    legs = [PremiumLeg(Action.SELL, 2), PremiumLeg(Action.BUY, 1)]
    closes = [{at(9, 15): D("100"), at(9, 16): D("101")}, {at(9, 15): D("40"), at(9, 16): D("39.5")}]
    assert net_premium_minutes(legs, closes) == [(at(9, 15), D("160")), (at(9, 16), D("162.5"))]


def test_a_minute_counts_once_every_leg_has_a_price_then_carries_forward():
    closes = [{at(9, 15): D("100"), at(9, 16): D("102"), at(9, 17): D("103")},
              {at(9, 16): D("50")}]  # the second leg first trades at 09:16, then not again
    assert net_premium_minutes(STRADDLE, closes) == [(at(9, 16), D("152")), (at(9, 17), D("153"))]


@pytest.mark.parametrize(("minute", "timeframe", "start"), [
    (at(9, 15), TF.M5, at(9, 15)), (at(9, 19), TF.M5, at(9, 15)), (at(9, 20), TF.M5, at(9, 20)),
    (at(9, 44), TF.M30, at(9, 15)), (at(9, 45), TF.M30, at(9, 45)), (at(10, 14), TF.H1, at(9, 15)),
    (at(10, 15), TF.H1, at(10, 15)), (at(9, 17), TF.M3, at(9, 15)), (at(9, 18), TF.M3, at(9, 18)),
    (at(9, 10), TF.M5, at(9, 10)), (at(15, 29), TF.M15, at(15, 15))])
def test_buckets_are_aligned_to_the_session_open(minute, timeframe, start):
    assert bucket_start(minute, timeframe) == start


def test_aggregation_takes_first_highest_lowest_last():
    minutes = [(at(9, 15), D("100")), (at(9, 16), D("104")), (at(9, 17), D("97")), (at(9, 18), D("99")),
               (at(9, 19), D("101")), (at(9, 20), D("105"))]
    assert aggregate(minutes, TF.M5) == [
        Candle(at(9, 15), at(9, 20), D("100"), D("104"), D("97"), D("101")),
        Candle(at(9, 20), at(9, 25), D("105"), D("105"), D("105"), D("105"))]


def test_only_closed_candles_are_used():
    minutes = [(at(9, 15) + timedelta(minutes=k), D(100 + k)) for k in range(12)]  # 09:15 … 09:26
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
    assert feed.candles(at(9, 19, 59)) == []


def test_breakout_and_breakdown_flips_on_a_scripted_series():
    # Net premium falls (the short straddle earns), then rises sharply: a breakout after entry.
    closes = [120, 118, 116, 114, 112, 110, 108, 106, 104, 102, 100, 99, 98, 110, 125, 140, 150]
    high = [c + 1 for c in closes]
    low = [c - 1 for c in closes]
    _, direction = supertrend(high, low, closes, 3, 1.0)
    directions = direction.tolist()
    entry = 4
    assert directions[entry] == -1  # bearish at entry
    flip = supertrend_flip(directions, entry, SupertrendExit.BREAKOUT)
    assert flip is not None and directions[flip] == 1 and directions[flip - 1] == -1 and closes[flip] >= 110
    assert supertrend_flip(directions, entry, SupertrendExit.BREAKDOWN) is None
    assert supertrend_flip(directions, flip, SupertrendExit.BREAKOUT) is None  # no second flip


def test_already_bullish_at_entry_is_no_breakout():
    assert supertrend_flip([0, -1, 1, 1, 1, 1], 2, SupertrendExit.BREAKOUT) is None
    assert supertrend_flip([0, -1, 1, 1, -1, 1], 2, SupertrendExit.BREAKOUT) == 5
    assert supertrend_flip([0, -1, 1, 1, -1, 1], 2, SupertrendExit.BREAKDOWN) == 4


def test_naive_times_and_mismatched_legs_are_refused():
    with pytest.raises(ValueError, match="aware"):
        PremiumCandles(STRADDLE, TF.M5).add_close(0, datetime(2026, 1, 5, 9, 15), D(1))
    with pytest.raises(ValueError, match="one close series per leg"):
        net_premium_minutes(STRADDLE, [{}])
