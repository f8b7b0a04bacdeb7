"""Supertrend (app/indicators/supertrend.py) against an independent, straightforward transcription of
the Pine v6 rules in DOMAIN.md, against TA-Lib's ATR after warm-up, and on hand-computed series."""

from __future__ import annotations

import math
from fractions import Fraction as F

import numpy as np
import pytest
import talib

from app.indicators.supertrend import atr_wilder, supertrend, supertrend_batch


def pine_supertrend(high, low, close, period, multiplier, *, by_value=True):
    """DOMAIN.md "Supertrend", transcribed line by line with plain lists (no numpy).

    The ATR recursion is written as Pine's ta.rma computes it (alpha · TR + (1 − alpha) · previous),
    the same value as DOMAIN.md's (TR + (period − 1) · ATR) / period but with Pine's rounding, so
    that bands that touch on a tick grid touch here too. by_value=True decides "the previous line
    was the upper band" as Pine does (previous line == previous upper); False uses the previous
    trend instead, to show that the two differ.
    """
    n = len(close)
    tr = []
    for i in range(n):
        if i == 0:
            tr.append(high[i] - low[i])
        else:
            tr.append(max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1])))
    alpha = 1.0 / period
    atr = [None] * n
    for i in range(n):
        if i < period - 1:
            continue
        if i == period - 1:
            atr[i] = sum(tr[0:period]) / period
        else:
            atr[i] = alpha * tr[i] + (1.0 - alpha) * atr[i - 1]
    lines, directions = [], []
    final_upper = final_lower = None
    previous_line = previous_bullish = None
    for i in range(n):
        if atr[i] is None:
            lines.append(math.nan)
            directions.append(0)
            continue
        hl2 = (high[i] + low[i]) / 2
        basic_upper = hl2 + multiplier * atr[i]
        basic_lower = hl2 - multiplier * atr[i]
        prev_lower = final_lower if final_lower is not None else 0.0
        prev_upper = final_upper if final_upper is not None else 0.0
        prev_close = close[i - 1] if i > 0 else 0.0
        lower = basic_lower if (basic_lower > prev_lower or prev_close < prev_lower) else prev_lower
        upper = basic_upper if (basic_upper < prev_upper or prev_close > prev_upper) else prev_upper
        if previous_line is None:
            bullish = False  # the first bar with an ATR is bearish
        else:
            was_upper = previous_line == prev_upper if by_value else not previous_bullish
            if was_upper:
                bullish = close[i] > upper
            else:
                bullish = not close[i] < lower
        line = lower if bullish else upper
        lines.append(line)
        directions.append(1 if bullish else -1)
        previous_line, previous_bullish = line, bullish
        final_lower, final_upper = lower, upper
    return lines, directions


def random_walk(seed: int, n: int, *, gaps: bool = True, flat: bool = True):
    rng = np.random.default_rng(seed)
    close = 100 + np.cumsum(rng.normal(0, 1, n))
    if gaps:  # jumps between bars
        close += np.where(rng.random(n) < 0.05, rng.normal(0, 8, n), 0).cumsum()
    close = np.abs(close) + 5
    high = close + rng.random(n) * 2
    low = close - rng.random(n) * 2
    if flat:  # bars with high == low == close
        mask = rng.random(n) < 0.05
        high[mask] = low[mask] = close[mask]
    return high, low, close


def assert_same(got_line, got_direction, want_line, want_direction):
    assert got_direction.tolist() == want_direction
    for got, want in zip(got_line.tolist(), want_line, strict=True):
        assert (math.isnan(got) and math.isnan(want)) or math.isclose(got, want, rel_tol=1e-9, abs_tol=0.0)


def test_a_hand_computed_series_period_2_where_the_bands_touch():
    # Integer prices and halving ATRs: every value below is exact in binary. At bar 2 the trend turns
    # bullish with final lower == final upper == 102.5, so at bar 3 Pine takes the upper-band branch
    # (107 > 107.75? no: bearish); comparing by the previous trend instead would stay bullish.
    high = [108, 102, 107, 107, 110, 105, 107, 111, 112, 106]
    low = [106, 98, 104, 104, 105, 102, 101, 108, 106, 103]
    close = [106, 100, 106, 107, 107, 104, 104, 110, 109, 106]
    line, direction = supertrend(high, low, close, 2, 0.5)
    assert direction.tolist() == [0, -1, 1, -1, -1, -1, -1, 1, 1, -1]
    assert math.isnan(line[0])
    assert line[1:].tolist() == [102.5, 102.5, 107.75, 107.75, 105.9375, 105.9375, 106.390625, 106.390625,
                                 107.52734375]
    assert line.dtype == np.float64 and direction.dtype == np.int8
    assert pine_supertrend(high, low, close, 2, 0.5, by_value=False)[1][3] == 1  # the other reading differs


