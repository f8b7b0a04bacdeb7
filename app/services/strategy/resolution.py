"""Leg resolution: a strategy's leg specs -> the contracts they mean right now.

Once per preview (and, later, once per execution), through the user's market-data account
(primary, or the backup serving data: market_source.py), never once per trading account.
Every rule is a pure domain function (legs.leg_expiry, strikes.select_strike,
symbols.option_symbol / future_symbol); this module only fetches what they need:

- per underlying: its option and futures expiry lists (`/expiry`), never computed here;
- per distinct (underlying, expiry) of the option legs: ONE option chain, whatever the
  number of legs on it. The chain's strike list is the real list of that expiry; its spot
  fixes ATM; and when it says `quotes_included`, its LTPs are live quotes of every strike,
  taken in the same answer. So premium-near compares all candidates from that one answer.
  When every leg on it is ATM / ITM / OTM the chain is asked for a window of strikes around
  ATM only (domain/strikes.py `chain_window`); when the window cannot serve one of its legs
  after all (its ATM at the window's edge, its walk off it), the full chain is read once and
  every leg of that chain is selected on it (one spot fixes ATM for all of them);
- at most ONE `/multiquotes` for everything else: futures legs, and (only when a chain came
  without quotes) the chosen options and the premium-near candidates;
- lot size and freeze quantity per contract from margin/contracts.py `contract_spec` (what
  the broker reports wins over the stored settings).

Nothing is cached here, so nothing stale is shown as live: when the market-data account
fails (down, key refused, rate-limited), every unresolved leg says so and no price is made up.
A leg that cannot be resolved gets a LegError naming the leg and the reason; the others still
resolve (the result types are in resolved.py). No database transaction is open across a
broker call (the caller's is committed first).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from app.broker.client import OpenAlgoClient
from app.broker.errors import BrokerError, BrokerRequestError, HostNotAllowed
from app.broker.parsing import OptionChain, OptionLeg, Quote
from app.domain.errors import ExpiryUnavailable, InvalidExpiry, StrikeUnavailable
from app.domain.expiries import format_expiry, parse_expiry
from app.domain.instruments import InstrumentKind, OptionType
from app.domain.instruments import underlying as lookup_underlying
from app.domain.legs import LegSpec, expiry_reference_day, leg_expiry
from app.domain.strikes import StrikeMethod, chain_window, inside_window, select_strike
from app.domain.symbols import future_symbol, option_symbol
from app.extensions import db
from app.models.types import utcnow
from app.models.users import User
from app.services.strategy.resolved import (
    Contract,
    ContractLookup,
    ContractUnknown,
    LegError,
    LegFailure,
    Resolution,
    ResolvedLeg,
)

logger = logging.getLogger(__name__)

_DEFAULT_TICK = Decimal("0.05")  # NFO/BFO index derivatives, when an answer gives no tick size


class _SourceDown(Exception):
    """The market-data account failed in a way no other call will get around."""


class _LegFailed(Exception):
    def __init__(self, reason: LegFailure, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def default_contract_lookup(client: OpenAlgoClient, underlying: str, symbol: str, exchange: str,
                            expiry: date, today: date) -> Contract:
    """contract_spec (margin/contracts.py): the one answer to "lot size and freeze quantity"."""
    from app.services.margin.contracts import ContractError, contract_spec

    try:
        spec = contract_spec(client, underlying, symbol, exchange, expiry, today=today)
    except ContractError as exc:
        raise ContractUnknown(str(exc)) from exc
    return Contract(spec.lot_size, spec.freeze_qty, spec.max_lots_per_order, spec.lot_source)


@dataclass(frozen=True)
class MarketSource:
    """The user's market-data account as a broker client, or why there is none."""

    client: OpenAlgoClient | None
    name: str | None
    error: str | None = None


