"""The simulated clock: real time plus an offset, or frozen (deterministic mode)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from paperbroker.nse_calendar import IST


class Clock:
    """Aware-UTC simulated time. Frozen clocks move only through ``set`` and ``advance``."""

    def __init__(self, start: datetime | None = None, frozen: bool = False) -> None:
        self._frozen: float | None = None
        self._offset = 0.0
        self.set(start or datetime.now(UTC), frozen)

    @property
    def frozen(self) -> bool:
        return self._frozen is not None

    def epoch(self) -> float:
        if self._frozen is not None:
            return self._frozen
        return time.time() + self._offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.epoch(), UTC)

    def now_ist(self) -> datetime:
        return datetime.fromtimestamp(self.epoch(), IST)

    def set(self, when: datetime, frozen: bool | None = None) -> None:
        """Jump to ``when`` (aware); ``frozen`` None keeps the current mode."""
        target = when.timestamp()
        keep_frozen = self.frozen if frozen is None else frozen
        if keep_frozen:
            self._frozen = target
        else:
            self._frozen = None
            self._offset = target - time.time()

    def advance(self, seconds: float) -> None:
        if self._frozen is not None:
            self._frozen += seconds
        else:
            self._offset += seconds

    def snapshot(self) -> dict[str, float | bool]:
        return {"epoch": self.epoch(), "frozen": self.frozen}
