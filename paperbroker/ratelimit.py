"""Per-route moving-window rate limits with OpenAlgo's limit labels, counted per client IP or per API key.

OpenAlgo counts per client address (``by="ip"``, the default). With ``by="apikey"`` the counter key is
the request's ``apikey`` (JSON body for POST routes, query string for GET routes), so several accounts
behind one address each get the full limit; a request without a usable key falls back to its address.
A refused hit is not counted, and a 429 answers ``{"message": "<label>"}`` either way.
"""

from __future__ import annotations

import time
from collections import deque

from paperbroker.config import RateLimit

BY_CHOICES = ("ip", "apikey")


class RateLimiter:
    """Counts accepted hits per (client, route) in a moving window; a refused hit is not counted."""

    def __init__(self, limits: dict[str, RateLimit], enabled: bool = True, by: str = "ip") -> None:
        if by not in BY_CHOICES:
            raise ValueError(f"rate limit 'by' must be one of: {', '.join(BY_CHOICES)}")
        self.limits = dict(limits)
        self.enabled = enabled
        self.by = by
        self._hits: dict[tuple[str, str], deque[float]] = {}

    def client_key(self, ip: str, apikey: object) -> str:
        """The counter key of one request: its address, or its API key when counting by key."""
        if self.by == "apikey" and isinstance(apikey, str) and apikey:
            return "key:" + apikey  # prefixed so a key can never share an address's counter
        return "ip:" + ip

    def hit(self, client: str, route: str, group: str) -> str | None:
        """Record a hit of ``client`` (see ``client_key``) on ``route``.

        Returns the limit's label (e.g. ``10 per 1 second``) when the limit is exceeded, else None.
        """
        if not self.enabled:
            return None
        limit = self.limits[group]
        now = time.monotonic()
        window = self._hits.get((client, route))
        if window is None:
            window = self._hits[(client, route)] = deque()
        edge = now - limit.window
        while window and window[0] <= edge:
            window.popleft()
        if len(window) >= limit.count:
            return limit.label
        window.append(now)
        return None

    def configure(self, enabled: bool | None = None, by: str | None = None, **counts: int) -> None:
        """Change the switch, the counting key and per-group counts; every counter restarts."""
        if by is not None and by not in BY_CHOICES:
            raise ValueError(f"rate limit 'by' must be one of: {', '.join(BY_CHOICES)}")
        unknown = sorted(set(counts) - set(self.limits))
        if unknown:
            raise KeyError(", ".join(unknown))
        if enabled is not None:
            self.enabled = enabled
        if by is not None:
            self.by = by
        for group, count in counts.items():
            if group not in self.limits:
                raise KeyError(group)
            self.limits[group] = RateLimit(int(count), self.limits[group].window)
        self._hits.clear()

    def clear(self) -> None:
        self._hits.clear()