def test_a_hand_computed_series_of_ten_bars_period_3():
    # TR = 2, 8, 2, 4, 5, 2, 9, 3, 2, 5; ATR[2] = 4, then ATR = (TR + 2·ATR) / 3: 4, 13/3, 32/9, 145/27,
    # 371/81, 904/243, 3023/729. Bands touch at bar 3 (both 103), so bar 4 is bearish as in Pine.
    high = [108, 104, 102, 106, 109, 110, 106, 105, 105, 102]
    low = [106, 98, 100, 104, 108, 108, 101, 102, 103, 98]
    close = [106, 101, 102, 104, 108, 110, 104, 103, 103, 101]
    line, direction = supertrend(high, low, close, 3, 0.5)
    assert direction.tolist() == [0, 0, -1, 1, -1, -1, -1, -1, -1, -1]
    expected = [F(103), F(103), F(332, 3), F(332, 3), F(2867, 27), F(8569, 81), F(8569, 81),
                100 + F(3023, 1458)]
    assert math.isnan(line[0]) and math.isnan(line[1])
    for got, want in zip(line[2:].tolist(), expected, strict=True):
        assert math.isclose(got, float(want), rel_tol=1e-12)


def test_a_hand_computed_series_period_2_multiplier_1():
    high = [10, 11, 12, 11, 14, 13, 10]
    low = [8, 9, 10, 9, 12, 11, 8]
    close = [9, 10, 11, 10, 13, 11.5, 9]
    line, direction = supertrend(high, low, close, 2, 1.0)
    assert direction.tolist() == [0, -1, -1, -1, 1, 1, -1]
    assert math.isnan(line[0]) and line[1:].tolist() == [12.0, 12.0, 12.0, 10.0, 10.0, 12.0]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(("period", "multiplier"), [(2, 1.0), (7, 3.0), (10, 2.5), (14, 1.5)])
def test_matches_the_pine_transcription_on_random_walks(seed, period, multiplier):
    high, low, close = random_walk(seed, 600)
    line, direction = supertrend(high, low, close, period, multiplier)
    assert_same(line, direction, *pine_supertrend(list(high), list(low), list(close), period, multiplier))
    assert (direction == 1).any() and (direction == -1).any()  # the walk really flips


def choppy_bars(rng, n: int):
    """Whole-rupee bars that jump around 100-110: the kind of series on which the bands touch."""
    close = 100.0 + rng.integers(0, 11, n)
    return list(close + rng.integers(0, 4, n)), list(close - rng.integers(0, 4, n)), list(close)


@pytest.mark.parametrize(("period", "multiplier"), [(2, 0.5), (3, 0.5), (2, 1.0), (7, 3.0)])
def test_matches_the_pine_transcription_on_a_price_grid_where_bands_touch(period, multiplier):
    rng = np.random.default_rng(period * 10 + int(multiplier * 2))
    touching = 0
    for _ in range(400):
        high, low, close = choppy_bars(rng, 16)
        line, direction = supertrend(high, low, close, period, multiplier)
        want = pine_supertrend(high, low, close, period, multiplier)
        assert_same(line, direction, *want)
        touching += pine_supertrend(high, low, close, period, multiplier, by_value=False)[1] != want[1]
    if multiplier == 0.5:  # narrow bands on a coarse grid: the value comparison decided some series
        assert touching > 0


@pytest.mark.parametrize("n", [0, 1, 6, 7, 8])
def test_short_series_around_the_period(n):
    high, low, close = random_walk(3, max(n, 1))
    high, low, close = high[:n], low[:n], close[:n]
    line, direction = supertrend(high, low, close, 7, 3.0)
    expected_line, expected_direction = pine_supertrend(list(high), list(low), list(close), 7, 3.0)
    assert direction.tolist() == expected_direction
    assert len(line) == n and all(math.isnan(x) for x in line[:6]) and not (direction[:6] != 0).any()
    if n >= 7:
        assert direction[6] == -1 and math.isclose(line[6], expected_line[6], rel_tol=1e-12)


def test_all_flat_bars():
    flat = [100.0] * 20
    line, direction = supertrend(flat, flat, flat, 5, 3.0)
    expected_line, expected_direction = pine_supertrend(flat, flat, flat, 5, 3.0)
    assert direction.tolist() == expected_direction == [0] * 4 + [-1] * 16
    assert line[4:].tolist() == expected_line[4:] == [100.0] * 16  # ATR 0: both bands at hl2


