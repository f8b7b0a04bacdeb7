"""The order of a risk pass (app/services/risk/monitor.py): the runs whose prices moved most are
evaluated first, and a pass gives way to a much bigger move that arrives while it runs.

The pass's scheduling is what is under test here, so each run's evaluation is replaced by a
recorder; the rules themselves are tested over HTTP in test_monitor_http.py."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest

from app.broker.feed_frames import Instrument, Tick


def _tick(symbol: str, ltp: str | None) -> Tick:
    now = datetime.now(UTC)
    return Tick(Instrument("NFO", symbol), 1, None if ltp is None else Decimal(ltp), now, now, {"ltp": ltp})


@pytest.fixture
def monitor(app):
    from app.services.risk.monitor import RiskMonitor

    monitor = RiskMonitor(app)
    monitor.evaluated = []
    monitor.during = {}  # run → ticks that arrive while that run is evaluated

    def record(book, now, check):
        monitor.evaluated.append(book.run_id)
        for symbol, ltp in monitor.during.pop(book.run_id, []):
            monitor.on_tick(_tick(symbol, ltp))
        return {}

    monitor._evaluate_run = record
    return monitor


def _watch(monitor, runs_of: dict[str, set[int]]) -> None:
    monitor._by_instrument = {(symbol, "NFO"): runs for symbol, runs in runs_of.items()}
    monitor._books = {run: SimpleNamespace(run_id=run, accounts=[]) for runs in runs_of.values() for run in runs}


def _priced(monitor, prices: dict[str, str]) -> None:
    """Every instrument has had its first price (a first price is the biggest move of all)."""
    for symbol, ltp in prices.items():
        monitor.on_tick(_tick(symbol, ltp))
    monitor._evaluate_touched()
    monitor.evaluated.clear()


def test_the_board_measures_each_tick_against_the_last_good_price(monitor):
    board = monitor.prices
    assert board.note_tick(("A", "NFO"), _tick("A", "200"), "host") == math.inf  # the first price
    assert board.note_tick(("A", "NFO"), _tick("A", "210"), "host") == pytest.approx(0.05)
    assert board.note_tick(("A", "NFO"), _tick("A", "0"), "host") == 0.0  # refused: no move
    assert board.note_tick(("A", "NFO"), _tick("A", "189"), "host") == pytest.approx(0.1)  # from 210


def test_the_runs_whose_prices_moved_most_are_evaluated_first(monitor):
    _watch(monitor, {"A": {1}, "B": {2}, "C": {3, 4}})
    _priced(monitor, {"A": "100", "B": "100", "C": "100"})
    monitor.on_tick(_tick("A", "100.5"))  # 0.5 %
    monitor.on_tick(_tick("B", "130"))  # 30 %
    monitor.on_tick(_tick("C", "97"))  # 3 %
    monitor._evaluate_touched()
    assert monitor.evaluated == [2, 3, 4, 1]  # equal moves by run id


def test_a_run_keeps_the_biggest_move_of_its_ticks(monitor):
    _watch(monitor, {"A": {1}, "B": {2}})
    _priced(monitor, {"A": "100", "B": "100"})
    for ltp in ("110", "110.1"):  # 10 %, then 0.1 %
        monitor.on_tick(_tick("A", ltp))
    monitor.on_tick(_tick("B", "105"))
    monitor._evaluate_touched()
    assert monitor.evaluated == [1, 2]


def test_a_big_move_during_a_pass_is_evaluated_before_the_rest_of_the_pass(monitor):
    _watch(monitor, {"A": {1}, "B": {2}, "C": {3}, "D": {4}, "X": {9}})
    _priced(monitor, {"A": "100", "B": "100", "C": "100", "D": "100", "X": "100"})
    for symbol in "ABCD":
        monitor.on_tick(_tick(symbol, "100.1"))  # the feed's ordinary ticks
    monitor.during = {1: [("X", "60")]}  # a 40 % fall while run 1 is evaluated
    monitor._evaluate_touched()
    assert monitor.evaluated == [1, 9, 2, 3, 4]  # every run once, run 9 right after the tick


def test_an_ordinary_tick_during_a_pass_waits_for_the_next_pass(monitor):
    _watch(monitor, {"A": {1}, "B": {2}, "C": {3}, "X": {9}})
    _priced(monitor, {"A": "100", "B": "100", "C": "100", "X": "100"})
    for symbol in "ABC":
        monitor.on_tick(_tick(symbol, "100.1"))
    monitor.during = {1: [("X", "100.3")]}  # 0.3 %: below the preemption move
    monitor._evaluate_touched()
    assert monitor.evaluated == [1, 2, 3]
    assert monitor._dirty == {("X", "NFO"): pytest.approx(0.003)}  # marked for the next pass
    monitor._evaluate_touched()
    assert monitor.evaluated == [1, 2, 3, 9]
