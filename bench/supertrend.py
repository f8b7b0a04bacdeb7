"""Benchmark the Supertrend kernel (app/indicators/supertrend.py).

Prints the machine first, then per round and as medians over the rounds:
- (a) the fused kernel on 10 million bars, into preallocated outputs (bars/s; target >= 100 M
  bars/s on one core of an idle machine), and the public call, which also checks the bars and
  allocates its outputs (no target);
- (b) 1,000 series x 500 bars in one `supertrend_batch` call (target <= 10 ms), on one thread (the
  default) and with parallel=True (no target);
- (c) the original product's approach in the same rounds, on the same 10 M bars: TA-Lib's ATR (which
  allocates its array), then a plain numba loop over the arrays for the bands and the trend,
  written below; the ratio baseline time / fused time (target >= 3x).
The baseline is checked to give the kernel's directions once TA-Lib's later ATR seed has worn off.

Usage: uv run python bench/supertrend.py [--rounds 5] [--bars 10000000]
Compilation (or loading numba's on-disk cache) and the first touch of every output array happen
before any timing. Bounded: about 5 s per round on a 2-core machine. No network.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import talib
from numba import njit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.indicators.supertrend import _NO_ATRS, _kernel, supertrend, supertrend_batch, warm_up
from bench._common import print_machine, summarize

PERIOD, MULTIPLIER = 7, 3.0
BARS_TARGET = 100e6  # bars/s
BATCH_TARGET_MS = 10.0
RATIO_TARGET = 3.0
SERIES, SERIES_BARS = 1_000, 500


@njit(cache=True)
def _bands_after_atr(high, low, close, atr, multiplier, line, direction):  # pragma: no cover (compiled)
    """The baseline's second pass, as a straightforward loop over a precomputed ATR array."""
    prev_upper = 0.0
    prev_lower = 0.0
    prev_line = np.nan
    for i in range(high.shape[0]):
        if np.isnan(atr[i]):
            line[i] = np.nan
            direction[i] = 0
            continue
        hl2 = (high[i] + low[i]) / 2.0
        upper = hl2 + multiplier * atr[i]
        lower = hl2 - multiplier * atr[i]
        if i > 0:
            if not (lower > prev_lower or close[i - 1] < prev_lower):
                lower = prev_lower
            if not (upper < prev_upper or close[i - 1] > prev_upper):
                upper = prev_upper
        if np.isnan(prev_line):
            d = -1
        elif prev_line == prev_upper:
            d = 1 if close[i] > upper else -1
        else:
            d = -1 if close[i] < lower else 1
        line[i] = lower if d == 1 else upper
        direction[i] = d
        prev_upper, prev_lower, prev_line = upper, lower, line[i]


def _walk(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A NIFTY-like random walk: closes around 20,000, bars up to 10 points either side."""
    rng = np.random.default_rng(seed)
    close = 20000 + np.cumsum(rng.normal(0, 5, n))
    return close + rng.random(n) * 10, close - rng.random(n) * 10, close


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _verdict(met: bool) -> str:
    return "met" if met else "missed"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bars", type=int, default=10_000_000)
    args = parser.parse_args()
    if args.rounds < 3:
        parser.error("at least 3 rounds")
    print_machine()
    bars = args.bars
    high, low, close = _walk(bars, 1)
    series = [_walk(SERIES_BARS, seed) for seed in range(SERIES)]
    bh, bl, bc = (np.ascontiguousarray(np.vstack([s[k] for s in series])) for k in range(3))
    line, direction = np.zeros(bars), np.zeros(bars, dtype=np.int8)
    base_line, base_direction = np.zeros(bars), np.zeros(bars, dtype=np.int8)

    # Compile or load every kernel and touch every output once, outside the timings.
    warm_up()
    supertrend_batch(bh, bl, bc, PERIOD, MULTIPLIER, parallel=True)
    _kernel(high, low, close, PERIOD, MULTIPLIER, line, direction, _NO_ATRS)
    _bands_after_atr(high, low, close, talib.ATR(high, low, close, timeperiod=PERIOD), MULTIPLIER,
                     base_line, base_direction)
    settled = 100 * PERIOD
    agree = float(np.mean(base_direction[settled:] == direction[settled:]))
    print(f"supertrend bench: period {PERIOD}, multiplier {MULTIPLIER}, {bars:,} bars, {args.rounds} rounds")
    print(f"baseline and kernel give the same direction on {agree:.4%} of bars after bar {settled:,}")

    def original() -> None:
        atr = talib.ATR(high, low, close, timeperiod=PERIOD)
        _bands_after_atr(high, low, close, atr, MULTIPLIER, base_line, base_direction)

    fused, public, batch, batch_parallel, baseline = [], [], [], [], []
    for n in range(1, args.rounds + 1):
        fused.append(_seconds(lambda: _kernel(high, low, close, PERIOD, MULTIPLIER, line, direction, _NO_ATRS)))
        baseline.append(_seconds(original))
        public.append(_seconds(lambda: supertrend(high, low, close, PERIOD, MULTIPLIER)))
        batch.append(_seconds(lambda: supertrend_batch(bh, bl, bc, PERIOD, MULTIPLIER)))
        batch_parallel.append(_seconds(lambda: supertrend_batch(bh, bl, bc, PERIOD, MULTIPLIER, parallel=True)))
        print(f"  round {n}: fused {bars / fused[-1] / 1e6:6.1f} M bars/s | TA-Lib ATR + band loop "
              f"{bars / baseline[-1] / 1e6:6.1f} M bars/s ({baseline[-1] / fused[-1]:.2f}x) | public call "
              f"{bars / public[-1] / 1e6:6.1f} M bars/s | batch {batch[-1] * 1e3:5.2f} ms, parallel "
              f"{batch_parallel[-1] * 1e3:5.2f} ms", flush=True)

    rate = summarize([bars / t / 1e6 for t in fused], "M bars/s")
    batch_ms = summarize([t * 1e3 for t in batch], "ms", 2)
    ratio = summarize([b / f for b, f in zip(baseline, fused, strict=True)], "x", 2)
    print("median over the rounds (spread):")
    print(f"  (a) fused kernel, {bars / 1e6:g} M bars, preallocated : {rate}")
    print(f"      public call (checks bars, allocates)   : {summarize([bars / t / 1e6 for t in public], 'M bars/s')}")
    print(f"  (b) batch {SERIES:,} x {SERIES_BARS} bars, one thread    : {batch_ms}")
    print(f"      batch, parallel=True                   : {summarize([t * 1e3 for t in batch_parallel], 'ms', 2)}")
    print(f"  (c) TA-Lib ATR + numba band loop           : {summarize([bars / t / 1e6 for t in baseline], 'M bars/s')}")
    print(f"      baseline time / fused time             : {ratio}")
    rate_met = rate.median * 1e6 >= BARS_TARGET
    batch_met = batch_ms.median <= BATCH_TARGET_MS
    ratio_met = ratio.median >= RATIO_TARGET
    print("targets:")
    print(f"  (a) >= {BARS_TARGET / 1e6:.0f} M bars/s on one core       : {_verdict(rate_met)}")
    print(f"  (b) batch <= {BATCH_TARGET_MS:.0f} ms                      : {_verdict(batch_met)}")
    print(f"  (c) >= {RATIO_TARGET:.0f}x the TA-Lib + loop baseline    : {_verdict(ratio_met)}")
    one, five, fifteen = os.getloadavg()
    print(f"load average at the end: {one:.2f} / {five:.2f} / {fifteen:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