def market_source(user: User) -> MarketSource:
    """The client of the user's market-data account (primary, or the backup serving data).

    Commits the session before returning, so no transaction stays open across the broker
    calls the caller makes next.
    """
    from app.services.accounts import client_for
    from app.services.market_source import market_data_account

    account = market_data_account(user)
    if account is None:
        db.session.commit()
        return MarketSource(None, None, "No market-data account: add an OpenAlgo account first.")
    name = account.account_name
    try:
        client = client_for(account)
    except HostNotAllowed as exc:
        db.session.commit()
        return MarketSource(None, name, f"Market-data account {name}: {exc}")
    db.session.commit()
    return MarketSource(client, name)


def resolve_for_user(user: User, specs: Sequence[LegSpec], *, now: datetime | None = None,
                     contracts: ContractLookup = default_contract_lookup) -> Resolution:
    """Resolve a strategy's legs through the user's market-data account.

    Args:
        user: the strategy's owner (their primary account, or the backup serving data).
        specs: the legs, in order (their 1-based position names them in errors).
        now: the instant to resolve at (aware; default: now). Expiry choices count from
            legs.expiry_reference_day(now).
        contracts: the lot size / freeze quantity lookup (default: contract_spec).
    Returns:
        A Resolution; never raises for a broker or data problem (those are per-leg errors,
        or `error` when the market-data account is missing or down).
    """
    moment = now or utcnow()
    source = market_source(user)
    if source.client is None:
        return failed_resolution(specs, moment, source.name, source.error or "No market-data account.")
    return resolve_legs(source.client, specs, now=moment, source=source.name, contracts=contracts)


def failed_resolution(specs: Sequence[LegSpec], moment: datetime, source: str | None, error: str) -> Resolution:
    """Every leg failed for one reason of the whole source (no account, account unusable)."""
    legs = tuple(LegError(n, spec, LegFailure.MARKET_DATA_DOWN, error) for n, spec in enumerate(specs, start=1))
    return Resolution(source, moment, expiry_reference_day(moment), legs, error=error)


@dataclass
class _Pending:
    """A leg part-way through resolution."""

    number: int
    spec: LegSpec
    expiry: date | None = None
    strike: Decimal | None = None
    symbol: str | None = None
    chain_leg: OptionLeg | None = None
    chain: OptionChain | None = None
    window: int | None = None  # the chain is a window of this many strikes each side of ATM
    failure: _LegFailed | None = None


class _Run:
    """One resolution's broker calls and bookkeeping."""

    def __init__(self, client: OpenAlgoClient, source: str | None) -> None:
        self.client = client
        self.source = source or client.account_label
        self.calls: dict[str, int] = {}

    def call[T](self, endpoint: str, fn: Callable[[], T]) -> T:
        self.calls[endpoint] = self.calls.get(endpoint, 0) + 1
        try:
            return fn()
        except BrokerRequestError:
            raise
        except BrokerError as exc:
            raise _SourceDown(f"Market-data account {self.source} failed ({endpoint}): "
                              f"{str(exc) or exc.user_message}") from exc


def resolve_legs(client: OpenAlgoClient, specs: Sequence[LegSpec], *, now: datetime, source: str | None = None,
                 contracts: ContractLookup = default_contract_lookup) -> Resolution:
    """Resolve legs through one broker client (no database access of its own but `contracts`).

    See `resolve_for_user`; `source` names the account in messages.
    """
    today = expiry_reference_day(now)
    run = _Run(client, source)
    pending = [_Pending(n, spec) for n, spec in enumerate(specs, start=1)]
    try:
        _choose_expiries(run, pending, today)
        _fetch_chains(run, pending)
        _select_from_chains(run, pending)
        quotes = _batch_quotes(run, pending)
        _select_from_batch(pending, quotes)
        if contracts is default_contract_lookup:
            _prefetch_contracts(client, pending)
        legs = tuple(_finish(p, quotes, client, today, contracts) for p in pending)
    except _SourceDown as exc:
        logger.warning("Leg resolution stopped: %s", exc)
        error = str(exc)
        legs = tuple(LegError(p.number, p.spec, LegFailure.MARKET_DATA_DOWN, error) for p in pending)
        return Resolution(run.source, now, today, legs, error=error, calls=dict(run.calls))
    return Resolution(run.source, now, today, legs, calls=dict(run.calls))


