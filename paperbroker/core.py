"""The Broker: one object holding the clock, instruments, market, engine, faults and accounts."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from paperbroker.accounts import Account, AccountOptions
from paperbroker.clock import Clock
from paperbroker.config import Config
from paperbroker.faults import Faults
from paperbroker.instruments import Master
from paperbroker.market import Market
from paperbroker.orders import Engine
from paperbroker.partial import PartialFills
from paperbroker.ratelimit import RateLimiter
from paperbroker.receipts import OrderReceipts


class Broker:
    """Everything one paper-broker process simulates; transport layers call into it."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.admin_token = cfg.admin_token or secrets.token_urlsafe(24)
        self.admin_token_generated = cfg.admin_token is None
        self.clock = Clock(cfg.start_time, frozen=cfg.deterministic)
        self.market_hooks: list[Callable[[list[str]], None]] = []
        self._build_market()
        self.receipts = OrderReceipts()  # receive times of orders (receipts.py); a rebuilt engine keeps it
        self.engine.listeners.append(self.receipts.on_order)
        self.faults = Faults(seed=cfg.seed, base_latency_ms=cfg.latency_ms)
        self.faults.configure(cfg.faults)
        self.limiter = RateLimiter(cfg.limits(), enabled=cfg.rate_limits_enabled, by=cfg.rate_limit_by)
        self.reject_unknown = cfg.reject_unknown_fields
        self.ws_disconnect: Callable[[str | None], Awaitable[int]] | None = None
        self.retired_keys: set[str] = set()  # deleted accounts' keys, still masked in the log

    def _build_market(self, anchor_epoch: float | None = None, anchor_prices: dict[str, float] | None = None,
                      engine: Engine | None = None) -> None:
        cfg = self.cfg
        self.master = Master()
        self.market = Market(cfg.seed, self.clock, self.master, vol_mult=cfg.volatility, tick_ms=cfg.tick_ms,
                             backfill_days=cfg.backfill_days, anchor_epoch=anchor_epoch,
                             anchor_prices=anchor_prices)
        self.market.listeners.extend(self.market_hooks)
        old = engine
        self.engine = Engine(self.market, real_hours=cfg.market_hours == "real",
                             slippage_ticks=cfg.slippage_ticks)
        if old is not None:
            self.engine.listeners = old.listeners
            self.engine.schedule = old.schedule
            self.engine.default_partial = old.default_partial
            old.open_orders.clear()  # so a part scheduled on the old engine finds nothing to fill
        elif cfg.partial_fills is not None:
            self.engine.default_partial = PartialFills.from_dict(cfg.partial_fills)

    def rebuild_market(self, anchor_epoch: float, anchor_prices: dict[str, float]) -> None:
        """A fresh market anchored at a saved price path, and an empty engine keeping its listeners."""
        self._build_market(anchor_epoch, anchor_prices, engine=self.engine)

    @property
    def accounts(self) -> dict[str, Account]:
        return self.engine.accounts

    def create_account(self, name: str | None = None, apikey: str | None = None,
                       funds: float | None = None, options: dict[str, Any] | None = None) -> Account:
        key = apikey or secrets.token_hex(32)
        if key in self.accounts:
            raise ValueError("an account with this apikey exists")
        acct = Account(key, name or f"paper{len(self.accounts) + 1}",
                       self.cfg.default_funds if funds is None else float(funds),
                       AccountOptions(**(options or {})))
        self.accounts[key] = acct
        self.engine.dirty.add(key)
        return acct

    def delete_account(self, apikey: str) -> bool:
        acct = self.accounts.pop(apikey, None)
        if acct is None:
            return False
        self.retired_keys.add(apikey)
        for oid in [oid for oid, (a, _) in self.engine.open_orders.items() if a is acct]:
            self.engine.open_orders.pop(oid, None)
        self.engine.dirty.add(apikey)
        return True

    def reset(self, keep_accounts: bool = True) -> None:
        """Back to the seed state: fresh prices and books; accounts keep their keys and funds."""
        kept = [(a.apikey, a.name, a.funds, a.options, a.reset_count) for a in self.accounts.values()]
        for key in list(self.accounts):
            self.engine.dirty.add(key)
        self._build_market(engine=self.engine)
        self.faults.configure({})
        self.limiter.clear()
        if keep_accounts:
            for key, name, funds, options, count in kept:
                acct = Account(key, name, funds, options, reset_count=count + 1)
                self.accounts[key] = acct
