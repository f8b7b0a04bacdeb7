"""Supertrend, exactly as TradingView Pine v6 `ta.supertrend` computes it (DOMAIN.md "Supertrend").

One fused pass over high, low and close (`numba`, compiled once and cached on disk): the true range,
the Wilder ATR (seeded with the mean of the first `period` true ranges, TR[0] = H − L), the basic
bands, the final bands' carry rules and the trend, with no array but the two outputs. Per bar:

    TR[0] = H − L;  TR[i] = max(H − L, |H − C[i−1]|, |L − C[i−1]|)
    ATR undefined for i < period − 1;  ATR[period − 1] = mean(TR[0..period−1]);
    ATR[i] = (TR[i] + (period − 1) · ATR[i−1]) / period  (computed as Pine's ta.rma does:
             alpha · TR[i] + (1 − alpha) · ATR[i−1], alpha = 1 / period)
    upper = hl2 + m·ATR, lower = hl2 − m·ATR (basic), then the final bands:
    lower = basic if basic > prev lower or C[i−1] < prev lower else prev lower (a missing prev is 0)
    upper = basic if basic < prev upper or C[i−1] > prev upper else prev upper
    trend: bearish on the first bar with an ATR; then, if the previous line was the upper band,
    bullish when C > upper, else bearish; otherwise bearish when C < lower, else bullish
    line = lower when bullish, upper when bearish

Direction: +1 bullish, −1 bearish (the opposite sign of Pine's own output), 0 where undefined;
the line is NaN there. TA-Lib's ATR starts one bar later (mean of TR[1..period]) and agrees after
warm-up (tests/domain/test_supertrend.py checks both against an independent transcription).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["atr_wilder", "supertrend", "supertrend_batch", "warm_up"]


@njit(cache=True, error_model="numpy")
def _kernel(high, low, close, period, multiplier, line, direction):  # pragma: no cover (compiled)
    n = high.shape[0]
    for i in range(min(n, period - 1)):  # no ATR yet
        line[i] = np.nan
        direction[i] = 0
    if n < period:
        return
    # The ATR seed: the mean of the first `period` true ranges (TR[0] = H − L).
    tr_sum = high[0] - low[0]
    for i in range(1, period):
        pc = close[i - 1]
        tr_sum += max(high[i] - low[i], abs(high[i] - pc), abs(low[i] - pc))
    atr = tr_sum / period
    # The first bar with an ATR: the previous bands count as 0, the trend is bearish.
    i = period - 1
    pc = close[i - 1]
    mid = (high[i] + low[i]) / 2.0
    basic_upper = mid + multiplier * atr
    basic_lower = mid - multiplier * atr
    lower = basic_lower if (basic_lower > 0.0 or pc < 0.0) else 0.0
    upper = basic_upper if (basic_upper < 0.0 or pc > 0.0) else 0.0
    line[i] = upper
    direction[i] = -1
    on_upper = True
    pc = close[i]
    alpha = 1.0 / period  # Pine's ta.rma: alpha · TR + (1 − alpha) · previous ATR
    keep = 1.0 - alpha
    for i in range(period, n):
        h = high[i]
        lo = low[i]
        c = close[i]
        atr = alpha * max(h - lo, abs(h - pc), abs(lo - pc)) + keep * atr
        mid = (h + lo) * 0.5
        basic_upper = mid + multiplier * atr
        basic_lower = mid - multiplier * atr
        lower = basic_lower if ((basic_lower > lower) | (pc < lower)) else lower
        upper = basic_upper if ((basic_upper < upper) | (pc > upper)) else upper
        if on_upper:
            bullish = c > upper
        else:
            bullish = c >= lower
        on_upper = not bullish
        line[i] = lower if bullish else upper
        direction[i] = 1 if bullish else -1
        pc = c


@njit(cache=True, error_model="numpy")
def _batch(high, low, close, period, multiplier, line, direction):  # pragma: no cover (compiled)
    for row in range(high.shape[0]):
        _kernel(high[row], low[row], close[row], period, multiplier, line[row], direction[row])


@njit(cache=True, error_model="numpy")
def _atr(high, low, close, period, out):  # pragma: no cover (compiled)
    n = high.shape[0]
    alpha = 1.0 / period
    tr_sum = 0.0
    atr = 0.0
    for i in range(n):
        tr = high[i] - low[i]
        if i > 0:
            tr = max(tr, abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
        if i < period - 1:
            tr_sum += tr
            out[i] = np.nan
        elif i == period - 1:
            atr = (tr_sum + tr) / period
            out[i] = atr
        else:
            atr = alpha * tr + (1.0 - alpha) * atr
            out[i] = atr


def _checked(high, low, close, period: int, multiplier: float, ndim: int):
    if isinstance(period, bool) or not isinstance(period, int | np.integer) or period < 2:
        raise ValueError(f"the Supertrend period must be a whole number >= 2, got {period!r}")
    multiplier = float(multiplier)
    if not np.isfinite(multiplier) or multiplier <= 0:
        raise ValueError(f"the Supertrend multiplier must be > 0, got {multiplier!r}")
    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in (high, low, close)]
    shape = arrays[0].shape
    if any(a.shape != shape for a in arrays):
        raise ValueError(f"high, low and close must have the same shape, got {[a.shape for a in arrays]}")
    if arrays[0].ndim != ndim:
        raise ValueError(f"expected {ndim}-D arrays, got {arrays[0].ndim}-D")
    return arrays, int(period), multiplier


def supertrend(high, low, close, period: int = 7, multiplier: float = 3.0, *,
               out: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The Supertrend line (float64, NaN where undefined) and direction (int8: +1, −1, 0) of one series.

    out: (line, direction) arrays to write into (float64 and int8, the input's length), e.g. reused
    across calls; default new ones.
    Raises:
        ValueError: period < 2, multiplier <= 0 (or not finite), or arrays of different shapes.
    """
    (h, lo, c), period, multiplier = _checked(high, low, close, period, multiplier, 1)
    if out is None:
        line = np.empty(h.shape[0], dtype=np.float64)
        direction = np.empty(h.shape[0], dtype=np.int8)
    else:
        line, direction = out
        if line.shape != h.shape or direction.shape != h.shape or line.dtype != np.float64 \
                or direction.dtype != np.int8:
            raise ValueError("out must be (float64, int8) arrays of the input's length")
    _kernel(h, lo, c, period, multiplier, line, direction)
    return line, direction


def supertrend_batch(high, low, close, period: int = 7, multiplier: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """`supertrend` of many series at once: 2-D arrays (series, bars) in, the same shapes out."""
    (h, lo, c), period, multiplier = _checked(high, low, close, period, multiplier, 2)
    line = np.empty(h.shape, dtype=np.float64)
    direction = np.empty(h.shape, dtype=np.int8)
    _batch(h, lo, c, period, multiplier, line, direction)
    return line, direction


def atr_wilder(high, low, close, period: int = 7) -> np.ndarray:
    """The Pine ATR alone (the kernel computes it inline; this is for checks against TA-Lib)."""
    (h, lo, c), period, _ = _checked(high, low, close, period, 1.0, 1)
    out = np.empty(h.shape[0], dtype=np.float64)
    _atr(h, lo, c, period, out)
    return out


def warm_up() -> None:
    """Compile (or load from the cache) every kernel now, so the first candle close pays nothing."""
    x = np.linspace(100.0, 101.0, 16)
    supertrend(x + 1, x - 1, x, 7, 3.0)
    supertrend_batch(np.vstack([x + 1]), np.vstack([x - 1]), np.vstack([x]), 7, 3.0)
    atr_wilder(x + 1, x - 1, x, 7)
