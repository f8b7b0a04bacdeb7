"""The one answer to "lot size and freeze quantity of this contract", and the expiry lists.

What the broker reports for the contract (`/symbol`: lotsize, freeze_qty) wins over the
stored contract settings; the stored row is the fallback when there is no broker client,
the broker does not know the symbol or does not answer, or reports no freeze quantity.

Next-month lot size: exchanges revise lot sizes from a given contract month, so a contract
that expires in a calendar month later than the month of the trading session it is traded in
takes the stored next-month lot size; a contract expiring in the session's month (or with no
expiry given) takes the stored lot size. The session is legs.expiry_reference_day: today in
IST, or tomorrow once today's 15:30 close has passed (after the close on 31 December the
session is in January, so a January contract is a current-month contract). This is the
stored default only: a broker's answer always wins.

Every `today` below is that session day, so that leg resolution, the calculator and sizing
choose contracts, lot sizes and expiry-day rates for the same day.

Broker answers are cached per host (the master contract and the expiry lists are the same
for every key of one OpenAlgo host): /symbol for SYMBOL_TTL_SECONDS, /expiry for
EXPIRY_TTL_SECONDS, failures for a second.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import date

from flask import current_app

from app.broker.client import OpenAlgoClient
from app.broker.errors import BrokerError
from app.broker.parsing import SymbolInfo
from app.domain.errors import DomainError
from app.domain.expiries import is_expiry_day, parse_expiries
from app.domain.instruments import underlying as lookup_underlying
from app.domain.legs import expiry_reference_day
from app.domain.sizing import max_lots_per_order
from app.domain.symbols import future_symbol
from app.extensions import db
from app.models.types import utcnow
from app.services.margin.tables import UnknownRow, contract_row
from app.services.short_cache import CacheWaitTimeout, SingleFlightCache

logger = logging.getLogger(__name__)

SYMBOL_TTL_SECONDS = 300.0
EXPIRY_TTL_SECONDS = 300.0
_CACHE_EXTENSION = "margin_contract_cache"

SOURCE_BROKER = "broker"
SOURCE_SETTINGS = "settings"


class ContractError(Exception):
    """A contract's lot size cannot be known (unknown underlying, inconsistent figures)."""


@dataclass(frozen=True)
class ContractSpec:
    """Lot size and freeze quantity of one contract, and where each came from.

    Attributes:
        lot_size, freeze_qty: the figures to trade with.
        max_lots_per_order: floor(freeze ÷ lot size) (app/domain/sizing.py).
        lot_source, freeze_source: "broker" or "settings".
        stored_lot_size, stored_freeze_qty: the stored defaults for this contract's month.
        broker_error: why the broker's figures were not used, when a broker was asked.
    """

    lot_size: int
    freeze_qty: int
    max_lots_per_order: int
    lot_source: str
    freeze_source: str
    stored_lot_size: int
    stored_freeze_qty: int
    broker_error: str | None = None

    @property
    def differs(self) -> bool:
        """The broker's figures differ from the stored ones."""
        return (self.lot_size, self.freeze_qty) != (self.stored_lot_size, self.stored_freeze_qty)


def _cache() -> SingleFlightCache:
    cache = current_app.extensions.get(_CACHE_EXTENSION)
    if cache is None:
        cache = current_app.extensions.setdefault(_CACHE_EXTENSION, SingleFlightCache())
    return cache


def stored_lot_size(underlying: str, expiry: date | None, today: date) -> int:
    """The stored lot size that applies to a contract of `underlying` expiring on `expiry`,
    traded in the session of `today` (see the module docstring).

    Raises:
        UnknownRow: no contract settings for the underlying.
    """
    row = contract_row(underlying)
    if expiry is not None and (expiry.year, expiry.month) > (today.year, today.month):
        return row.next_month_lot_size
    return row.lot_size


def _broker_figures(info: SymbolInfo) -> tuple[int | None, int | None]:
    """(lot size, freeze qty) from a /symbol answer; None where the broker reports none."""
    lot = info.lot_size if info.lot_size > 0 else None
    freeze = info.freeze_qty if info.freeze_qty is not None and info.freeze_qty > 0 else None
    return lot, freeze


def _symbol_info(client: OpenAlgoClient, symbol: str, exchange: str,
                 cache: SingleFlightCache | None = None) -> tuple[int | None, int | None]:
    key = ("symbol", client.host_url, exchange, symbol)
    return (cache or _cache()).get(key, SYMBOL_TTL_SECONDS,
                        lambda: _broker_figures(client.symbol_info(symbol, exchange)))


