"""What leg resolution produces: a resolved leg, or an error naming the leg, per spec.

Plain values (no ORM, no broker JSON), so the preview, the pages and later the executor can
read them without knowing how they were fetched (resolution.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from app.broker.client import OpenAlgoClient
from app.domain.expiries import expiry_close
from app.domain.instruments import OptionType
from app.domain.legs import LegSpec, limit_price
from app.domain.strategy_settings import OrderType


class LegFailure(StrEnum):
    """Why a leg did not resolve."""

    NO_EXPIRY = "no_expiry"
    STRIKE_NOT_LISTED = "strike_not_listed"
    NO_QUOTE = "no_quote"
    NO_CONTRACT = "no_contract"
    MARKET_DATA_DOWN = "market_data_down"


@dataclass(frozen=True)
class LegError:
    """A leg that did not resolve: which leg (1-based), why, and the detail."""

    number: int
    spec: LegSpec
    reason: LegFailure
    detail: str

    @property
    def message(self) -> str:
        return f"Leg {self.number} ({self.spec.label}): {self.detail}"


@dataclass(frozen=True)
class Contract:
    """Lot size and freeze quantity of a contract, and where the lot size came from."""

    lot_size: int
    freeze_qty: int
    max_lots_per_order: int
    source: str  # "broker" or "settings"


# (client, underlying, symbol, exchange, expiry, today) -> Contract; raises ContractUnknown
# when neither the broker nor the stored settings know the contract.
ContractLookup = Callable[[OpenAlgoClient, str, str, str, date, date], Contract]


class ContractUnknown(Exception):
    """Neither the broker nor the stored settings give a lot size for the contract."""


@dataclass(frozen=True)
class ResolvedLeg:
    """A leg resolved to one contract, with what the market says about it now."""

    number: int
    spec: LegSpec
    symbol: str
    exchange: str
    expiry: date
    strike: Decimal | None  # None for a future
    option_type: OptionType | None
    ltp: Decimal
    spot: Decimal  # the underlying's price in the same answer (0: not known)
    lot_size: int
    freeze_qty: int
    max_lots_per_order: int
    lot_source: str
    tick_size: Decimal
    quote_source: str  # "optionchain" or "multiquotes"
    iv: Decimal | None = None  # percent, from the chain
    delta: Decimal | None = None
    gamma: Decimal | None = None
    theta: Decimal | None = None
    vega: Decimal | None = None

    @property
    def quantity(self) -> int:
        """Units of one strategy lot of this leg: its lots × the contract's lot size."""
        return self.spec.lots * self.lot_size

    @property
    def expires_at(self) -> datetime:
        """The 15:30 IST close of the expiry day, as aware UTC."""
        return expiry_close(self.expiry)

    @property
    def limit_price(self) -> Decimal | None:
        """The LIMIT entry price (LTP ± the buffer, on the tick); None for a MARKET leg."""
        if self.spec.order_type is not OrderType.LIMIT or self.spec.limit_buffer_pct is None:
            return None
        return limit_price(self.ltp, self.spec.action, self.spec.limit_buffer_pct, self.tick_size)


@dataclass(frozen=True)
class Resolution:
    """One resolution: every leg in order, resolved or failed, and where the data came from."""

    source: str | None  # the market-data account's name
    resolved_at: datetime  # aware UTC
    today: date  # the day expiry choices counted from
    legs: tuple[ResolvedLeg | LegError, ...]
    error: str | None = None  # a failure of the whole source (no account, account down)
    calls: dict[str, int] = field(default_factory=dict)  # broker calls made, by endpoint

    @property
    def ok(self) -> bool:
        return self.error is None and all(isinstance(leg, ResolvedLeg) for leg in self.legs)

    @property
    def resolved(self) -> list[ResolvedLeg]:
        return [leg for leg in self.legs if isinstance(leg, ResolvedLeg)]

    @property
    def errors(self) -> list[LegError]:
        return [leg for leg in self.legs if isinstance(leg, LegError)]
