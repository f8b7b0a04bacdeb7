"""The garbage collector of a long-running AlgoMirror process.

A full collection scans every tracked object; after start-up that is well over a million
(SQLAlchemy's mappers, Flask, the SDK with pandas and numpy), none of which will ever be
garbage. Measured on the order engine (bench/execution.py, docs/benchmarks.md): one full
collection per Execute, 130-150 ms with the GIL held, on whichever thread allocated last (an
order's send job, the Execute request). `settle_heap()` collects once and then freezes what
survives (gc.freeze: moved to a permanent generation that collections skip), so later
collections scan only what the process allocated since.

Called once per process by the entry points (app.py for the web workers, `flask services`, the
benchmarks), never by create_app: a test session builds hundreds of apps, and freezing each would
keep their reference cycles for the whole session.
"""

from __future__ import annotations

import gc
import logging
import time

logger = logging.getLogger(__name__)


def settle_heap() -> int:
    """Collect, then freeze every surviving object; returns how many are frozen."""
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    logger.info("Heap settled: %d objects frozen out of collections (%.0f ms)", frozen,
                (time.perf_counter() - started) * 1000)
    return frozen
