"""Cross-account books: positions, orders, trades, holdings and funds of every account in one table.

Positions, holdings and funds come from the shared cache (refreshed in parallel when stale);
orders and trades are fetched live from every account in parallel, each with a deadline. An
account that does not answer in time is listed with its error instead of blocking the page.
"""

from __future__ import annotations

import csv
import io
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flask import Flask, current_app

from app.broker.client import OpenAlgoClient
from app.broker.errors import BrokerError
from app.domain.margin import available_margin, todays_pnl, used_margin
from app.extensions import db
from app.models.accounts import TradingAccount
from app.models.users import User
from app.security.encryption import EncryptionError
from app.services.account_data import load_accounts, refresh_stale
from app.services.dashboard import funds_from_cache

KINDS = ("positions", "orders", "trades", "holdings", "funds")
LIVE_WAIT_SECONDS = 3.0


@dataclass
class Book:
    kind: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # account name -> problem
    ages: dict[str, float | None] = field(default_factory=dict)


MAX_FETCHES_PER_USER = 16


class LiveFetches:
    """The process's pool for live order/trade reads. An account being read keeps its running
    read (no pile-up from auto-refreshing pages), and one user never holds more than
    MAX_FETCHES_PER_USER reads, so slow accounts of one user cannot starve everyone else."""

    def __init__(self, workers: int = 48):
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="books")
        self.running: dict[tuple[int, str], tuple[int, Future[list[dict[str, Any]]]]] = {}
        self.lock = threading.Lock()

    def submit(self, user_id: int, account_id: int, kind: str, run) -> Future[list[dict[str, Any]]] | None:
        with self.lock:
            for key in [k for k, (_u, f) in self.running.items() if f.done()]:
                del self.running[key]
            current = self.running.get((account_id, kind))
            if current is not None:
                return current[1]
            if sum(1 for u, _f in self.running.values() if u == user_id) >= MAX_FETCHES_PER_USER:
                return None
            future = self.pool.submit(run, account_id)
            self.running[(account_id, kind)] = (user_id, future)
            return future


def _live_fetches(app: Flask) -> LiveFetches:
    fetches = app.extensions.get("books_fetches")
    if fetches is None:
        fetches = app.extensions.setdefault("books_fetches", LiveFetches())
    return fetches


def _fetch_live(client: OpenAlgoClient, kind: str) -> list[dict[str, Any]]:
    """Network only."""
    if kind == "orders":
        return [{"order_id": o.order_id, "symbol": o.symbol, "exchange": o.exchange, "action": o.action,
                 "quantity": o.quantity, "price": o.price, "trigger_price": o.trigger_price,
                 "price_type": o.price_type, "product": o.product, "status": o.status,
                 "filled_quantity": o.filled_quantity, "average_price": o.average_price, "time": o.timestamp}
                for o in client.orderbook()]
    return [{"order_id": t.order_id, "symbol": t.symbol, "exchange": t.exchange, "action": t.action,
             "quantity": t.quantity, "average_price": t.average_price, "trade_value": t.trade_value,
             "product": t.product, "time": t.timestamp} for t in client.tradebook()]


def _cached_rows(account: TradingAccount, kind: str) -> list[dict[str, Any]]:
    if kind == "positions":
        return [{**p, "quantity": int(p.get("quantity") or 0), "average_price": Decimal(p["average_price"]),
                 "ltp": Decimal(p["ltp"]), "pnl": Decimal(p["pnl"])} for p in (account.last_positions or [])]
    if kind == "holdings":
        return [{**h, "average_price": Decimal(h["average_price"]), "pnl": Decimal(h["pnl"]),
                 "pnl_percent": Decimal(h["pnl_percent"])} for h in (account.last_holdings or {}).get("items", [])]
    funds = funds_from_cache(account.last_funds)
    if funds is None:
        return []
    return [{"available_cash": funds.available_cash, "collateral": funds.collateral,
             "available_margin": available_margin(funds), "used_margin": used_margin(funds),
             "realized_pnl": funds.m2m_realized, "unrealized_pnl": funds.m2m_unrealized,
             "todays_pnl": todays_pnl(funds)}]


def collect(user: User, kind: str) -> Book:
    if kind not in KINDS:
        raise ValueError(kind)
    accounts = [a for a in load_accounts(user.id) if a.is_active]
    book = Book(kind)
    if kind in ("orders", "trades"):
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        fetches = _live_fetches(app)

        def run(account_id: int) -> list[dict[str, Any]]:
            from app.services.accounts import client_for

            with app.app_context():
                try:
                    account = db.session.get(TradingAccount, account_id)
                    client = client_for(account) if account else None
                finally:
                    db.session.remove()  # no session held across the broker call
            return _fetch_live(client, kind) if client else []

        names = {a.id: (a.account_name, a.is_paper) for a in accounts}
        futures: dict[int, Future[list[dict[str, Any]]] | None] = {
            a.id: fetches.submit(user.id, a.id, kind, run) for a in accounts}
        db.session.commit()  # no transaction held while waiting on brokers
        wait([f for f in futures.values() if f is not None], timeout=LIVE_WAIT_SECONDS)
        for account_id, future in futures.items():
            name, paper = names[account_id]
            if future is None:
                book.errors[name] = "busy: earlier requests to your accounts are still running"
            elif not future.done():
                book.errors[name] = "did not answer in time"
            elif (exc := future.exception()) is not None:
                book.errors[name] = str(exc) if isinstance(exc, BrokerError | EncryptionError) else (
                    f"internal error ({type(exc).__name__})")
            else:
                book.rows.extend({"account": name, "paper": paper, **r} for r in future.result())
        return book
    refresh_stale(accounts, wait_seconds=current_app.config["DASHBOARD_WAIT_SECONDS"])
    for account in accounts:
        if account.last_error:
            book.errors[account.account_name] = account.last_error
        book.ages[account.account_name] = account.last_data_at.timestamp() if account.last_data_at else None
        book.rows.extend({"account": account.account_name, "paper": account.is_paper, **r}
                         for r in _cached_rows(account, kind))
    return book


FILTERS = ("account", "exchange", "product", "status")


def apply_filters(rows: list[dict[str, Any]], args: dict[str, str]) -> list[dict[str, Any]]:
    for key in FILTERS:
        wanted = (args.get(key) or "").strip()
        if wanted:
            rows = [r for r in rows if str(r.get(key, "")).lower() == wanted.lower()]
    return rows


def sort_rows(rows: list[dict[str, Any]], column: str | None, descending: bool) -> list[dict[str, Any]]:
    if not column or not rows or column not in rows[0]:
        return rows

    def key(row: dict[str, Any]) -> tuple[int, Any]:
        value = row.get(column)
        if isinstance(value, int | Decimal):
            return (0, value)
        return (1, str(value or "").lower())

    return sorted(rows, key=key, reverse=descending)


def totals(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> dict[str, Decimal]:
    return {c: sum((Decimal(r[c]) for r in rows if r.get(c) is not None), Decimal("0")) for c in columns}


def to_csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else _safe(str(row.get(c))) for c in columns])
    return buffer.getvalue()


def _safe(value: str) -> str:
    risky = value[:1] in ("=", "+", "@", "\t", "\r") or (value[:1] == "-" and not _is_number(value))
    return "'" + value if risky else value


def _is_number(value: str) -> bool:
    try:
        Decimal(value)
    except ArithmeticError:
        return False
    return True