@pytest.mark.parametrize("period", [7, 14])
def test_atr_agrees_with_talib_after_warm_up(period):
    high, low, close = random_walk(11, 3000)
    ours = atr_wilder(high, low, close, period)
    theirs = talib.ATR(high, low, close, timeperiod=period)
    assert np.isnan(ours[:period - 1]).all() and not np.isnan(ours[period - 1])
    assert np.isnan(theirs[period - 1]) and not np.isnan(theirs[period])  # TA-Lib starts one bar later
    assert not np.allclose(ours[period:period + 3], theirs[period:period + 3], rtol=1e-9, atol=0.0)
    # The two seeds differ by a fraction of the ATR and the gap shrinks by (1 − 1/period) a bar:
    # below 1e-9 after about 20 × period bars; 40 × period leaves a wide margin.
    warm = 40 * period
    assert np.allclose(ours[warm:], theirs[warm:], rtol=1e-9, atol=0.0)
    # And DOMAIN.md's form of the recursion, (TR + (period − 1) · ATR) / period, is the same value.
    tr = [high[0] - low[0]] + [max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
                               for i in range(1, len(close))]
    atr = sum(tr[:period]) / period
    for i in range(period, len(tr)):
        atr = (tr[i] + (period - 1) * atr) / period
        assert math.isclose(ours[i], atr, rel_tol=1e-12)


@pytest.mark.parametrize("parallel", [False, True])
def test_batch_equals_one_series_at_a_time(parallel):
    series = [random_walk(seed, 500) for seed in range(12)]
    high, low, close = (np.vstack([s[k] for s in series]) for k in range(3))
    lines, directions = supertrend_batch(high, low, close, 7, 3.0, parallel=parallel)
    assert lines.shape == directions.shape == (12, 500)
    for row, (h, lo, c) in enumerate(series):
        line, direction = supertrend(h, lo, c, 7, 3.0)
        assert np.array_equal(direction, directions[row])
        assert np.array_equal(line, lines[row], equal_nan=True)


def test_writes_into_given_arrays():
    high, low, close = random_walk(5, 100)
    out = (np.empty(100), np.empty(100, dtype=np.int8))
    line, direction = supertrend(high, low, close, 7, 3.0, out=out)
    assert line is out[0] and direction is out[1]
    assert np.array_equal(line, supertrend(high, low, close, 7, 3.0)[0], equal_nan=True)
    with pytest.raises(ValueError, match="out must be"):
        supertrend(high, low, close, 7, 3.0, out=(np.empty(99), np.empty(99, dtype=np.int8)))


@pytest.mark.parametrize(("period", "multiplier", "message"), [
    (1, 3.0, "period must be a whole number >= 2"), (0, 3.0, "period"), (7.5, 3.0, "period"),
    (True, 3.0, "period"), (7, 0.0, "multiplier must be > 0"), (7, -1.0, "multiplier"),
    (7, float("nan"), "multiplier"), (7, float("inf"), "multiplier")])
def test_bad_parameters_are_refused(period, multiplier, message):
    with pytest.raises(ValueError, match=message):
        supertrend([2.0] * 10, [1.0] * 10, [1.5] * 10, period, multiplier)
    with pytest.raises(ValueError, match=message):
        supertrend_batch([[2.0] * 10], [[1.0] * 10], [[1.5] * 10], period, multiplier)


def test_arrays_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        supertrend([2.0] * 10, [1.0] * 9, [1.5] * 10)
    with pytest.raises(ValueError, match="same shape"):
        supertrend_batch([[2.0] * 10], [[1.0] * 10], [[1.5] * 9])
    with pytest.raises(ValueError, match="2-D"):
        supertrend_batch([2.0] * 10, [1.0] * 10, [1.5] * 10)


@pytest.mark.parametrize(("bar", "field", "value"), [
    (3, "low", 2.5), (0, "high", float("nan")), (9, "close", float("nan")), (5, "low", float("-inf")),
    (4, "close", float("inf"))])
def test_bars_that_are_not_prices_are_refused(bar, field, value):
    prices = {"high": [2.0] * 10, "low": [1.0] * 10, "close": [1.5] * 10}
    prices[field][bar] = value
    with pytest.raises(ValueError, match=rf"^bar {bar} is not a price bar"):
        supertrend(prices["high"], prices["low"], prices["close"])
    with pytest.raises(ValueError, match=rf"^series 1, bar {bar} is not a price bar"):
        supertrend_batch([[2.0] * 10, prices["high"]], [[1.0] * 10, prices["low"]], [[1.5] * 10, prices["close"]])
