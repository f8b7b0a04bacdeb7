"""Fault injection: what a real broker does wrong, on demand, globally or per account.

Rejections (``reject_rate`` > 0) apply to the order-placing routes only (``ORDER_ROUTES``, narrowed
further by ``routes``); a rate of 1.0 rejects every matching request. The text is ``reject_message``
when given, else a broker-like RMS message for ``reject_reason``:

- ``margin``: ``RMS:Margin Exceeds,Required:<required>, Available:<shown> for <symbol> (<exchange>
  <product>)`` where Required is the order's margin (its value when it adds no margin) and the shown
  available amount is the lower of the real one and 80 % of Required, so the text reads as a shortfall;
- ``rms_block``: ``RMS:Blocked for trading in <segment> segment for this client; contact the RMS desk``.

``reject_mode`` ``http``: the order is refused with HTTP 400 ``{"status":"error","message":<text>}``
and nothing is recorded (inside basket/split/multi-leg orders: a per-item error). ``order``: the
request succeeds with an orderid and the order is recorded at once as ``rejected`` with
``rejection_reason`` = text (plus one ``order_update`` frame). Ordinary checks (lot size, margin, ...)
run first and answer as usual.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields
from typing import Any

DROP, LOST, ERROR_500, EXPIRED, STORM = "drop", "lost", "error_500", "session_expired", "rate_limit"
ORDER_ROUTES = frozenset({"placeorder", "placesmartorder", "basketorder", "splitorder", "optionsorder",
                          "optionsmultiorder"})
REJECT_REASONS = ("margin", "rms_block")
REJECT_MODES = ("http", "order")
BAD_TICKS = {"zero": 0, "text": "N/A"}  # what a bad_ticks fault puts in a market_data frame's ltp
SEGMENTS = {"NSE": "NSE Cash", "BSE": "BSE Cash", "NFO": "NSE F&O", "BFO": "BSE F&O"}


@dataclass(frozen=True, slots=True)
class RejectFault:
    """A drawn rejection: how to reject (``mode``) and with which text."""

    mode: str
    reason: str
    message: str | None = None

    def text(self, symbol: str, exchange: str, product: str, required: float, available: float) -> str:
        """The rejection text for one order (``required`` / ``available``: its margin and the account's)."""
        if self.message:
            return self.message
        if self.reason == "rms_block":
            segment = SEGMENTS.get(exchange, exchange)
            return f"RMS:Blocked for trading in {segment} segment for this client; contact the RMS desk"
        shown = min(available, required * 0.8)
        return (f"RMS:Margin Exceeds,Required:{required:.2f}, Available:{max(shown, 0.0):.2f} "
                f"for {symbol} ({exchange} {product})")


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
    bad_ticks: str | None = None  # market_data frames carry a bad ltp: "zero" (0) or "text" ("N/A")
    reject_rate: float = 0.0  # order-placing requests rejected with a broker (RMS) message
    reject_reason: str = "margin"  # "margin" or "rms_block" (see the module docstring)
    reject_message: str | None = None  # free text overriding reject_reason's message
    reject_mode: str = "http"  # "http": 400, nothing placed; "order": an orderid, order "rejected"
    routes: list[str] | None = None  # only these endpoints (e.g. ["placeorder"]); None = all

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultSpec:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown fault keys: {', '.join(unknown)}")
        spec = cls(**data)
        for name in ("error_rate", "rate_limit_rate", "drop_rate", "lost_response_rate", "reject_rate"):
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
        if spec.reject_reason not in REJECT_REASONS:
            raise ValueError(f"reject_reason must be one of: {', '.join(REJECT_REASONS)}")
        if spec.reject_mode not in REJECT_MODES:
            raise ValueError(f"reject_mode must be one of: {', '.join(REJECT_MODES)}")
        if spec.bad_ticks is not None and spec.bad_ticks not in BAD_TICKS:
            raise ValueError(f"bad_ticks must be one of: {', '.join(BAD_TICKS)}")
        if spec.reject_message is not None and not (isinstance(spec.reject_message, str) and spec.reject_message):
            raise ValueError("reject_message must be a non-empty string")
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
    reject: RejectFault | None = None  # reject the orders this request places


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
            if (d.reject is None and spec.reject_rate and route in ORDER_ROUTES
                    and (spec.reject_rate >= 1.0 or self.rng.random() < spec.reject_rate)):
                d.reject = RejectFault(spec.reject_mode, spec.reject_reason, spec.reject_message)
            if d.after is None and spec.lost_response_rate and self.rng.random() < spec.lost_response_rate:
                d.after = LOST
            d.after_delay += spec.response_delay_ms / 1000.0
        return d

    def bad_tick(self, apikey: str | None) -> str | None:
        """The bad ltp kind ("zero" / "text") of the market frames sent to this account, or None."""
        spec = self.accounts.get(apikey) if apikey else None
        if spec is not None and spec.bad_ticks:
            return spec.bad_ticks
        return self.global_spec.bad_ticks

    def ws_disconnect_period(self, apikey: str | None) -> float:
        spec = self.accounts.get(apikey) if apikey else None
        if spec is not None and spec.ws_disconnect_every_s:
            return spec.ws_disconnect_every_s
        return self.global_spec.ws_disconnect_every_s
