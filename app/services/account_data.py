"""Account data: fetch funds, positions and holdings from many accounts in parallel, cache the
last good answer in the database (shared by every worker), and serve pages from that cache.

A page never waits on a slow account longer than DASHBOARD_WAIT_SECONDS: a refresh that is
still running keeps running in the background and updates the cache when it finishes.

Results are written one at a time per process (``_store_lock``): fifty refreshes finishing together
otherwise contend for the database's write lock, and on SQLite each loser sleeps in the busy
handler, which made a 50-account refresh take seconds (bench/dashboard.py, docs/benchmarks.md).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask, current_app
from sqlalchemy import select

from app.broker.client import OpenAlgoClient
from app.broker.errors import BrokerAuthError, BrokerError, HostNotAllowed
from app.extensions import db
from app.models.accounts import TradingAccount
from app.models.types import utcnow

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchResult:
    account_id: int
    funds: dict[str, str] | None = None
    positions: list[dict[str, Any]] | None = None
    holdings: dict[str, Any] | None = None
    error: str | None = None
    auth_failed: bool = False
    fetched_at: datetime | None = None


def fetch_account(client: OpenAlgoClient, account_id: int) -> FetchResult:
    """Network only: read funds, positions and holdings. Never touches the database."""
    try:
        funds = client.funds().as_json()
        positions = [p.as_json() for p in client.positions()]
        holdings = client.holdings()
    except BrokerAuthError as exc:
        return FetchResult(account_id, error=str(exc), auth_failed=True)
    except BrokerError as exc:
        return FetchResult(account_id, error=str(exc))
    holdings_json = {
        "items": [{"symbol": h.symbol, "exchange": h.exchange, "product": h.product, "quantity": h.quantity,
                   "average_price": str(h.average_price), "pnl": str(h.pnl), "pnl_percent": str(h.pnl_percent)}
                  for h in holdings.items],
        "total_holding_value": str(holdings.total_holding_value), "total_investment": str(holdings.total_investment),
        "total_pnl": str(holdings.total_pnl), "total_pnl_percent": str(holdings.total_pnl_percent),
    }
    return FetchResult(account_id, funds=funds, positions=positions, holdings=holdings_json, fetched_at=utcnow())


def store_result(result: FetchResult) -> None:
    """Write one fetch result into the account's cache row (short transaction).

    A successful fetch, or a refused key, is also a connection check: it goes through the one
    place that changes connection status (and logs and audits the change). Other failures are
    left to the connection monitor's three-strike rule.
    """
    from app.services.connection import PingOutcome, apply_outcome

    account = db.session.get(TradingAccount, result.account_id)
    if account is None:
        return
    now = utcnow()
    account.last_checked_at = now
    if result.error is None:
        account.last_funds, account.last_positions, account.last_holdings = (
            result.funds, result.positions, result.holdings)
        account.last_data_at = result.fetched_at or now
        apply_outcome(account, PingOutcome(True))
    elif result.auth_failed:
        apply_outcome(account, PingOutcome(False, error=result.error, auth_failed=True))
    else:
        account.last_error = result.error[:500]
    db.session.commit()


class AccountRefresher:
    """A process-wide pool that refreshes accounts, at most one refresh per account at a time."""

    def __init__(self, app: Flask, max_workers: int = 64):
        self.app = app
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="account-refresh")
        self._inflight: dict[int, Future[FetchResult]] = {}
        self._lock = threading.Lock()
        self._store_lock = threading.Lock()

    def refresh(self, account_ids: list[int]) -> dict[int, Future[FetchResult]]:
        """Start refreshes; an account already being refreshed keeps its running one."""
        return {account_id: future for account_id, (future, _new) in self.submit(account_ids).items()}

    def submit(self, account_ids: list[int]) -> dict[int, tuple[Future[FetchResult], bool]]:
        """Like refresh(), also telling which futures were started by this call."""
        futures: dict[int, tuple[Future[FetchResult], bool]] = {}
        with self._lock:
            for account_id in account_ids:
                future = self._inflight.get(account_id)
                started = future is None or future.done()
                if started:
                    future = self._pool.submit(self._run, account_id)
                    self._inflight[account_id] = future
                assert future is not None
                futures[account_id] = (future, started)
        return futures

    def _run(self, account_id: int) -> FetchResult:
        from app.services.accounts import client_for

        with self.app.app_context():
            try:
                account = db.session.get(TradingAccount, account_id)
                if account is None:
                    return FetchResult(account_id, error="account not found")
                try:
                    client = client_for(account)
                except HostNotAllowed as exc:  # an expected state, shown on the card; not a crash
                    result = FetchResult(account_id, error=str(exc))
                else:
                    db.session.remove()  # no session held across the network calls
                    result = fetch_account(client, account_id)
                with self._store_lock:
                    store_result(result)
                return result
            except Exception as exc:
                logger.exception("Refreshing account %s failed", account_id)
                return FetchResult(account_id, error=f"internal error: {type(exc).__name__}")
            finally:
                db.session.remove()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def refresher() -> AccountRefresher:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    existing = app.extensions.get("account_refresher")
    if existing is None:
        existing = app.extensions.setdefault("account_refresher", AccountRefresher(app))
    return existing


def refresh_stale(accounts: list[TradingAccount], *, wait_seconds: float, force: bool = False,
                  wait_for_cached: bool = True) -> bool:
    """Start refreshes for accounts whose cache is older than the freshness window, and wait briefly.

    Returns after at most `wait_seconds`; refreshes still running finish in the background. With
    `wait_for_cached=False` only accounts that have no cached data yet are waited for: the others
    are shown from their cache (with its age) and their refresh lands in the background.
    Returns True when it waited, i.e. when the accounts were expired and will be read again.
    """
    fresh_for = current_app.config["ACCOUNT_DATA_FRESH_SECONDS"]
    now = utcnow()
    stale = [a.id for a in accounts if a.is_active and (
        force or a.last_data_at is None or a.last_checked_at is None
        or (now - a.last_checked_at).total_seconds() >= fresh_for)]
    if not stale:
        return False
    submitted = refresher().submit(stale)
    # Wait only for refreshes started now: one still running from an earlier request is slow,
    # and the page must not wait on it again (it shows the cached data with its age).
    uncached = {a.id for a in accounts if a.last_data_at is None}
    fresh = [future for account_id, (future, started) in submitted.items()
             if (started or force) and (wait_for_cached or force or account_id in uncached)]
    if not fresh:
        return False  # nothing new to read: keep the loaded rows (no reload of every account)
    db.session.commit()  # no transaction (and pooled connection) held while waiting
    wait(fresh, timeout=wait_seconds)
    db.session.expire_all()  # read what the refreshes stored
    return True


def load_accounts(user_id: int, ids: list[int] | None = None) -> list[TradingAccount]:
    stmt = select(TradingAccount).where(TradingAccount.user_id == user_id, TradingAccount.deleted_at.is_(None))
    if ids is not None:
        stmt = stmt.where(TradingAccount.id.in_(ids))
    return list(db.session.scalars(stmt.order_by(TradingAccount.is_primary.desc(), TradingAccount.failover_order,
                                                 TradingAccount.id)))
