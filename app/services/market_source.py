"""Which account supplies a user's market data: the primary, or the next healthy account.

The primary serves while it is not known to be down. When it is disconnected (three failed
pings) or its broker login expired, the first active, connected account in the user's backup
order takes over; when the primary recovers, it takes market data back. Every switch is logged
and written to the audit log.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from app.extensions import db
from app.models.accounts import STATUS_AUTH_ERROR, STATUS_CONNECTED, STATUS_DISCONNECTED, TradingAccount
from app.models.users import User
from app.services import audit
from app.services.settings import get_setting, set_setting

logger = logging.getLogger(__name__)

_DOWN = (STATUS_DISCONNECTED, STATUS_AUTH_ERROR)


def choose_source(accounts: list[TradingAccount]) -> TradingAccount | None:
    """Pure choice over a user's accounts (any order)."""
    usable = [a for a in accounts if a.is_active and a.deleted_at is None]
    primary = next((a for a in usable if a.is_primary), None)
    if primary is not None and primary.connection_status not in _DOWN:
        return primary
    backups = sorted((a for a in usable if not a.is_primary and a.connection_status == STATUS_CONNECTED),
                     key=lambda a: (a.failover_order, a.id))
    return backups[0] if backups else primary


def user_accounts(user_id: int) -> list[TradingAccount]:
    return list(db.session.scalars(select(TradingAccount).where(
        TradingAccount.user_id == user_id, TradingAccount.deleted_at.is_(None))))


def market_data_account(user: User) -> TradingAccount | None:
    return choose_source(user_accounts(user.id))


def _key(user_id: int) -> str:
    return f"market_data_source:{user_id}"


def update_sources() -> list[tuple[int, int | None, int | None]]:
    """Recompute every user's source; log and audit each switch. Returns (user, from, to) switches."""
    switches = []
    user_ids = db.session.scalars(select(TradingAccount.user_id).where(TradingAccount.deleted_at.is_(None))
                                  .distinct()).all()
    for user_id in user_ids:
        accounts = user_accounts(user_id)
        chosen = choose_source(accounts)
        new_id = chosen.id if chosen else None
        previous = get_setting(_key(user_id))
        old_id = int(previous) if previous else None
        if previous is None:
            set_setting(_key(user_id), str(new_id or ""), commit=True)
            continue
        if old_id != new_id:
            names = {a.id: a.account_name for a in accounts}
            primary = chosen is not None and chosen.is_primary
            action = "market_data_failback" if primary else "market_data_failover"
            logger.warning("Market data for user %s: %s -> %s", user_id, names.get(old_id or -1),
                           names.get(new_id or -1))
            audit.record(action, category="monitor", user=db.session.get(User, user_id), commit=False, details={
                "from": names.get(old_id or -1), "to": names.get(new_id or -1)})
            set_setting(_key(user_id), str(new_id or ""), commit=False)
            db.session.commit()
            switches.append((user_id, old_id, new_id))
    return switches
