"""The background services of issue 4, run by the leader process (app.services.runner).

- ConnectionMonitor: pings every active account, applies the 3-strike rule, and moves each
  user's market data to a healthy account (and back).
- AccountDataRefresher: keeps the funds / positions / holdings cache current.
- MarketDataFeed: one WebSocket per OpenAlgo host, fed by each user's market-data account,
  subscribed to the index underlyings; prices land in the process's LastPriceCache.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import select

from app.broker.errors import HostNotAllowed
from app.domain.instruments import UNDERLYINGS
from app.extensions import db
from app.models.accounts import TradingAccount
from app.services.account_data import refresher
from app.services.accounts import account_urls_allowed, client_for
from app.services.connection import FAILURES_BEFORE_DISCONNECT, PingOutcome, apply_outcome, ping_confirmed
from app.services.market_data import FeedManager, LastPriceCache
from app.services.market_source import choose_source, update_sources
from app.services.runner import Service, register_service

logger = logging.getLogger(__name__)


def monitored_accounts() -> list[TradingAccount]:
    """Every active account of every user (a deactivated user's accounts stay monitored)."""
    return list(db.session.scalars(select(TradingAccount).where(
        TradingAccount.deleted_at.is_(None), TradingAccount.is_active.is_(True)).order_by(TradingAccount.id)))


def _configured_interval(setting: str, default: float) -> float:
    from flask import has_app_context

    return float(current_app.config[setting]) if has_app_context() else default


class ConnectionMonitor(Service):
    name = "connection_monitor"

    def __init__(self) -> None:
        self.interval = _configured_interval("CONNECTION_MONITOR_INTERVAL", 30.0)

    def run_once(self) -> str | None:
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
        ids = [a.id for a in monitored_accounts()]
        db.session.remove()  # no transaction held across the pings
        outcomes: list[list[PingOutcome]] = []
        if ids:
            with ThreadPoolExecutor(max_workers=min(16, len(ids)), thread_name_prefix="ping") as pool:
                outcomes = list(pool.map(lambda account_id: _ping_in_context(app, account_id), ids))
        changes = 0
        for account_id, results in zip(ids, outcomes, strict=True):
            if not self.still_leading():
                return "lease lost: stopped before writing the remaining results"
            account = db.session.get(TradingAccount, account_id)
            if account is None or account.deleted_at is not None:
                continue
            for outcome in results:
                changes += apply_outcome(account, outcome) is not None
        if not self.still_leading():
            return "lease lost: market-data sources not updated"
        switches = update_sources()
        return f"pinged {len(ids)}, {changes} status changes, {len(switches)} market-data switches"



def _ping_in_context(app: Flask, account_id: int) -> list[PingOutcome]:
    with app.app_context():
        try:
            account = db.session.get(TradingAccount, account_id)
            if account is None:
                return []
            try:
                client = client_for(account)
            except HostNotAllowed as exc:
                return [PingOutcome(False, error=str(exc))]
        finally:
            db.session.remove()  # no session held across the pings
        return ping_confirmed(client, retries=FAILURES_BEFORE_DISCONNECT - 1, delay=app.config["PING_RETRY_SECONDS"])


class AccountDataRefresher(Service):
    name = "account_refresher"

    def __init__(self) -> None:
        self.interval = _configured_interval("ACCOUNT_REFRESH_INTERVAL", 15.0)

    def run_once(self) -> str | None:
        ids = [a.id for a in monitored_accounts()]
        db.session.remove()
        futures = refresher().refresh(ids)
        failed = 0
        for future in futures.values():
            result = future.result(timeout=current_app.config["BROKER_READ_TIMEOUT"] * 4)
            failed += result.error is not None
        return f"refreshed {len(ids)} accounts, {failed} failed"


def last_prices(app: Flask) -> LastPriceCache:
    """The process's last-price cache (filled by the feed in the leader process)."""
    cache = app.extensions.get("last_prices")
    if cache is None:
        seconds = app.config["PRICE_MAX_TICK_AGE_SECONDS"]
        max_age = timedelta(seconds=seconds) if seconds > 0 else None
        cache = app.extensions.setdefault("last_prices", LastPriceCache(max_tick_age=max_age))
    return cache


def feed_manager(app: Flask) -> FeedManager:
    """The process's feed connections (one per OpenAlgo host), shared by the market-data feed and the
    risk monitor; a closed one (the leader's term ended) is replaced by a new one."""
    with _FEED_LOCK:
        manager = app.extensions.get("feed_manager")
        if manager is None or manager.closed:
            manager = app.extensions["feed_manager"] = FeedManager(cache=last_prices(app))
        return manager


_FEED_LOCK = threading.Lock()


class MarketDataFeed(Service):
    name = "market_feed"
    interval = 5.0
    market_hours_only = True
    OWNER = "index-underlyings"

    def __init__(self) -> None:
        self.manager: FeedManager | None = None
        # host -> (account id, key fingerprint, ws url) the connection uses: a changed key or URL
        # on the same account reconnects too.
        self.sources: dict[str, tuple[int, str, str]] = {}

    def on_start(self) -> None:
        self.manager = feed_manager(current_app._get_current_object())  # type: ignore[attr-defined]

    def on_stop(self) -> None:
        if self.manager is not None:
            self.manager.close()
            self.manager = None
        self.sources.clear()

    def on_idle(self) -> None:
        """Market closed: drop every connection; the next run in market hours reconnects."""
        if self.manager is not None and self.sources:
            for host in list(self.sources):
                self.manager.drop_host(host)
            logger.info("Market closed: closed %d market-data connections", len(self.sources))
            self.sources.clear()

    def desired_sources(self) -> dict[str, TradingAccount]:
        """One account per OpenAlgo host: the market-data account of the users on that host."""
        by_user: dict[int, list[TradingAccount]] = {}
        for account in db.session.scalars(select(TradingAccount).where(TradingAccount.deleted_at.is_(None))):
            by_user.setdefault(account.user_id, []).append(account)
        wanted: dict[str, TradingAccount] = {}
        for accounts in by_user.values():
            source = choose_source(accounts)
            if source is not None and source.websocket_url and account_urls_allowed(source):
                wanted.setdefault(source.host_url, source)
        return wanted

    def run_once(self) -> str | None:
        from app.services.encryption import get_encryptor

        if self.manager is None:
            self.on_start()
        assert self.manager is not None
        wanted = self.desired_sources()
        instruments: list[dict[str, Any]] = [
            {"symbol": u.symbol, "exchange": u.quote_exchange} for u in UNDERLYINGS.values()]
        for host, account in wanted.items():
            key = get_encryptor().decrypt(account.api_key_encrypted)
            ws_url = account.websocket_url or ""
            source = (account.id, hashlib.sha256(key.encode()).hexdigest()[:16], ws_url)
            if host not in self.sources:
                self.manager.subscribe(host, ws_url, key, instruments, self.OWNER)
            elif self.sources[host] != source:
                logger.warning("Market feed for %s now uses account %s", host, account.account_name)
                self.manager.switch_source(host, ws_url, key)
            self.sources[host] = source
        for host in [h for h in self.sources if h not in wanted]:
            self.manager.drop_host(host)
            del self.sources[host]
        connected = sum(1 for s in self.manager.status().values() if s.connected)
        return f"{len(wanted)} hosts, {connected} connected"


def register_monitors(app: Flask) -> None:
    for factory in (ConnectionMonitor, AccountDataRefresher, MarketDataFeed):
        register_service(app, factory)
