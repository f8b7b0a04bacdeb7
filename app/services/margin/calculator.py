"""The margin calculator: a one- or two-leg basket built from a trade type, sized per account
through size_accounts() (the very function the strategy preview and the executor use).

Trade type -> one strategy lot:
- CE or PE sell: SELL 1 lot of a call (a put is charged the same rate).
- CE and PE sell: SELL 1 call lot + SELL 1 put lot (a hedged pair, charged once).
- Futures: BUY 1 futures lot (either side is charged the futures rate).
- Option buying: BUY 1 call lot (premium per lot).
Through the user's market-data account the basket gets real contracts: the nearest live
futures contract, or the ATM call / put of the nearest option expiry as the broker itself
resolves them (`/optionsymbol`). Their lot size and freeze quantity come from
contract_spec() (the broker's /symbol first), and the broker's `/margin` for that basket is
used when it answers; without an account or an answer, the stored settings and the margin
table are used, and the result says so.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from app.broker.client import OpenAlgoClient
from app.broker.errors import BrokerError, HostNotAllowed
from app.domain.errors import DomainError
from app.domain.expiries import format_expiry, parse_expiries
from app.domain.instruments import Action, InstrumentKind, OptionType
from app.domain.instruments import underlying as lookup_underlying
from app.domain.legs import expiry_reference_day
from app.domain.margin import TradeType
from app.domain.sizing import PROFILE_PERCENT, RiskProfile, SizingLeg
from app.extensions import db
from app.models.types import utcnow
from app.models.users import User
from app.services.accounts import client_for
from app.services.margin.contracts import ContractError, ContractSpec, contract_spec, expiry_list, reference_future
from app.services.margin.sizing import (
    AccountChoice,
    ContractLeg,
    SizingResult,
    owned_active_accounts,
    size_accounts,
)
from app.services.market_source import market_data_account
from app.services.short_cache import CacheWaitTimeout

logger = logging.getLogger(__name__)

TRADE_TYPE_LABELS = {
    TradeType.CE_OR_PE_SELL: "CE or PE sell",
    TradeType.CE_AND_PE_SELL: "CE and PE sell (straddle / strangle)",
    TradeType.FUTURES: "Futures",
    TradeType.OPTION_BUYING: "Option buying",
}


@dataclass(frozen=True)
class Calculation:
    """A calculator answer: the sizing, the contract used, and the share of margin applied."""

    result: SizingResult
    contract: ContractSpec
    contract_symbol: str | None
    percent: Decimal
    share_label: str  # e.g. "grade B (65 %)" or "balanced (65 %)"
    source_account: str | None


def basket_legs(underlying: str, trade_type: TradeType, spec: ContractSpec | None) -> list[SizingLeg]:
    """One strategy lot of a trade type (see the module docstring); spec None: a shape only (lot 1)."""
    lot, freeze = (spec.lot_size, spec.freeze_qty) if spec is not None else (1, 1)

    def leg(kind: InstrumentKind, action: Action, option_type: OptionType | None) -> SizingLeg:
        return SizingLeg(underlying, kind, action, option_type, 1, lot, freeze)

    if trade_type is TradeType.CE_OR_PE_SELL:
        return [leg(InstrumentKind.OPTION, Action.SELL, OptionType.CE)]
    if trade_type is TradeType.CE_AND_PE_SELL:
        return [leg(InstrumentKind.OPTION, Action.SELL, OptionType.CE),
                leg(InstrumentKind.OPTION, Action.SELL, OptionType.PE)]
    if trade_type is TradeType.FUTURES:
        return [leg(InstrumentKind.FUTURE, Action.BUY, None)]
    return [leg(InstrumentKind.OPTION, Action.BUY, OptionType.CE)]


def _contracts(client: OpenAlgoClient | None, underlying: str, shape: list[SizingLeg],
               today: date) -> tuple[list[tuple[str, str]] | None, date | None]:
    """Each leg's (symbol, exchange) and the expiry, or (None, None) when they cannot be had."""
    if client is None:
        return None, None
    try:
        if shape[0].kind is InstrumentKind.FUTURE:
            symbol, exchange, expiry = reference_future(client, underlying, today)
            return [(symbol, exchange)], expiry
        und = lookup_underlying(underlying)
        live = [d for d in parse_expiries(expiry_list(client, und.symbol, "options")) if d >= today]
        if not live:
            return None, None
        out = []
        for leg in shape:
            found = client.option_symbol(und.symbol, und.derivatives_exchange, format_expiry(live[0]), "ATM",
                                         str(leg.option_type))
            out.append((found.symbol, found.exchange or und.derivatives_exchange))
        return out, live[0]
    except (BrokerError, CacheWaitTimeout, ContractError, DomainError) as exc:
        logger.info("Calculator contracts for %s unavailable (%s); stored settings used", underlying, exc)
        return None, None


def _market_client(user: User) -> tuple[OpenAlgoClient | None, str | None]:
    account = market_data_account(user)
    if account is None:
        return None, None
    name = account.account_name
    try:
        client = client_for(account)
    except HostNotAllowed:
        client = None
    db.session.commit()  # nothing held across the broker calls
    return client, name


def calculate(user: User, account_ids: Sequence[int], underlying: str, trade_type: TradeType, *,
              grade: str | None = None, grade_percent: Decimal | None = None,
              profile: RiskProfile | None = None, allowed_splits: int = 1) -> Calculation:
    """Size the user's accounts for one strategy lot of `trade_type` on `underlying`.

    Exactly one of (grade with its grade_percent) or a margin-based profile gives the share.
    Raises:
        AccountNotFound, MarginUnavailable, SizingError (from size_accounts), ContractError.
    """
    unique = list(dict.fromkeys(account_ids))
    owned_active_accounts(user, unique)  # refuse another user's ids before any broker call
    # The session the basket would trade in, as leg resolution counts it: after today's 15:30
    # close that is tomorrow, so today's expired contracts and today's expiry-day rates are out.
    today = expiry_reference_day(utcnow())
    client, source_name = _market_client(user)
    shape = basket_legs(underlying, trade_type, None)
    contracts, expiry = _contracts(client, underlying, shape, today)
    symbol, exchange = contracts[0] if contracts else (None, None)
    spec = contract_spec(client, underlying, symbol, exchange, expiry, today=today)
    legs = [ContractLeg(leg, *(contracts[i] if contracts else (None, None)))
            for i, leg in enumerate(basket_legs(underlying, trade_type, spec))]
    if grade is not None and grade_percent is not None:
        chosen, percent, label = RiskProfile.BALANCED, grade_percent, f"grade {grade} ({grade_percent.normalize():f} %)"
    else:
        chosen = profile or RiskProfile.BALANCED
        percent = PROFILE_PERCENT[chosen]
        label = f"{chosen.value} ({percent} %)"
    result = size_accounts(user, legs, chosen, [AccountChoice(i) for i in unique], usable_percent=percent,
                           allowed_splits=allowed_splits, client=client, today=today)
    return Calculation(result, spec, symbol, percent, label, source_name)