def _prefetch_contracts(client: OpenAlgoClient, pending: list[_Pending]) -> None:
    """Every chosen contract's broker figures read at once (the legs are finished one by one)."""
    from app.services.margin.contracts import prefetch_symbol_info

    prefetch_symbol_info(client, [(p.symbol, lookup_underlying(p.spec.underlying).derivatives_exchange)
                                  for p in _live(pending) if p.symbol is not None])


def _live(pending: list[_Pending]) -> list[_Pending]:
    return [p for p in pending if p.failure is None]


def _choose_expiries(run: _Run, pending: list[_Pending], today: date) -> None:
    lists: dict[str, tuple[list[str] | None, list[str]] | _LegFailed] = {}
    for p in pending:
        name = p.spec.underlying
        if name not in lists:
            lists[name] = _expiry_lists(run, name, any(q.spec.underlying == name
                                                       and q.spec.kind is InstrumentKind.OPTION for q in pending))
        found = lists[name]
        if isinstance(found, _LegFailed):
            p.failure = found
            continue
        options, futures = found
        try:
            p.expiry = leg_expiry(p.spec, options, futures, today)
        except (ExpiryUnavailable, InvalidExpiry) as exc:
            p.failure = _LegFailed(LegFailure.NO_EXPIRY, f"no expiry for {p.spec.expiry_choice.value.replace('_', ' ')}"
                                   f" in the broker's list of {name}: {exc}")


def _expiry_lists(run: _Run, name: str, with_options: bool) -> tuple[list[str] | None, list[str]] | _LegFailed:
    # The lists change once a day: they come from the per-host cache (margin/contracts.py
    # expiry_list), so an execution's path to its first order holds no expiry round trips.
    from app.services.margin.contracts import expiry_list
    from app.services.short_cache import CacheWaitTimeout

    try:
        futures = run.call("expiry", lambda: expiry_list(run.client, name, "futures"))
        options = run.call("expiry", lambda: expiry_list(run.client, name, "options")) if with_options else None
    except CacheWaitTimeout as exc:
        raise _SourceDown(f"Market-data account {run.source}: the expiry list did not arrive ({exc})") from exc
    except BrokerRequestError as exc:
        return _LegFailed(LegFailure.NO_EXPIRY, f"the broker refused the expiry list of {name}: {exc}")
    return options, futures


def _fetch_chains(run: _Run, pending: list[_Pending]) -> None:
    groups: dict[tuple[str, date], list[_Pending]] = {}
    for p in _live(pending):
        if p.spec.kind is InstrumentKind.OPTION:
            assert p.expiry is not None
            groups.setdefault((p.spec.underlying, p.expiry), []).append(p)
    for (name, expiry), legs in groups.items():
        window = chain_window(p.spec.strike_rule for p in legs if p.spec.strike_rule is not None)
        found = _chain(run, name, expiry, window)
        for p in legs:
            if isinstance(found, _LegFailed):
                p.failure = found
            else:
                p.chain, p.window = found, window


def _chain(run: _Run, name: str, expiry: date, window: int | None = None) -> OptionChain | _LegFailed:
    """The chain of one expiry: `window` strikes each side of ATM, or (None) every listed strike."""
    und = lookup_underlying(name)
    when = format_expiry(expiry)
    try:
        chain = run.call("optionchain", lambda: run.client.option_chain(und.symbol, und.quote_exchange, when,
                                                                        strike_count=window))
    except BrokerRequestError as exc:
        return _LegFailed(LegFailure.STRIKE_NOT_LISTED, f"no option chain for {name} {when}: {exc}")
    try:
        answered = parse_expiry(chain.expiry) if chain.expiry else expiry
    except InvalidExpiry:
        answered = None
    if answered != expiry:
        return _LegFailed(LegFailure.NO_CONTRACT, f"the broker answered the {when} chain of {name} "
                                                  f"with expiry {chain.expiry!r}")
    if not any(row.ce or row.pe for row in chain.rows):
        return _LegFailed(LegFailure.STRIKE_NOT_LISTED, f"no strikes listed for {name} {when}")
    if chain.underlying_ltp <= 0:
        return _LegFailed(LegFailure.NO_QUOTE, f"no price for {name} in the {when} chain (ATM needs one)")
    return chain


