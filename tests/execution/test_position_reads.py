"""The engine's position-book reads for the exit manager: every read ends in an answer."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app.services.execution import position_reads
from app.services.execution.position_reads import PositionRead, PositionReads


def _inline(key, job, *args):  # the engine's _submit, run at once
    job(*args)
    return 1


class _BrokenSession:
    """A session whose first read fails (a locked database, a dropped connection)."""

    def __init__(self, rollback_fails: bool = False):
        self.rolled_back = False
        self.rollback_fails = rollback_fails

    def get(self, *_args):
        raise RuntimeError("database is locked at SELECT api_key_encrypted")

    def rollback(self):
        self.rolled_back = True
        if self.rollback_fails:
            raise ConnectionError("server closed the connection unexpectedly")


@pytest.mark.parametrize("rollback_fails", [False, True])
def test_a_read_that_raises_anything_is_answered_with_its_error_type(monkeypatch, rollback_fails):
    """Not only a broker error: the answer names the type (the details, which may quote SQL, go
    to the log, not to the run page), and the failed transaction is rolled back; a rollback
    that fails too (the connection is gone) still ends in an answer."""
    session = _BrokenSession(rollback_fails)
    monkeypatch.setattr(position_reads, "db", SimpleNamespace(session=session))
    answer = PositionRead(None, "RuntimeError (details in the log)")
    assert position_reads.read_now(7) == answer
    assert session.rolled_back
    reads = PositionReads(_inline)
    assert reads.get("exit:1/ra:1", 7) is None  # started
    assert reads.get("exit:1/ra:1", 7) == answer


def test_an_answer_older_than_fresh_seconds_is_read_again(monkeypatch):
    calls = []
    monkeypatch.setattr(position_reads, "read_now", lambda account_id: calls.append(account_id) or PositionRead({}))
    clock = [1000.0]
    monkeypatch.setattr(position_reads.time, "monotonic", lambda: clock[0])
    reads = PositionReads(_inline)
    assert reads.get("k", 3) is None
    clock[0] += position_reads.FRESH_SECONDS + 0.1
    assert reads.get("k", 3) is None  # the old answer was dropped: read again
    assert reads.get("k", 3) == PositionRead({})
    assert calls == [3, 3]
