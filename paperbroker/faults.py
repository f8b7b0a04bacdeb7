"""Fault injection: what a real broker does wrong, on demand, globally or per account."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields
from typing import Any

DROP, LOST, ERROR_500, EXPIRED, STORM = "drop", "lost", "error_500", "session_expired", "rate_limit"


@dataclass(slots=True)
class FaultSpec:
    """One set of faults. Rates are probabilities per request in [0, 1]."""

    latency_ms: float = 0.0  # added before the request is handled
    jitter_ms: float = 0.0  # uniform extra latency in [0, jitter_ms]
    error_rate: float = 0.0  # HTTP 500 broker error, request not processed
    session_expired: bool = False  # 403 "Invalid openalgo apikey": the broker logged out
    rate_limit_rate: float = 0.0  # a 429 storm, whatever the real count
    drop_rate: float = 0.0  # connection closed before the request is processed
    lost_response_rate: float = 0.0  # request processed, then the connection is cut
    response_delay_ms: float = 0.0  # request processed, response held back (client timeouts)
    ws_disconnect_every_s: float = 0.0  # WebSocket connections are dropped this often
    routes: list[str] | None = None  # only these endpoints (e.g. ["placeorder"]); None = all

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultSpec:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown fault keys: {', '.join(unknown)}")
        spec = cls(**data)
        for name in ("error_rate", "rate_limit_rate", "drop_rate", "lost_response_rate"):
            value = float(getattr(spec, name))
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
            setattr(spec, name, value)
        if spec.latency_ms < 0 or spec.jitter_ms < 0 or spec.response_delay_ms < 0:
            raise ValueError("latencies must be >= 0")
        if spec.routes is not None and not (
            isinstance(spec.routes, list) and all(isinstance(r, str) for r in spec.routes)
        ):
            raise ValueError("routes must be a list of endpoint names")
        return spec

    def applies_to(self, route: str) -> bool:
        return self.routes is None or route in self.routes

    @property
    def active(self) -> bool:
        return self != FaultSpec(routes=self.routes)


@dataclass(slots=True)
class Decision:
    """What to do with one request."""

    delay: float = 0.0  # seconds before handling
    before: str | None = None  # DROP, ERROR_500, EXPIRED or STORM: answer without handling
    after: str | None = None  # LOST: handle, then cut the connection
    after_delay: float = 0.0  # seconds to hold the response after handling


class Faults:
    """Global and per-account fault specs; ``decide`` draws from a seeded generator."""

    def __init__(self, seed: int = 0, base_latency_ms: float = 0.0) -> None:
        self.rng = random.Random(seed)
        self.base_latency_ms = base_latency_ms
        self.global_spec = FaultSpec()
        self.accounts: dict[str, FaultSpec] = {}

    def configure(self, data: dict[str, Any]) -> None:
        """Replace all faults: ``{"global": {...}, "accounts": {"<apikey>": {...}}}``."""
        self.global_spec = FaultSpec.from_dict(data.get("global", {}))
        self.accounts = {k: FaultSpec.from_dict(v) for k, v in data.get("accounts", {}).items()}

    def set(self, spec: dict[str, Any], apikey: str | None = None) -> None:
        parsed = FaultSpec.from_dict(spec)
        if apikey is None:
            self.global_spec = parsed
        else:
            self.accounts[apikey] = parsed

    def clear(self, apikey: str | None = None) -> None:
        if apikey is None:
            self.global_spec = FaultSpec()
            self.accounts.clear()
        else:
            self.accounts.pop(apikey, None)

    def snapshot(self) -> dict[str, Any]:
        return {"global": asdict(self.global_spec), "accounts": {k: asdict(v) for k, v in self.accounts.items()},
                "base_latency_ms": self.base_latency_ms}

    @property
    def any_account_faults(self) -> bool:
        return bool(self.accounts)

    def decide(self, route: str, apikey: str | None) -> Decision:
        d = Decision(delay=self.base_latency_ms / 1000.0)
        specs = [self.global_spec]
        if apikey is not None and apikey in self.accounts:
            specs.append(self.accounts[apikey])
        for spec in specs:
            if not spec.applies_to(route):
                continue
            d.delay += (spec.latency_ms + (self.rng.uniform(0, spec.jitter_ms) if spec.jitter_ms else 0)) / 1000
            if d.before is None:
                if spec.drop_rate and self.rng.random() < spec.drop_rate:
                    d.before = DROP
                elif spec.session_expired:
                    d.before = EXPIRED
                elif spec.rate_limit_rate and self.rng.random() < spec.rate_limit_rate:
                    d.before = STORM
                elif spec.error_rate and self.rng.random() < spec.error_rate:
                    d.before = ERROR_500
            if d.after is None and spec.lost_response_rate and self.rng.random() < spec.lost_response_rate:
                d.after = LOST
            d.after_delay += spec.response_delay_ms / 1000.0
        return d

    def ws_disconnect_period(self, apikey: str | None) -> float:
        spec = self.accounts.get(apikey) if apikey else None
        if spec is not None and spec.ws_disconnect_every_s:
            return spec.ws_disconnect_every_s
        return self.global_spec.ws_disconnect_every_s