def _side(chain: OptionChain, option_type: OptionType) -> dict[Decimal, OptionLeg]:
    """The listed strikes of one option type, with their chain entries."""
    return {row.strike: leg for row in chain.rows
            if (leg := row.ce if option_type is OptionType.CE else row.pe) is not None}


def _chain_ltp(chain: OptionChain, leg: OptionLeg) -> Decimal | None:
    """A chain entry's LTP when the chain carries live quotes and the price is a price."""
    return leg.ltp if chain.quotes_included and leg.ltp > 0 else None


def _waits_for_batch(p: _Pending) -> bool:
    """A premium-near leg whose chain has no usable quote waits for the one batched quote call."""
    assert p.chain is not None and p.spec.strike_rule is not None and p.spec.option_type is not None
    if p.spec.strike_rule.method is not StrikeMethod.PREMIUM_NEAR:
        return False
    return all(_chain_ltp(p.chain, leg) is None for leg in _side(p.chain, p.spec.option_type).values())


def _select(p: _Pending, quotes: dict[Decimal, Decimal | None] | None) -> None:
    assert p.chain is not None and p.expiry is not None
    assert p.spec.strike_rule is not None and p.spec.option_type is not None
    side = _side(p.chain, p.spec.option_type)
    rule = p.spec.strike_rule
    try:
        strike = select_strike(rule, strikes=side, spot=p.chain.underlying_ltp, option_type=p.spec.option_type,
                               quotes=quotes)
    except StrikeUnavailable as exc:
        reason = LegFailure.NO_QUOTE if rule.method is StrikeMethod.PREMIUM_NEAR else LegFailure.STRIKE_NOT_LISTED
        p.failure = _LegFailed(reason, f"{exc} ({p.spec.underlying} {format_expiry(p.expiry)})")
        return
    built = option_symbol(p.spec.underlying, p.expiry, strike, p.spec.option_type)
    if side[strike].symbol and side[strike].symbol.upper() != built:
        p.failure = _LegFailed(LegFailure.NO_CONTRACT, f"the broker lists {side[strike].symbol} for strike "
                                                       f"{strike}, not {built}")
        return
    p.strike, p.chain_leg, p.symbol = strike, side[strike], built


def _select_from_chains(run: _Run, pending: list[_Pending]) -> None:
    """Every option leg that needs no extra quote: ATM/ITM/OTM/specific, and premium-near on
    the chain's own LTPs. When the window of a chain cannot serve one of its legs, EVERY leg of
    that chain is selected again on one full read: one answer's spot fixes ATM for all of them
    (a straddle's two legs on one strike), as when the chain was read in full at once."""
    selected = [p for p in _live(pending) if p.spec.kind is InstrumentKind.OPTION and not _waits_for_batch(p)]
    for p in selected:
        _select_on_chain(p)
    again = {(p.spec.underlying, p.expiry) for p in selected
             if p.window is not None and (p.failure is not None or not _window_serves(p))}
    for name, expiry in again:
        assert expiry is not None
        found = _chain(run, name, expiry)
        for p in selected:
            if (p.spec.underlying, p.expiry) != (name, expiry):
                continue
            p.failure, p.window, p.strike, p.chain_leg, p.symbol = None, None, None, None, None
            if isinstance(found, _LegFailed):
                p.failure = found
                continue
            p.chain = found
            _select_on_chain(p)


def _select_on_chain(p: _Pending) -> None:
    assert p.chain is not None and p.spec.option_type is not None
    side = _side(p.chain, p.spec.option_type)
    _select(p, {k: _chain_ltp(p.chain, leg) for k, leg in side.items()})


def _window_serves(p: _Pending) -> bool:
    """Did the leg's window hold its ATM inside it (so the walk from there is the full list's)?"""
    assert p.chain is not None and p.spec.option_type is not None
    return inside_window(_side(p.chain, p.spec.option_type), p.chain.underlying_ltp)


