"""The unified dashboard: one card per account and totals, from the shared cache."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from flask import current_app

from app.broker.parsing import Funds, to_decimal
from app.domain.expiries import ist_today
from app.domain.margin import AVAILABLE_MARGIN_FORMULA, available_margin, todays_pnl, used_margin
from app.models.accounts import TradingAccount
from app.models.types import utcnow
from app.models.users import User
from app.services.account_data import load_accounts, refresh_stale
from app.services.market_source import choose_source
from app.services.risk.events import blocked_accounts


@dataclass(frozen=True)
class AccountCard:
    id: int
    name: str
    broker: str
    is_paper: bool
    is_primary: bool
    is_active: bool
    status: str
    available_margin: Decimal | None
    used_margin: Decimal | None
    realized_pnl: Decimal | None
    unrealized_pnl: Decimal | None
    todays_pnl: Decimal | None
    open_positions: int
    data_age_seconds: float | None
    error: str | None
    entries_blocked: str | None = None  # a daily loss/profit limit was breached today (the reason)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, Decimal):
                data[key] = str(value)
        return data


def funds_from_cache(raw: dict[str, Any] | None) -> Funds | None:
    if not raw:
        return None
    return Funds(*(to_decimal(raw.get(k)) for k in (
        "available_cash", "collateral", "utilised_debits", "m2m_realized", "m2m_unrealized")))


def card_for(account: TradingAccount, entries_blocked: str | None = None) -> AccountCard:
    funds = funds_from_cache(account.last_funds)
    age = (utcnow() - account.last_data_at).total_seconds() if account.last_data_at else None
    positions = account.last_positions or []
    return AccountCard(
        id=account.id, name=account.account_name, broker=account.broker_name or "", is_paper=account.is_paper,
        is_primary=account.is_primary, is_active=account.is_active, status=account.connection_status,
        available_margin=available_margin(funds) if funds else None,
        used_margin=used_margin(funds) if funds else None,
        realized_pnl=funds.m2m_realized if funds else None,
        unrealized_pnl=funds.m2m_unrealized if funds else None,
        todays_pnl=todays_pnl(funds) if funds else None,
        open_positions=sum(1 for p in positions if int(p.get("quantity") or 0) != 0),
        data_age_seconds=round(age, 1) if age is not None else None,
        error=account.last_error, entries_blocked=entries_blocked,
    )


def _total(cards: list[AccountCard], field: str) -> str:
    return str(sum((getattr(c, field) for c in cards if getattr(c, field) is not None), Decimal("0")))


def snapshot(user: User, *, refresh: bool = True) -> dict[str, Any]:
    """Cards and totals for the user's accounts, from the cache; stale caches refresh in the background.

    The page waits (at most DASHBOARD_WAIT_SECONDS) only for accounts it has nothing to show for yet.
    An account with cached data is shown at once with the data's age and its refresh lands in the
    background for the next poll: an account slower than the wait would hold the page for the whole
    wait and still show the old data (issue 7 point 11: p95 <= 300 ms with one hanging account).
    """
    accounts = load_accounts(user.id)
    if refresh and refresh_stale(accounts, wait_seconds=current_app.config["DASHBOARD_WAIT_SECONDS"],
                                 wait_for_cached=False):
        accounts = load_accounts(user.id)  # one query re-reads what the refreshes stored
    blocked = blocked_accounts([a.id for a in accounts], ist_today(utcnow()))
    cards = [card_for(a, blocked.get(a.id)) for a in accounts]
    active = [c for c in cards if c.is_active]
    source = choose_source(accounts)
    return {
        "market_data_source": source.account_name if source else None,
        "accounts": [c.as_json() for c in cards],
        "totals": {
            "accounts": len(active),
            "connected": sum(1 for c in active if c.status == "connected"),
            "available_margin": _total(active, "available_margin"),
            "used_margin": _total(active, "used_margin"),
            "realized_pnl": _total(active, "realized_pnl"),
            "unrealized_pnl": _total(active, "unrealized_pnl"),
            "todays_pnl": _total(active, "todays_pnl"),
            "open_positions": sum(c.open_positions for c in active),
        },
        "formula": AVAILABLE_MARGIN_FORMULA,
        "generated_at": utcnow().isoformat(),
    }
