"""The option chain of the user's market-data account (primary, or the failover account)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.broker.errors import BrokerError
from app.broker.parsing import OptionLeg
from app.domain.instruments import underlying as lookup_underlying
from app.extensions import db
from app.models.users import User
from app.services.accounts import client_for
from app.services.market_source import market_data_account


class OptionChainError(Exception):
    pass


def _leg(leg: OptionLeg | None) -> dict[str, Any] | None:
    if leg is None:
        return None
    return {"symbol": leg.symbol, "label": leg.label, "ltp": str(leg.ltp), "change": str(leg.change),
            "oi": leg.oi, "volume": leg.volume, "iv": _s(leg.iv), "delta": _s(leg.delta), "gamma": _s(leg.gamma),
            "theta": _s(leg.theta), "vega": _s(leg.vega)}


def _s(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def expiries(user: User, symbol: str) -> list[str]:
    account = market_data_account(user)
    if account is None:
        raise OptionChainError("Add an account first: the option chain comes from your primary account.")
    und = lookup_underlying(symbol)
    client = client_for(account)
    db.session.commit()  # no transaction open across the network call
    try:
        return client.expiries(und.symbol, und.derivatives_exchange, "options")
    except BrokerError as exc:
        raise OptionChainError(f"{account.account_name}: {exc}") from exc


def chain(user: User, symbol: str, expiry: str | None, strikes: int) -> dict[str, Any]:
    """ATM ± `strikes` for an index and expiry (nearest expiry when none is given)."""
    account = market_data_account(user)
    if account is None:
        raise OptionChainError("Add an account first: the option chain comes from your primary account.")
    und = lookup_underlying(symbol)
    client = client_for(account)
    source_name = account.account_name
    db.session.commit()  # no transaction open across the network calls
    try:
        available = client.expiries(und.symbol, und.derivatives_exchange, "options")
        if not available:
            raise OptionChainError(f"No option expiries for {und.symbol}.")
        chosen = expiry if expiry in available else available[0]
        data = client.option_chain(und.symbol, und.quote_exchange, chosen, strike_count=strikes)
    except BrokerError as exc:
        raise OptionChainError(f"{source_name}: {exc}") from exc
    return {
        "underlying": und.symbol, "underlying_ltp": str(data.underlying_ltp), "expiry": chosen,
        "expiries": available, "atm_strike": str(data.atm_strike), "source": source_name,
        "rows": [{"strike": str(r.strike), "ce": _leg(r.ce), "pe": _leg(r.pe)} for r in data.rows],
    }