def _batch_quotes(run: _Run, pending: list[_Pending]) -> dict[tuple[str, str], Quote]:
    """ONE /multiquotes for every price the chains did not give (none needed: no call)."""
    wanted: dict[tuple[str, str], None] = {}
    for p in _live(pending):
        exchange = lookup_underlying(p.spec.underlying).derivatives_exchange
        if p.spec.kind is InstrumentKind.FUTURE:
            assert p.expiry is not None
            p.symbol = future_symbol(p.spec.underlying, p.expiry)
            wanted[(p.symbol, exchange)] = None
            index = lookup_underlying(p.spec.underlying)
            wanted[(index.symbol, index.quote_exchange)] = None  # its spot, in the same call
        elif p.symbol is None:  # premium-near waiting for quotes: every candidate of its type
            assert p.chain is not None and p.spec.option_type is not None
            for leg in _side(p.chain, p.spec.option_type).values():
                wanted[(leg.symbol, exchange)] = None
        elif p.chain is not None and p.chain_leg is not None and _chain_ltp(p.chain, p.chain_leg) is None:
            wanted[(p.symbol, exchange)] = None
    if not wanted:
        return {}
    try:
        return run.call("multiquotes", lambda: run.client.multiquotes(list(wanted)))
    except BrokerRequestError as exc:  # e.g. every symbol unknown to the broker
        logger.info("Batched quotes refused: %s", exc)
        return {}


def _select_from_batch(pending: list[_Pending], quotes: dict[tuple[str, str], Quote]) -> None:
    for p in _live(pending):
        if p.spec.kind is InstrumentKind.OPTION and p.symbol is None:
            assert p.chain is not None and p.spec.option_type is not None
            exchange = lookup_underlying(p.spec.underlying).derivatives_exchange
            side = _side(p.chain, p.spec.option_type)
            _select(p, {k: (q.ltp if (q := quotes.get((leg.symbol, exchange))) else None) for k, leg in side.items()})


def _finish(p: _Pending, quotes: dict[tuple[str, str], Quote], client: OpenAlgoClient, today: date,
            contracts: ContractLookup) -> ResolvedLeg | LegError:
    if p.failure is not None:
        return LegError(p.number, p.spec, p.failure.reason, p.failure.detail)
    assert p.symbol is not None and p.expiry is not None
    exchange = lookup_underlying(p.spec.underlying).derivatives_exchange
    chain_ltp = _chain_ltp(p.chain, p.chain_leg) if p.chain is not None and p.chain_leg is not None else None
    quote = quotes.get((p.symbol, exchange))
    ltp = chain_ltp if chain_ltp is not None else (quote.ltp if quote is not None and quote.ltp > 0 else None)
    if ltp is None:
        return LegError(p.number, p.spec, LegFailure.NO_QUOTE, f"no live quote for {p.symbol}")
    try:
        contract = contracts(client, p.spec.underlying, p.symbol, exchange, p.expiry, today)
    except ContractUnknown as exc:
        return LegError(p.number, p.spec, LegFailure.NO_CONTRACT, f"{p.symbol}: {exc}")
    leg = p.chain_leg
    if p.chain is not None:
        spot = p.chain.underlying_ltp
    else:
        index = lookup_underlying(p.spec.underlying)
        index_quote = quotes.get((index.symbol, index.quote_exchange))
        spot = index_quote.ltp if index_quote is not None and index_quote.ltp > 0 else Decimal(0)
    return ResolvedLeg(
        number=p.number, spec=p.spec, symbol=p.symbol, exchange=exchange, expiry=p.expiry, strike=p.strike,
        option_type=p.spec.option_type, ltp=ltp, spot=spot, lot_size=contract.lot_size,
        freeze_qty=contract.freeze_qty, max_lots_per_order=contract.max_lots_per_order, lot_source=contract.source,
        tick_size=leg.tick_size if leg is not None and leg.tick_size > 0 else _DEFAULT_TICK,
        quote_source="optionchain" if chain_ltp is not None else "multiquotes",
        iv=leg.iv if leg else None, delta=leg.delta if leg else None, gamma=leg.gamma if leg else None,
        theta=leg.theta if leg else None, vega=leg.vega if leg else None)
