"""Supertrend (app/indicators/supertrend.py) against an independent, straightforward transcription of
the Pine v6 rules in DOMAIN.md, against TA-Lib's ATR after warm-up, and on a hand-computed series."""

from __future__ import annotations

import math

import numpy as np
import pytest
import talib

from app.indicators.supertrend import atr_wilder, supertrend, supertrend_batch


def pine_supertrend(high, low, close, period, multiplier):
    """DOMAIN.md "Supertrend", transcribed line by line with plain lists (no numpy)."""
    n = len(close)
    tr = []
    for i in range(n):
        if i == 0:
            tr.append(high[i] - low[i])
        else:
            tr.append(max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1])))
    atr = [None] * n
    for i in range(n):
        if i < period - 1:
            continue
        if i == period - 1:
            atr[i] = sum(tr[0:period]) / period
        else:
            atr[i] = (tr[i] + (period - 1) * atr[i - 1]) / period
    lines, directions = [], []
    final_upper = final_lower = None
    previous_line_upper = None
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
        if previous_line_upper is None:
            bullish = False  # the first bar with an ATR is bearish
        elif previous_line_upper:
            bullish = close[i] > upper
        else:
            bullish = not close[i] < lower
        lines.append(lower if bullish else upper)
        directions.append(1 if bullish else -1)
        previous_line_upper = not bullish
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


def test_a_hand_computed_series_period_2_multiplier_1():
    high = [10, 11, 12, 11, 14, 13, 10]
    low = [8, 9, 10, 9, 12, 11, 8]
    close = [9, 10, 11, 10, 13, 11.5, 9]
    line, direction = supertrend(high, low, close, 2, 1.0)
    assert direction.tolist() == [0, -1, -1, -1, 1, 1, -1]
    assert math.isnan(line[0]) and line[1:].tolist() == [12.0, 12.0, 12.0, 10.0, 10.0, 12.0]
    assert line.dtype == np.float64 and direction.dtype == np.int8


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(("period", "multiplier"), [(2, 1.0), (7, 3.0), (10, 2.5), (14, 1.5)])
def test_matches_the_pine_transcription_on_random_walks(seed, period, multiplier):
    high, low, close = random_walk(seed, 600)
    line, direction = supertrend(high, low, close, period, multiplier)
    expected_line, expected_direction = pine_supertrend(list(high), list(low), list(close), period, multiplier)
    assert direction.tolist() == expected_direction
    for got, want in zip(line.tolist(), expected_line, strict=True):
        assert (math.isnan(got) and math.isnan(want)) or math.isclose(got, want, rel_tol=1e-9, abs_tol=0.0)
    assert (direction == 1).any() and (direction == -1).any()  # the walk really flips


@pytest.mark.parametrize("n", [0, 1, 6, 7, 8])
def test_short_series_around_the_period(n):
    high, low, close = random_walk(3, max(n, 1))
    high, low, close = high[:n], low[:n], close[:n]
    line, direction = supertrend(high, low, close, 7, 3.0)
    expected_line, expected_direction = pine_supertrend(list(high), list(low), list(close), 7, 3.0)
    assert direction.tolist() == expected_direction
    assert len(line) == n and all(math.isnan(x) for x in line[:6])
    if n >= 7:
        assert direction[6] == -1 and math.isclose(line[6], expected_line[6], rel_tol=1e-12)


def test_all_flat_bars():
    flat = [100.0] * 20
    line, direction = supertrend(flat, flat, flat, 5, 3.0)
    expected_line, expected_direction = pine_supertrend(flat, flat, flat, 5, 3.0)
    assert direction.tolist() == expected_direction and line[4:].tolist() == expected_line[4:]


@pytest.mark.parametrize("period", [7, 14])
def test_atr_agrees_with_talib_after_warm_up(period):
    high, low, close = random_walk(11, 3000)
    ours = atr_wilder(high, low, close, period)
    theirs = talib.ATR(high, low, close, timeperiod=period)
    assert np.isnan(theirs[period - 1]) and not np.isnan(ours[period - 1])  # TA-Lib starts one bar later
    warm = 60 * period
    assert np.allclose(ours[warm:], theirs[warm:], rtol=1e-9, atol=0.0)
    assert not np.allclose(ours[period:period + 3], theirs[period:period + 3], rtol=1e-9, atol=0.0)


def test_batch_equals_one_series_at_a_time():
    series = [random_walk(seed, 500) for seed in range(12)]
    high, low, close = (np.vstack([s[k] for s in series]) for k in range(3))
    lines, directions = supertrend_batch(high, low, close, 7, 3.0)
    for row, (h, lo, c) in enumerate(series):
        line, direction = supertrend(h, lo, c, 7, 3.0)
        assert np.array_equal(direction, directions[row])
        assert np.array_equal(line, lines[row], equal_nan=True)


def test_writes_into_given_arrays():
    high, low, close = random_walk(5, 100)
    out = (np.empty(100), np.empty(100, dtype=np.int8))
    line, direction = supertrend(high, low, close, 7, 3.0, out=out)
    assert line is out[0] and direction is out[1]
    with pytest.raises(ValueError, match="out must be"):
        supertrend(high, low, close, 7, 3.0, out=(np.empty(99), np.empty(99, dtype=np.int8)))


@pytest.mark.parametrize(("period", "multiplier", "message"), [
    (1, 3.0, "period must be a whole number >= 2"), (7.5, 3.0, "period"), (True, 3.0, "period"),
    (7, 0.0, "multiplier must be > 0"), (7, -1.0, "multiplier"), (7, float("nan"), "multiplier")])
def test_bad_parameters_are_refused(period, multiplier, message):
    with pytest.raises(ValueError, match=message):
        supertrend([2.0] * 10, [1.0] * 10, [1.5] * 10, period, multiplier)


def test_arrays_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        supertrend([2.0] * 10, [1.0] * 9, [1.5] * 10)
    with pytest.raises(ValueError, match="2-D"):
        supertrend_batch([2.0] * 10, [1.0] * 10, [1.5] * 10)
