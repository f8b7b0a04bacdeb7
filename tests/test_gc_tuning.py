"""settle_heap freezes what start-up left alive, and later garbage is still collected (in a
subprocess: freezing the test process would keep every test's cycles for the session)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import gc
from app import create_app
from app.gc_tuning import settle_heap
app = create_app("testing")
kept = [object() for _ in range(3)] + [{}]
frozen = settle_heap()
assert frozen == gc.get_freeze_count() > 10_000, frozen
tracked = {id(o) for o in gc.get_objects()}
assert id(kept[-1]) not in tracked and id(app) not in tracked  # frozen: no collection scans them
class Node:
    pass
a, b = Node(), Node()
a.other, b.other = b, a
del a, b
assert gc.collect() >= 2  # a cycle made afterwards is still garbage
print("ok")
"""


def test_settle_heap_freezes_start_up_objects_and_still_collects_later_cycles():
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "APP_ENV": "testing", "LOG_TO_FILE": "false"})
    assert result.returncode == 0 and result.stdout.strip().splitlines()[-1] == "ok", result.stderr[-2000:]
