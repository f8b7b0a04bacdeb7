"""Latency figures of a run: from the click to each order's acknowledgement and fill.

Pure: no Flask, no database. Times are aware datetimes; results are milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime


def percentile(values: Sequence[float], pct: float) -> float | None:
    """The pct-th percentile of values by linear interpolation between closest ranks.

    The same definition as numpy's default ("linear"): rank = pct/100 × (n − 1) over the sorted
    values, interpolated between the two neighbours.

    Args:
        values: the sample (any order); empty gives None.
        pct: 0 to 100.
    Returns:
        The percentile, or None for an empty sample.
    Raises:
        ValueError: pct outside [0, 100] or not finite.
    """
    if not math.isfinite(pct) or not 0 <= pct <= 100:
        raise ValueError(f"percentile must be within 0..100, got {pct}")
    if not values:
        return None
    ordered = sorted(values)
    rank = pct / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    fraction = rank - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def elapsed_ms(start: datetime, end: datetime | None) -> float | None:
    """Milliseconds from start to end (None when end is None)."""
    if end is None:
        return None
    return (end - start).total_seconds() * 1000.0


@dataclass(frozen=True)
class Spread:
    """p50 and p95 (ms) over `count` samples; both None when there are none."""

    count: int
    p50: float | None
    p95: float | None

    def as_json(self) -> dict[str, float | int | None]:
        return {"count": self.count,
                "p50_ms": None if self.p50 is None else round(self.p50, 1),
                "p95_ms": None if self.p95 is None else round(self.p95, 1)}


def spread(samples: Iterable[float | None]) -> Spread:
    """p50/p95 of the samples that exist (None samples are left out)."""
    present = [s for s in samples if s is not None]
    return Spread(len(present), percentile(present, 50), percentile(present, 95))


def run_latency(clicked_at: datetime,
                intents: Iterable[tuple[datetime | None, datetime | None]]) -> dict[str, Spread]:
    """Click → acknowledgement and click → fill across a run's entry intents.

    Args:
        clicked_at: when the user clicked Execute (aware).
        intents: (acknowledged_at, filled_at) per entry intent; None where it did not happen.
    Returns:
        {"ack": Spread, "fill": Spread}.
    """
    acks: list[float | None] = []
    fills: list[float | None] = []
    for acknowledged_at, filled_at in intents:
        acks.append(elapsed_ms(clicked_at, acknowledged_at))
        fills.append(elapsed_ms(clicked_at, filled_at))
    return {"ack": spread(acks), "fill": spread(fills)}
