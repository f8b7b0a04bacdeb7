"""Run latency: percentiles by linear interpolation, click → ack / fill spreads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.domain.latency import elapsed_ms, percentile, run_latency, spread

CLICK = datetime(2026, 1, 5, 4, 30, tzinfo=UTC)


@pytest.mark.parametrize(("values", "pct", "expected"), [
    ([10.0], 50, 10.0),
    ([10.0], 95, 10.0),
    ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
    ([4.0, 1.0, 3.0, 2.0], 50, 2.5),
    ([1.0, 2.0, 3.0, 4.0, 5.0], 50, 3.0),
    ([1.0, 2.0, 3.0, 4.0, 5.0], 95, 4.8),
    ([0.0, 100.0], 95, 95.0),
    ([0.0, 100.0], 0, 0.0),
    ([0.0, 100.0], 100, 100.0),
    ([float(i) for i in range(1, 21)], 95, 19.05),
])
def test_percentile_sample_gives_linear_interpolation(values, pct, expected):
    assert percentile(values, pct) == pytest.approx(expected, abs=1e-9)


def test_percentile_empty_sample_gives_none():
    assert percentile([], 50) is None


@pytest.mark.parametrize("pct", [-1, 100.5, float("nan")])
def test_percentile_out_of_range_raises(pct):
    with pytest.raises(ValueError):
        percentile([1.0], pct)


def test_elapsed_ms_missing_end_gives_none():
    assert elapsed_ms(CLICK, None) is None
    assert elapsed_ms(CLICK, CLICK + timedelta(milliseconds=250)) == 250.0


def test_spread_leaves_out_missing_samples():
    result = spread([100.0, None, 300.0])
    assert (result.count, result.p50, result.p95) == (2, 200.0, 290.0)
    assert result.as_json() == {"count": 2, "p50_ms": 200.0, "p95_ms": 290.0}


def test_spread_no_samples_gives_nones():
    assert spread([None]).as_json() == {"count": 0, "p50_ms": None, "p95_ms": None}


def test_run_latency_four_intents_gives_exact_spreads():
    ms = timedelta(milliseconds=1)
    intents = [(CLICK + 100 * ms, CLICK + 200 * ms), (CLICK + 120 * ms, CLICK + 260 * ms),
               (CLICK + 300 * ms, None), (None, None)]

    result = run_latency(CLICK, intents)

    assert result["ack"].as_json() == {"count": 3, "p50_ms": 120.0, "p95_ms": 282.0}
    assert result["fill"].as_json() == {"count": 2, "p50_ms": 230.0, "p95_ms": 257.0}
