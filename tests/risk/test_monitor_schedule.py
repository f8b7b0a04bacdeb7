"""The monitor's own schedule: its once-a-second refresh gives way to an exit it has just asked for."""

from __future__ import annotations

import time

import pytest


def test_the_refresh_waits_while_an_exit_just_asked_for_is_sent_but_never_more_than_a_second(app, monkeypatch):
    from app.services.risk import monitor as monitor_module
    from app.services.risk.monitor import EXIT_QUIET_SECONDS, REFRESH_DEFER_MAX_SECONDS, RiskMonitor

    monitor = RiskMonitor(app)
    now = time.monotonic()
    monitor._next_refresh = now
    assert monitor._refresh_due() == now  # nothing asked for: on time

    asked: list[object] = []
    monkeypatch.setattr(monitor_module.actions, "act", lambda book, decision: asked.append(decision) or True)
    assert monitor._act(object(), "breach")  # type: ignore[arg-type]
    assert asked == ["breach"]
    assert monitor._refresh_due() == pytest.approx(time.monotonic() + EXIT_QUIET_SECONDS, abs=0.05)

    monitor._quiet_until = now + 60  # exits asked for one after another: still at most a second late
    assert monitor._refresh_due() == now + REFRESH_DEFER_MAX_SECONDS
