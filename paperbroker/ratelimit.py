"""Per-client-IP, per-route moving-window rate limits with OpenAlgo's limit labels."""

from __future__ import annotations

import time
from collections import deque

from paperbroker.config import RateLimit


class RateLimiter:
    """Counts accepted hits per (ip, route) in a moving window; a refused hit is not counted."""

    def __init__(self, limits: dict[str, RateLimit], enabled: bool = True) -> None:
        self.limits = dict(limits)
        self.enabled = enabled
        self._hits: dict[tuple[str, str], deque[float]] = {}

    def hit(self, ip: str, route: str, group: str) -> str | None:
        """Record a hit; returns the limit's label (e.g. ``10 per 1 second``) when it is exceeded."""
        if not self.enabled:
            return None
        limit = self.limits[group]
        now = time.monotonic()
        window = self._hits.get((ip, route))
        if window is None:
            window = self._hits[(ip, route)] = deque()
        edge = now - limit.window
        while window and window[0] <= edge:
            window.popleft()
        if len(window) >= limit.count:
            return limit.label
        window.append(now)
        return None

    def configure(self, enabled: bool | None = None, **counts: int) -> None:
        if enabled is not None:
            self.enabled = enabled
        for group, count in counts.items():
            if group not in self.limits:
                raise KeyError(group)
            self.limits[group] = RateLimit(int(count), self.limits[group].window)
        self._hits.clear()

    def clear(self) -> None:
        self._hits.clear()
