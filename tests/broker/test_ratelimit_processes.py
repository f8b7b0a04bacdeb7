"""Two OS processes, each with its own client, burst reads at one paper-broker account that
enforces OpenAlgo's 50 reads/s: with Redis pacing the broker refuses nothing; without it (the
control) the same burst is refused, so the first test can fail."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.paperbroker import BrokerProc, start_broker

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]
PER_PROCESS = 100
DEADLINE = 180.0  # seconds; process start-up on a busy machine included


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("TEST_REDIS_URL not set")
    return url


@pytest.fixture
def limited_broker() -> Iterator[BrokerProc]:
    broker = start_broker("--api-rate", "50", accounts=1)
    yield broker
    broker.stop()


def _lines(proc: subprocess.Popen[str], out: queue.Queue[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        out.put(line.strip())


def burst_from_two_processes(broker: BrokerProc, redis_url: str) -> tuple[list[dict], float]:
    """Start two burst processes, release them together, return their results and the seconds
    from the release until both answered."""
    prefix = f"algomirror-test-pacing-{uuid.uuid4().hex[:8]}"
    args = [sys.executable, "-m", "tests.support.pacing_burst", broker.url, broker.keys[0], str(PER_PROCESS),
            redis_url, prefix]
    procs = [subprocess.Popen(args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs: list[queue.Queue[str]] = []
    try:
        for proc in procs:
            lines: queue.Queue[str] = queue.Queue()
            threading.Thread(target=_lines, args=(proc, lines), daemon=True).start()
            outputs.append(lines)
        for lines in outputs:
            assert lines.get(timeout=DEADLINE) == "ready"
        released = time.monotonic()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [json.loads(lines.get(timeout=DEADLINE)) for lines in outputs]
        elapsed = time.monotonic() - released
        for proc in procs:
            assert proc.wait(timeout=DEADLINE) == 0
        return results, elapsed
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_two_processes_sharing_redis_pacing_get_no_429(limited_broker, redis_url):
    results, elapsed = burst_from_two_processes(limited_broker, redis_url)

    assert results == [{"ok": PER_PROCESS, "http_429": 0, "other": {}}] * 2
    # 200 reads through one shared 50/s window: the last 50 cannot start before 3 windows passed.
    assert elapsed >= 3.0


def test_two_processes_pacing_alone_get_429_control(limited_broker, redis_url):
    # Runs only beside the Redis test above, whose burst it shows to be strong enough to fail.
    results, _elapsed = burst_from_two_processes(limited_broker, "-")

    assert [r["ok"] + r["http_429"] for r in results] == [PER_PROCESS] * 2
    assert all(r["other"] == {} for r in results)
    assert sum(r["http_429"] for r in results) > 0  # each process kept 50/s, together they did not