def prefetch_symbol_info(client: OpenAlgoClient, contracts: list[tuple[str, str]]) -> None:
    """Load the /symbol answers of several contracts (symbol, exchange) into the cache at once, one
    thread each, so that the contract_spec calls that follow (one per leg, one after another) find
    them instead of paying one round trip each: a four-leg strategy would wait four. No database
    access here; a failure is cached for a second as always, and contract_spec reports it."""
    wanted = list(dict.fromkeys(contracts))
    if len(wanted) < 2:
        return  # one is read where it is needed

    cache = _cache()  # the app's (the threads have no app context)

    def load(symbol: str, exchange: str) -> None:
        try:
            _symbol_info(client, symbol, exchange, cache)
        except (BrokerError, CacheWaitTimeout) as exc:  # cached as a failure for a second
            logger.debug("Prefetching %s %s: %s (contract_spec reports it)", exchange, symbol, exc)
        except Exception:  # never lose the caller's request to a thread's error
            logger.exception("Prefetching %s %s failed", exchange, symbol)

    threads = [threading.Thread(target=load, args=key, name="symbol-prefetch", daemon=True) for key in wanted]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def contract_spec(client: OpenAlgoClient | None, underlying: str, symbol: str | None, exchange: str | None,
                  expiry: date | None, *, today: date | None = None) -> ContractSpec:
    """Lot size and freeze quantity of one contract: the broker's when it reports them, else stored.

    Args:
        client: the market-data account's client, or None (stored figures only).
        underlying: e.g. "NIFTY" (its contract settings are the fallback).
        symbol, exchange: the contract as OpenAlgo names it (e.g. NIFTY30DEC26FUT, NFO); None
            when no contract is chosen yet.
        expiry: the contract's expiry (picks the current or next-month stored lot size).
        today: the trading session's IST date (default: legs.expiry_reference_day of now).
    Raises:
        ContractError: no contract settings for the underlying, or figures whose freeze
            quantity is below one lot.

    Ends the session's (read) transaction before asking the broker: call it before a unit of
    work that writes, never inside one.
    """
    day = today or expiry_reference_day(utcnow())
    try:
        stored_lot = stored_lot_size(underlying, expiry, day)
        stored_freeze = contract_row(underlying).freeze_qty
    except UnknownRow as exc:
        raise ContractError(str(exc)) from exc
    lot, freeze, error = None, None, None
    if client is not None and symbol and exchange:
        db.session.commit()  # the stored figures are read: no transaction open across the broker call
        try:
            lot, freeze = _symbol_info(client, symbol, exchange)
            if lot is None:
                error = f"the broker reports no lot size for {symbol}"
        except (BrokerError, CacheWaitTimeout) as exc:
            error = f"{symbol}: {exc}"
            logger.info("Contract %s %s: broker figures unavailable (%s); stored settings used",
                        exchange, symbol, exc)
    spec_lot = lot or stored_lot
    spec_freeze = freeze or stored_freeze
    try:
        most = max_lots_per_order(spec_lot, spec_freeze)
    except DomainError as exc:
        raise ContractError(f"{underlying}: {exc}") from exc
    return ContractSpec(spec_lot, spec_freeze, most, SOURCE_BROKER if lot else SOURCE_SETTINGS,
                        SOURCE_BROKER if freeze else SOURCE_SETTINGS, stored_lot, stored_freeze, error)


def expiry_list(client: OpenAlgoClient, underlying: str, instrument_type: str = "options") -> list[str]:
    """The broker's expiry list of an index (cached). Raises BrokerError, CacheWaitTimeout."""
    und = lookup_underlying(underlying)
    key = ("expiry", client.host_url, und.symbol, und.derivatives_exchange, instrument_type)
    return list(_cache().get(key, EXPIRY_TTL_SECONDS,
                             lambda: client.expiries(und.symbol, und.derivatives_exchange, instrument_type)))


@dataclass(frozen=True)
class ExpiryDay:
    """Whether today is an expiry day of an underlying, and how that was known."""

    expiry_day: bool
    known: bool  # False: the broker's list was unavailable and non-expiry was assumed
    note: str | None = None


def expiry_today(client: OpenAlgoClient | None, underlying: str, today: date) -> ExpiryDay:
    """Today (the session day: legs.expiry_reference_day) is an expiry day when the broker's
    option expiry list has it (never judged from the weekday).

    Without a list (no client, the broker down) non-expiry is assumed, with a note: the
    non-expiry rates are the higher ones for sold options and equal for the rest.
    """
    if client is None:
        return ExpiryDay(False, False, "no market-data account: non-expiry rates assumed")
    try:
        return ExpiryDay(is_expiry_day(today, expiry_list(client, underlying)), True)
    except (BrokerError, CacheWaitTimeout, DomainError) as exc:
        return ExpiryDay(False, False, f"expiry list unavailable ({exc}): non-expiry rates assumed")


def reference_future(client: OpenAlgoClient, underlying: str, today: date) -> tuple[str, str, date]:
    """The nearest live futures contract (symbol, exchange, expiry): a contract whose /symbol
    answer stands for the underlying's current lot size (options of a month share it).
    Live: expiring on or after `today`, the session day (a contract that expired at today's
    15:30 close is not live after it).

    Raises:
        BrokerError, CacheWaitTimeout: the expiry list could not be read.
        ContractError: no live futures expiry.
    """
    und = lookup_underlying(underlying)
    live = [d for d in parse_expiries(expiry_list(client, und.symbol, "futures")) if d >= today]
    if not live:
        raise ContractError(f"no live futures expiry for {und.symbol}")
    return future_symbol(und.symbol, live[0]), und.derivatives_exchange, live[0]
