"""Benchmark the Supertrend kernel (app/indicators/supertrend.py).

Prints the machine first, then per round and as medians over the rounds:
- the fused kernel on 10 million bars, into preallocated outputs (bars/s; target >= 100 M bars/s on
  one core of an idle machine), and the public call that allocates its outputs;
- 1,000 series x 500 bars in one batch call (target <= 10 ms);
- the original product's approach in the same run, on the same 10 M bars: TA-Lib's ATR, then a
  plain numba loop over the arrays for the bands and the trend; the ratio (target >= 3x faster).

Usage: uv run python bench/supertrend.py [--rounds 5] [--bars 10000000]
Compilation happens before timing (numba's on-disk cache makes later runs start warm).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import talib
from numba import njit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.indicators.supertrend import _kernel, supertrend, supertrend_batch, warm_up
from bench._common import print_machine, summarize

PERIOD, MULTIPLIER = 7, 3.0
BARS_TARGET = 100e6  # bars/s
BATCH_TARGET_MS = 10.0
RATIO_TARGET = 3.0


@njit(cache=True)
def _bands_after_atr(high, low, close, atr, multiplier, line, direction):  # pragma: no cover (compiled)
    """The baseline's second pass: bands and trend over a precomputed ATR array (as the original did)."""
    n = high.shape[0]
    upper_prev = 0.0
    lower_prev = 0.0
    on_upper = True
    for i in range(n):
        if np.isnan(atr[i]):
            line[i] = np.nan
            direction[i] = 0
            continue
        mid = (high[i] + low[i]) / 2.0
        upper = mid + multiplier * atr[i]
        lower = mid - multiplier * atr[i]
        pc = close[i - 1] if i > 0 else 0.0
        if not (lower > lower_prev or pc < lower_prev):
            lower = lower_prev
        if not (upper < upper_prev or pc > upper_prev):
            upper = upper_prev
        if direction[i - 1] == 0 if i > 0 else True:
            d = -1
        elif on_upper:
            d = 1 if close[i] > upper else -1
        else:
            d = -1 if close[i] < lower else 1
        on_upper = d == -1
        line[i] = lower if d == 1 else upper
        direction[i] = d
        upper_prev, lower_prev = upper, lower


def _walk(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 20000 + np.cumsum(rng.normal(0, 5, n))
    return close + rng.random(n) * 10, close - rng.random(n) * 10, close


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bars", type=int, default=10_000_000)
    args = parser.parse_args()
    print_machine()
    high, low, close = _walk(args.bars, 1)
    line = np.empty(args.bars)
    direction = np.empty(args.bars, dtype=np.int8)
    series = [_walk(500, seed) for seed in range(1000)]
    bh, bl, bc = (np.ascontiguousarray(np.vstack([s[k] for s in series])) for k in range(3))
    warm_up()
    atr = talib.ATR(high, low, close, timeperiod=PERIOD)
    base_line, base_direction = np.empty(args.bars), np.zeros(args.bars, dtype=np.int8)
    _bands_after_atr(high[:100], low[:100], close[:100], atr[:100], MULTIPLIER, base_line[:100], base_direction[:100])
    print(f"supertrend bench: period {PERIOD}, multiplier {MULTIPLIER}, {args.bars:,} bars, {args.rounds} rounds")

    fused, public, batch, baseline = [], [], [], []
    for n in range(1, args.rounds + 1):
        fused.append(_timed(lambda: _kernel(high, low, close, PERIOD, MULTIPLIER, line, direction)))
        public.append(_timed(lambda: supertrend(high, low, close, PERIOD, MULTIPLIER)))
        batch.append(_timed(lambda: supertrend_batch(bh, bl, bc, PERIOD, MULTIPLIER)))

        def original() -> None:
            a = talib.ATR(high, low, close, timeperiod=PERIOD)
            _bands_after_atr(high, low, close, a, MULTIPLIER, base_line, base_direction)

        baseline.append(_timed(original))
        print(f"  round {n}: fused {args.bars / fused[-1] / 1e6:6.1f} M bars/s, with allocation "
              f"{args.bars / public[-1] / 1e6:6.1f} M bars/s, batch 1000x500 {batch[-1] * 1000:6.2f} ms, "
              f"TA-Lib ATR + band loop {args.bars / baseline[-1] / 1e6:6.1f} M bars/s", flush=True)

    rate = summarize([args.bars / t / 1e6 for t in fused], "M bars/s")
    batch_ms = summarize([t * 1000 for t in batch], "ms", 2)
    ratio = summarize([b / f for b, f in zip(baseline, fused, strict=True)], "x", 2)
    print("median over the rounds (spread):")
    print(f"  fused kernel, 10 M bars (preallocated)    : {rate}")
    allocating = summarize([args.bars / t / 1e6 for t in public], "M bars/s")
    print(f"  public call (allocates its outputs)       : {allocating}")
    print(f"  batch, 1,000 series x 500 bars            : {batch_ms}")
    base_rate = summarize([args.bars / t / 1e6 for t in baseline], "M bars/s")
    print(f"  baseline, TA-Lib ATR + numba band loop    : {base_rate}")
    print(f"  fused / baseline                          : {ratio}")
    print(f"  target >= 100 M bars/s (one core, idle)  : {'met' if rate.median * 1e6 >= BARS_TARGET else 'MISSED'}")
    print(f"  target batch <= {BATCH_TARGET_MS:.0f} ms                  : "
          f"{'met' if batch_ms.median <= BATCH_TARGET_MS else 'MISSED'}")
    print(f"  target >= {RATIO_TARGET:.0f}x the baseline                 : "
          f"{'met' if ratio.median >= RATIO_TARGET else 'MISSED'}")
    print(f"  load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
