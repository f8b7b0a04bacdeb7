"""Exceptions of the execution engine, named by what the caller must do.

Every class derives from app.exceptions.AlgoMirrorError, so `user_message` is safe to show.
"""

from __future__ import annotations

from datetime import datetime

from app.exceptions import AlgoMirrorError


class EngineOffline(AlgoMirrorError):
    """No background process holds the services lease: refuse the action instead of queueing it."""

    user_message = ("The order engine is offline: no background process holds the services lease; "
                    "nothing was queued.")


class TradingHalted(AlgoMirrorError):
    """An admin halted trading: no new entries until the halt is lifted. Report, never retry."""

    def __init__(self, reason: str, *, set_by: str | None = None, set_at: datetime | None = None):
        self.reason = reason
        self.set_by = set_by
        self.set_at = set_at
        super().__init__(f"Trading is halted by an administrator: {reason}. "
                         "No new orders are accepted until the halt is lifted.")


class InvalidHaltRequest(AlgoMirrorError):
    """A halt was asked for without a usable reason; fix the input."""

    user_message = "Give a reason for halting trading."


class ExecutionRefused(AlgoMirrorError):
    """Execute was refused before anything was written (no accounts, a leg that does not resolve,
    an expired contract, the market closed, the market-data account down): the message says why."""

    user_message = "The strategy was not executed."
