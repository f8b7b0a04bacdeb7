"""Pure engine decisions: phase readiness, final rejections, failure policies, account outcome."""

from __future__ import annotations

import pytest

from app.domain.execution_policy import (
    AccountOutcome,
    FailureAction,
    IntentView,
    account_outcome,
    blocked,
    entry_phase,
    is_final_rejection,
    on_failed_entry,
    ready_phase,
)
from app.domain.order_lifecycle import IntentState as S


def v(i, phase, state, filled=0, replaces=None):
    return IntentView(id=i, phase=phase, state=state, quantity=65, filled_quantity=filled, replaces_intent_id=replaces)


def test_entry_phase_buy_zero_sell_one():
    assert (entry_phase("BUY"), entry_phase("sell")) == (0, 1)


def test_ready_phase_sell_waits_until_every_buy_filled():
    assert ready_phase([v(1, 0, S.PLANNED), v(2, 1, S.PLANNED)]) == 0
    assert ready_phase([v(1, 0, S.ACCEPTED), v(2, 1, S.PLANNED)]) is None
    assert ready_phase([v(1, 0, S.FILLED), v(2, 0, S.PARTIALLY_FILLED), v(3, 1, S.PLANNED)]) is None
    assert ready_phase([v(1, 0, S.FILLED), v(2, 0, S.FILLED), v(3, 1, S.PLANNED)]) == 1
    assert ready_phase([v(1, 0, S.FILLED)]) is None


def test_ready_phase_superseded_attempt_counts_through_its_replacement():
    rows = [v(1, 0, S.REJECTED), v(2, 1, S.PLANNED), v(3, 0, S.FILLED, replaces=1)]
    assert ready_phase(rows) == 1 and not blocked(rows)


def test_blocked_when_lower_phase_failed():
    assert blocked([v(1, 0, S.REJECTED), v(2, 1, S.PLANNED)])
    assert not blocked([v(1, 0, S.ACCEPTED), v(2, 1, S.PLANNED)])


@pytest.mark.parametrize("reason", [
    "RMS:Margin Exceeds,Required:12500.00, Available:10000.00 for SBIN (NSE CNC)",
    "RMS:Blocked for trading in NSE F&O segment for this client; contact the RMS desk",
    "Invalid symbol NIFTYX", "insufficient funds", "something we have never seen", "", None])
def test_is_final_rejection_final_reasons_true(reason):
    assert is_final_rejection(reason) is True


@pytest.mark.parametrize("reason", ["Rate limit exceeded", "Please try again", "Request timed out",
                                    "Exchange not connected", "Service temporarily unavailable"])
def test_is_final_rejection_transient_reasons_false(reason):
    assert is_final_rejection(reason) is False


def test_on_failed_entry_not_placed_resent_once_then_policy():
    kw = {"retry_limit": 0, "reason": None, "resend_not_placed": True}
    assert on_failed_entry("report", state=S.NOT_PLACED, attempt=1, **kw) is FailureAction.RETRY
    assert on_failed_entry("report", state=S.NOT_PLACED, attempt=2, **kw) is FailureAction.REPORT
    assert on_failed_entry("unwind", state=S.NOT_PLACED, attempt=2, **kw) is FailureAction.UNWIND


def test_on_failed_entry_retry_only_non_final_within_limit():
    kw = {"retry_limit": 2, "resend_not_placed": False}
    assert on_failed_entry("retry", state=S.REJECTED, attempt=1, reason="try again", **kw) is FailureAction.RETRY
    assert on_failed_entry("retry", state=S.REJECTED, attempt=2, reason="try again", **kw) is FailureAction.RETRY
    assert on_failed_entry("retry", state=S.REJECTED, attempt=3, reason="try again", **kw) is FailureAction.REPORT
    assert on_failed_entry("retry", state=S.REJECTED, attempt=1, reason="RMS:Margin Exceeds", **kw) \
        is FailureAction.REPORT
    assert on_failed_entry("retry", state=S.CANCELLED, attempt=1, reason=None, **kw) is FailureAction.REPORT
    assert on_failed_entry("report", state=S.REJECTED, attempt=1, reason="try again", **kw) is FailureAction.REPORT


def test_account_outcome_open_partial_failed():
    assert account_outcome([v(1, 0, S.FILLED, 65), v(2, 1, S.FILLED, 65)]) is AccountOutcome.OPEN
    assert account_outcome([v(1, 0, S.FILLED, 65), v(2, 1, S.REJECTED)]) is AccountOutcome.PARTIAL
    assert account_outcome([v(1, 0, S.REJECTED), v(2, 1, S.NOT_PLACED)]) is AccountOutcome.FAILED
    assert account_outcome([v(1, 0, S.REJECTED), v(2, 0, S.FILLED, 65, replaces=1)]) is AccountOutcome.OPEN


def test_reconcile_reads_span_at_least_the_read_timeout():
    from app.domain.execution_policy import reconcile_reads

    assert reconcile_reads(3, 1.0, 10.0) == 11  # (11 − 1) × 1 s = the 10 s timeout
    assert reconcile_reads(3, 0.3, 3.0) == 11
    assert reconcile_reads(3, 0.3, 0.5) == 3  # the configured number when it spans more already
    assert reconcile_reads(20, 1.0, 10.0) == 20
    assert reconcile_reads(0, 0.0, 10.0) == 1
