"""Typed configuration for the paper broker, built from the command line and an optional JSON file."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from paperbroker.partial import PartialFills

LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(ValueError):
    """A bad command-line option or config-file value; the process must not start."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A moving-window limit: ``count`` requests per ``window`` seconds, with OpenAlgo's label."""

    count: int
    window: float

    @property
    def label(self) -> str:
        if self.window == 60:
            return f"{self.count} per 1 minute"
        return f"{self.count} per {int(self.window)} second"


@dataclass(slots=True)
class Config:
    """Every deployment setting of one paper-broker process."""

    host: str = "127.0.0.1"
    port: int = 5100
    ws_port: int = 8770
    seed: int = 42
    latency_ms: float = 0.0
    accounts: int = 0
    state: str | None = None
    market_hours: str = "24x7"
    deterministic: bool = False
    start_time: datetime | None = None
    admin_token: str | None = None
    tick_ms: int = 500
    volatility: float = 1.0
    slippage_ticks: int = 0
    default_funds: float = 1_000_000.0
    backfill_days: int = 20
    ws_auth_timeout: float = 15.0
    rate_limits_enabled: bool = True
    rate_limit_by: str = "ip"  # "ip" (OpenAlgo's key) or "apikey": one counter per API key
    order_rate: int = 10
    smart_order_rate: int = 10
    api_rate: int = 50
    greeks_rate_per_min: int = 30
    reject_unknown_fields: bool = True
    log_level: str = "info"
    faults: dict[str, Any] = field(default_factory=dict)
    partial_fills: dict[str, Any] | None = None  # default partial-fill spec of every account (partial.py)

    def limits(self) -> dict[str, RateLimit]:
        return {
            "order": RateLimit(self.order_rate, 1.0),
            "smart": RateLimit(self.smart_order_rate, 1.0),
            "api": RateLimit(self.api_rate, 1.0),
            "greeks": RateLimit(self.greeks_rate_per_min, 60.0),
        }


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"not an ISO date-time: {value!r}") from exc
    if parsed.tzinfo is None:
        raise ConfigError(f"start time needs a UTC offset, e.g. 2026-01-05T10:00:00+05:30: {value!r}")
    return parsed


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paperbroker", description="OpenAlgo-compatible paper broker")
    p.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="HTTP port (default 5100; 0 = any free port)")
    p.add_argument("--ws-port", type=int, default=None, help="WebSocket port (default 8770; 0 = any)")
    p.add_argument("--seed", type=int, default=None, help="random seed of the market model (default 42)")
    p.add_argument("--latency-ms", type=float, default=None, help="fixed latency added to every API call")
    p.add_argument("--config", default=None, help="JSON file with any of these options and 'faults'")
    p.add_argument("--accounts", type=int, default=None, help="provision N accounts at start")
    p.add_argument("--state", default=None, help="SQLite file for persistent state (default: memory)")
    p.add_argument("--market-hours", choices=["24x7", "real"], default=None)
    p.add_argument("--deterministic", action="store_true", default=None,
                   help="prices move only through /sim/ calls; the clock is frozen")
    p.add_argument("--start-time", default=None, help="initial simulated time, ISO 8601 with offset")
    p.add_argument("--admin-token", default=None, help="admin token (else PAPERBROKER_ADMIN_TOKEN or random)")
    p.add_argument("--tick-ms", type=int, default=None, help="random-walk tick period (default 500)")
    p.add_argument("--volatility", type=float, default=None, help="volatility multiplier (default 1.0)")
    p.add_argument("--slippage-ticks", type=int, default=None, help="MARKET order slippage in ticks")
    p.add_argument("--ws-auth-timeout", type=float, default=None, help="seconds to authenticate (15)")
    p.add_argument("--no-rate-limit", action="store_true", default=None, help="disable rate limits")
    p.add_argument("--rate-limit-by", choices=["ip", "apikey"], default=None,
                   help="count rate limits per client IP (default, as OpenAlgo) or per API key")
    p.add_argument("--order-rate", type=int, default=None, help="order routes per second (10)")
    p.add_argument("--api-rate", type=int, default=None, help="other routes per second (50)")
    p.add_argument("--log-level", choices=LOG_LEVELS, default=None, help="stderr log level (default info)")
    return p


_CLI_TO_FIELD = {"no_rate_limit": "rate_limits_enabled"}


def load_config(argv: list[str] | None = None) -> Config:
    """Parse ``argv`` (and the ``--config`` JSON file it names) into a Config.

    Command-line options win over the file; the file wins over defaults.
    Raises ConfigError on any invalid value.
    """
    args = build_parser().parse_args(argv)
    values: dict[str, Any] = {}
    if args.config:
        try:
            raw = json.loads(Path(args.config).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read config file {args.config}: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError("config file must hold a JSON object")
        values.update({k.replace("-", "_"): v for k, v in raw.items()})
    for key, value in vars(args).items():
        if key == "config" or value is None:
            continue
        if key == "no_rate_limit":
            values["rate_limits_enabled"] = not value
            continue
        values[_CLI_TO_FIELD.get(key, key)] = value
    known = {f.name for f in fields(Config)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
    if isinstance(values.get("start_time"), str):
        values["start_time"] = _parse_time(values["start_time"])
    if values.get("admin_token") is None and os.environ.get("PAPERBROKER_ADMIN_TOKEN"):
        values["admin_token"] = os.environ["PAPERBROKER_ADMIN_TOKEN"]
    cfg = Config(**values)
    if cfg.log_level not in LOG_LEVELS:
        raise ConfigError(f"log_level must be one of: {', '.join(LOG_LEVELS)}")
    if cfg.market_hours not in ("24x7", "real"):
        raise ConfigError("market_hours must be '24x7' or 'real'")
    if cfg.tick_ms <= 0 or cfg.accounts < 0 or cfg.latency_ms < 0:
        raise ConfigError("tick_ms must be > 0; accounts and latency_ms must be >= 0")
    if not isinstance(cfg.faults, dict):
        raise ConfigError("faults must be a JSON object")
    if cfg.rate_limit_by not in ("ip", "apikey"):
        raise ConfigError("rate_limit_by must be 'ip' or 'apikey'")
    if cfg.partial_fills is not None:
        try:
            PartialFills.from_dict(cfg.partial_fills)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"partial_fills: {exc}") from exc
    return cfg
