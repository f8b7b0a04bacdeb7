"""Helpers shared by every benchmark in bench/: what machine ran it, repeated rounds, and a summary.

A figure without its machine is not a figure: every benchmark prints ``print_machine()`` first, runs
its measurement in several rounds with ``rounds()`` and prints each figure as ``summarize()`` formats it
(the median, then the spread min–max), so a run on a loaded machine is visible as such.

API (kept small and stable; other benchmarks import it):

- ``machine() -> dict``: ``cpu_model``, ``cores``, ``load`` (1/5/15-minute load averages).
- ``print_machine(file=sys.stdout)``: prints those three as one block.
- ``rounds(fn, n=3) -> list[T]``: calls ``fn()`` ``n`` times and returns the results in order.
- ``summarize(values, unit="", digits=1) -> Summary``: median, min and max of numbers; ``str()`` of
  the result reads ``"12.3 ms (min 11.0 – max 14.2, n=3)"``.

Example::

    from bench._common import print_machine, rounds, summarize

    print_machine()
    times = rounds(lambda: measure_once(), n=5)
    print("create_app:", summarize(times, unit="ms"))
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TextIO

__all__ = ["Summary", "cpu_model", "machine", "print_machine", "rounds", "summarize"]


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or platform.processor() where there is none."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "cpu model"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine() -> dict[str, Any]:
    """CPU model, usable core count and the 1/5/15-minute load averages of this machine."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        load: tuple[float, float, float] = os.getloadavg()
    except OSError:
        load = (float("nan"), float("nan"), float("nan"))
    return {"cpu_model": cpu_model(), "cores": cores, "load": load}


def print_machine(file: TextIO | None = None) -> None:
    """Print the CPU model, core count and load average (1/5/15) before any figure."""
    out = file or sys.stdout
    info = machine()
    one, five, fifteen = info["load"]
    print(f"CPU:          {info['cpu_model']}", file=out)
    print(f"Cores:        {info['cores']}", file=out)
    print(f"Load average: {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min)", file=out)
    print(f"Python:       {platform.python_version()} ({sys.executable})", file=out)
    out.flush()


def rounds[T](fn: Callable[[], T], n: int = 3) -> list[T]:
    """Call ``fn()`` ``n`` times (n >= 1) one after another; return the results in call order."""
    if n < 1:
        raise ValueError("rounds: n must be at least 1")
    return [fn() for _ in range(n)]


@dataclass(frozen=True)
class Summary:
    """Median and spread of one figure over several rounds."""

    median: float
    min: float
    max: float
    n: int
    unit: str = ""
    digits: int = 1

    def __str__(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        d = self.digits
        return f"{self.median:.{d}f}{unit} (min {self.min:.{d}f} – max {self.max:.{d}f}, n={self.n})"


def summarize(values: Iterable[float], unit: str = "", digits: int = 1) -> Summary:
    """Median, min and max of ``values`` (at least one); ``str()`` of the result is the printed form."""
    data = [float(v) for v in values]
    if not data:
        raise ValueError("summarize: no values")
    return Summary(statistics.median(data), min(data), max(data), len(data), unit, digits)


def fresh_postgres(url: str) -> str:
    """Drop and create the bench database named in `url` (connecting to the server's postgres db);
    returns the URL to use."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from config import normalize_database_url

    target = make_url(normalize_database_url(url))
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}"'))
        conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    return target.render_as_string(hide_password=False)
