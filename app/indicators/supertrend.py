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

"The previous line was the upper band" is decided as Pine decides it: by value (previous line ==
previous final upper), not by the previous trend. The two differ when a bullish bar's final lower
and final upper bands are equal, which prices on a tick grid produce (the hand-computed series in
tests/domain/test_supertrend.py has one): Pine then takes the upper-band branch.

The true range is computed as max(H, C[i−1]) − min(L, C[i−1]), which for every bar with H ≥ L is
bit for bit Pine's three-way max (the subtractions round monotonically) at fewer instructions; the
public functions therefore refuse bars with H < L, and non-finite prices, with a ValueError.

Direction: +1 bullish, −1 bearish (the opposite sign of Pine's own output), 0 where undefined;
the line is NaN there. TA-Lib's ATR starts one bar later (mean of TR[1..period]) and agrees after
warm-up; `atr_wilder` runs the kernel itself with an ATR output (the Supertrend entry points pass
an empty one, and the loop-invariant test costs nothing measurable) to check that.

`supertrend_batch` runs the series one after another on the calling thread by default (1,000 × 500
bars take about 3 ms, well inside the 10 ms budget); `parallel=True` spreads them over numba's
thread pool (about twice as fast on two idle cores, bench/supertrend.py). It is off by default
because the pool competes with the web workers for the same cores, and because numba's threading
layers are not all safe to start before a fork (GNU OpenMP) or from two threads at once (workqueue).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["atr_wilder", "supertrend", "supertrend_batch", "warm_up"]

_LARGEST = float(np.finfo(np.float64).max)
_NO_ATRS = np.empty(0, dtype=np.float64)  # the kernel's "do not write the ATR out"


@njit(cache=True, error_model="numpy")
def _kernel(high, low, close, period, multiplier, line, direction, atrs):  # pragma: no cover (compiled)
    """`atrs`: an empty array, or one of the input's length that gets the ATR of every bar (NaN
    before bar period − 1): what `atr_wilder` hands TA-Lib's ATR to check is this loop's own."""
    n = high.shape[0]
    want_atr = atrs.shape[0] > 0
    for i in range(min(n, period - 1)):  # no ATR yet
        line[i] = np.nan
        direction[i] = 0
        if want_atr:
            atrs[i] = np.nan
    if n < period or period < 2:
        return
    # The ATR seed: the mean of the first `period` true ranges (TR[0] = H − L).
    tr_sum = high[0] - low[0]
    for i in range(1, period):
        pc = close[i - 1]
        tr_sum += max(high[i], pc) - min(low[i], pc)
    atr = tr_sum / period
    # The first bar with an ATR: the previous bands count as 0, the trend is bearish.
    i = period - 1
    pc = close[i - 1]
    mid = (high[i] + low[i]) * 0.5
    basic_upper = mid + multiplier * atr
    basic_lower = mid - multiplier * atr
    lower = basic_lower if (basic_lower > 0.0 or pc < 0.0) else 0.0
    upper = basic_upper if (basic_upper < 0.0 or pc > 0.0) else 0.0
    line[i] = upper
    direction[i] = -1
    if want_atr:
        atrs[i] = atr
    on_upper = True
    pc = close[i]
    alpha = 1.0 / period  # Pine's ta.rma: alpha · TR + (1 − alpha) · previous ATR
    keep = 1.0 - alpha
    # Views from `period` on: an index that starts at 0 lets the compiler drop the negative-index
    # handling from every load and store of the hot loop.
    highs, lows, closes = high[period:], low[period:], close[period:]
    lines, directions = line[period:], direction[period:]
    bar_atrs = atrs[period:] if want_atr else atrs  # loop-invariant branch: the compiler unswitches it
    for j in range(highs.shape[0]):
        h = highs[j]
        lo = lows[j]
        c = closes[j]
        top = h if h > pc else pc
        bottom = lo if lo < pc else pc
        atr = alpha * (top - bottom) + keep * atr
        if want_atr:
            bar_atrs[j] = atr
        mid = (h + lo) * 0.5
        band = multiplier * atr
        basic_upper = mid + band
        basic_lower = mid - band
        lower = basic_lower if ((basic_lower > lower) | (pc < lower)) else lower
        upper = basic_upper if ((basic_upper < upper) | (pc > upper)) else upper
        if on_upper:
            if c > upper:
                on_upper = False
        elif c < lower:
            on_upper = True
        if on_upper:
            lines[j] = upper
            directions[j] = -1
        else:
            lines[j] = lower
            directions[j] = 1
            on_upper = lower == upper  # Pine: previous line == previous upper band
        pc = c


@njit(cache=True, error_model="numpy")
def _batch(high, low, close, period, multiplier, line, direction, no_atrs):  # pragma: no cover (compiled)
    for row in range(high.shape[0]):
        _kernel(high[row], low[row], close[row], period, multiplier, line[row], direction[row], no_atrs)


@njit(cache=True, error_model="numpy", parallel=True)
def _batch_parallel(high, low, close, period, multiplier, line, direction, no_atrs):  # pragma: no cover (compiled)
    for row in prange(high.shape[0]):
        _kernel(high[row], low[row], close[row], period, multiplier, line[row], direction[row], no_atrs)


@njit(cache=True)
def _bad_bars(high, low, close, largest):  # pragma: no cover (compiled)
    """How many bars have H < L or a price that is not finite (NaN fails every comparison)."""
    bad = 0
    for i in range(high.shape[0]):
        h = high[i]
        lo = low[i]
        ok = (lo <= h) & (abs(h) <= largest) & (abs(lo) <= largest) & (abs(close[i]) <= largest)
        bad += not ok
    return bad


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
    h, lo, c = (a.reshape(-1) for a in arrays)
    if _bad_bars(h, lo, c, _LARGEST):
        first = int(np.flatnonzero(~((lo <= h) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c)))[0])
        where = f"series {first // shape[1]}, bar {first % shape[1]}" if ndim == 2 else f"bar {first}"
        raise ValueError(f"{where} is not a price bar: high {float(h[first])}, low {float(lo[first])}, "
                         f"close {float(c[first])} (need finite prices and high >= low)")
    return arrays, int(period), multiplier


