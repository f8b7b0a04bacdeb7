"""The option chain of the user's market-data account (primary, or the failover account).

Every open tab polls the chain. Answers are shared through a per-process single-flight cache
keyed by (user, market-data account, its host, underlying, expiry, strike count): N tabs of
one user cost the broker one chain call per CHAIN_TTL_SECONDS, and the expiry list, which
changes rarely, one call per EXPIRY_TTL_SECONDS. The key starts with the user and the account
the user's own query chose, so one user's request is never served another user's data.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flask import current_app

from app.broker.client import OpenAlgoClient
from app.broker.errors import BrokerError, HostNotAllowed
from app.broker.parsing import OptionChain, OptionChainRow, OptionLeg
from app.domain import formatting as fmt
from app.domain.instruments import Underlying
from app.domain.instruments import underlying as lookup_underlying
from app.domain.moneyness import is_in_the_money
from app.extensions import db
from app.models.users import User
from app.services.accounts import client_for
from app.services.market_source import market_data_account
from app.services.short_cache import CacheWaitTimeout, SingleFlightCache

CHAIN_TTL_SECONDS = 1.0
EXPIRY_TTL_SECONDS = 300.0
_CACHE_EXTENSION = "option_chain_cache"


class OptionChainError(Exception):
    pass


def shared_cache() -> SingleFlightCache:
    """This app's cache (one per process: each app object is built once per worker)."""
    cache = current_app.extensions.get(_CACHE_EXTENSION)
    if cache is None:
        cache = current_app.extensions.setdefault(_CACHE_EXTENSION, SingleFlightCache())
    return cache


def _leg(leg: OptionLeg | None, option_type: str, strike: Decimal, spot: Decimal) -> dict[str, Any] | None:
    """Raw values as strings (exact), their display forms under "display", and moneyness."""
    if leg is None:
        return None
    return {
        "symbol": leg.symbol, "label": leg.label, "ltp": str(leg.ltp), "change": str(leg.change),
        "oi": leg.oi, "volume": leg.volume, "iv": _s(leg.iv), "delta": _s(leg.delta), "gamma": _s(leg.gamma),
        "theta": _s(leg.theta), "vega": _s(leg.vega),
        "itm": is_in_the_money(option_type, strike, spot),
        "display": {
            "ltp": fmt.indian_number(leg.ltp, 2), "change": fmt.signed(leg.change, 2),
            "oi": fmt.indian_number(leg.oi), "volume": fmt.indian_number(leg.volume),
            "iv": fmt.fixed(leg.iv, 2), "delta": fmt.fixed(leg.delta, 4), "gamma": fmt.fixed(leg.gamma, 4),
            "theta": fmt.fixed(leg.theta, 4), "vega": fmt.fixed(leg.vega, 4),
        },
    }


def _s(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _row(row: OptionChainRow, data: OptionChain) -> dict[str, Any]:
    spot = data.underlying_ltp
    return {"strike": str(row.strike), "strike_display": fmt.strike(row.strike), "atm": row.strike == data.atm_strike,
            "ce": _leg(row.ce, "CE", row.strike, spot), "pe": _leg(row.pe, "PE", row.strike, spot)}


def _source(user: User, symbol: str) -> tuple[OpenAlgoClient, tuple[Any, ...], str, Underlying]:
    """(client, cache scope, account name, underlying) of the user's market-data account."""
    account = market_data_account(user)
    if account is None:
        raise OptionChainError("Add an account first: the option chain comes from your primary account.")
    und = lookup_underlying(symbol)
    try:
        client = client_for(account)
    except HostNotAllowed as exc:
        raise OptionChainError(f"{account.account_name}: {exc}") from exc
    scope = (user.id, account.id, account.host_url)
    source_name = account.account_name
    db.session.commit()  # no transaction open across the network calls
    return client, scope, source_name, und


def _shared[T](key: tuple[Any, ...], ttl: float, load: Callable[[], T], source_name: str) -> T:
    try:
        return shared_cache().get(key, ttl, load)
    except BrokerError as exc:
        raise OptionChainError(f"{source_name}: {exc}") from exc
    except CacheWaitTimeout as exc:
        raise OptionChainError(f"{source_name} did not answer in time.") from exc


def _expiries(client: OpenAlgoClient, scope: tuple[Any, ...], und: Underlying, source_name: str) -> list[str]:
    def load() -> list[str]:
        found = client.expiries(und.symbol, und.derivatives_exchange, "options")
        if not found:  # raised, so it is remembered for a second, not for minutes
            raise OptionChainError(f"No option expiries for {und.symbol}.")
        return found

    return list(_shared(("expiries", *scope, und.symbol), EXPIRY_TTL_SECONDS, load, source_name))


def expiries(user: User, symbol: str) -> list[str]:
    """The option expiries of an index, nearest first (cached for EXPIRY_TTL_SECONDS)."""
    client, scope, source_name, und = _source(user, symbol)
    return _expiries(client, scope, und, source_name)


def chain(user: User, symbol: str, expiry: str | None, strikes: int) -> dict[str, Any]:
    """ATM ± `strikes` for an index and expiry (nearest expiry when none is given)."""
    client, scope, source_name, und = _source(user, symbol)
    available = _expiries(client, scope, und, source_name)
    chosen = expiry if expiry in available else available[0]
    data = _shared(("chain", *scope, und.symbol, chosen, strikes), CHAIN_TTL_SECONDS,
                   lambda: client.option_chain(und.symbol, und.quote_exchange, chosen, strike_count=strikes),
                   source_name)
    return {
        "underlying": und.symbol, "underlying_ltp": str(data.underlying_ltp),
        "underlying_ltp_display": fmt.indian_number(data.underlying_ltp, 2), "expiry": chosen,
        "expiries": available, "atm_strike": str(data.atm_strike), "atm_strike_display": fmt.strike(data.atm_strike),
        "source": source_name, "rows": [_row(r, data) for r in data.rows],
    }