def supertrend(high, low, close, period: int = 7, multiplier: float = 3.0, *,
               out: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The Supertrend line (float64, NaN where undefined) and direction (int8: +1, −1, 0) of one series.

    Args:
        high, low, close: equal-length 1-D sequences of prices (converted to contiguous float64).
        period: ATR length, >= 2. multiplier: band width in ATRs, > 0.
        out: (line, direction) arrays to write into (float64 and int8, the input's length), e.g.
            reused across calls; default new ones.
    Raises:
        ValueError: period < 2, multiplier <= 0 (or not finite), arrays of different shapes, or a
            bar with high < low or a price that is not finite.
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
    _kernel(h, lo, c, period, multiplier, line, direction, _NO_ATRS)
    return line, direction


def supertrend_batch(high, low, close, period: int = 7, multiplier: float = 3.0, *,
                     parallel: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """`supertrend` of many series at once: 2-D arrays (series, bars) in, the same shapes out.

    parallel: spread the series over numba's thread pool (see the module doc for why it is off).
    Raises: as `supertrend`, and for arrays that are not 2-D.
    """
    (h, lo, c), period, multiplier = _checked(high, low, close, period, multiplier, 2)
    line = np.empty(h.shape, dtype=np.float64)
    direction = np.empty(h.shape, dtype=np.int8)
    (_batch_parallel if parallel else _batch)(h, lo, c, period, multiplier, line, direction, _NO_ATRS)
    return line, direction


def atr_wilder(high, low, close, period: int = 7) -> np.ndarray:
    """The Pine ATR of every bar, NaN before bar period − 1, as the Supertrend kernel carries it
    (the same compiled loop, asked to write it out; for checks against TA-Lib). Raises: as `supertrend`."""
    (h, lo, c), period, _ = _checked(high, low, close, period, 1.0, 1)
    n = h.shape[0]
    atrs = np.empty(n, dtype=np.float64)
    _kernel(h, lo, c, period, 1.0, np.empty(n, dtype=np.float64), np.empty(n, dtype=np.int8), atrs)
    return atrs


def warm_up() -> None:
    """Compile (or load from the cache) every kernel now, so the first candle close pays nothing."""
    x = np.linspace(100.0, 101.0, 16)
    supertrend(x + 1, x - 1, x, 7, 3.0)
    supertrend_batch(np.vstack([x + 1]), np.vstack([x - 1]), np.vstack([x]), 7, 3.0)
    atr_wilder(x + 1, x - 1, x, 7)
