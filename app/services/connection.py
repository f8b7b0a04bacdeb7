"""Connection checks: ping an account, count failures, and record every status change.

Three consecutive failed pings mark an account disconnected (DOMAIN.md); one good ping marks
it connected again. A refused key (403) is an auth error at once: retrying will not help until
the user renews the broker login in OpenAlgo.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app.broker.client import OpenAlgoClient
from app.broker.errors import BrokerAuthError, BrokerError, HostNotAllowed
from app.extensions import db
from app.models.accounts import STATUS_AUTH_ERROR, STATUS_CONNECTED, STATUS_DISCONNECTED, TradingAccount
from app.models.types import utcnow
from app.services import audit

logger = logging.getLogger(__name__)

FAILURES_BEFORE_DISCONNECT = 3


@dataclass(frozen=True)
class PingOutcome:
    ok: bool
    broker: str | None = None
    error: str | None = None
    auth_failed: bool = False


def ping_client(client: OpenAlgoClient) -> PingOutcome:
    """Network only."""
    try:
        return PingOutcome(True, broker=client.ping())
    except BrokerAuthError as exc:
        return PingOutcome(False, error=str(exc), auth_failed=True)
    except BrokerError as exc:
        return PingOutcome(False, error=str(exc))


def ping(account: TradingAccount) -> PingOutcome:
    from app.services.accounts import client_for

    try:
        client = client_for(account)
    except HostNotAllowed as exc:
        return PingOutcome(False, error=str(exc))
    return ping_client(client)


def ping_confirmed(client: OpenAlgoClient, *, retries: int, delay: float,
                   sleep=None) -> list[PingOutcome]:
    """Ping; when it fails for a reason other than the key, ping again up to `retries` times,
    `delay` seconds apart, so a dead host reaches three strikes within one monitor cycle while
    a single lost packet does not. Network only."""
    import time

    sleep = sleep or time.sleep
    outcomes = [ping_client(client)]
    while not outcomes[-1].ok and not outcomes[-1].auth_failed and len(outcomes) <= retries:
        sleep(delay)
        outcomes.append(ping_client(client))
    return outcomes


def next_status(current: str, failures: int, outcome: PingOutcome) -> tuple[str, int]:
    """Pure transition: (status, consecutive failures) after one ping."""
    if outcome.ok:
        return STATUS_CONNECTED, 0
    failures += 1
    if outcome.auth_failed:
        return STATUS_AUTH_ERROR, failures
    if failures >= FAILURES_BEFORE_DISCONNECT:
        return STATUS_DISCONNECTED, failures
    return current, failures


def apply_outcome(account: TradingAccount, outcome: PingOutcome) -> str | None:
    """Store a ping result; returns the new status when it changed (and logs the change).

    The row is re-read under a row lock (PostgreSQL) so the leader's monitor and a web worker's
    refresh cannot overwrite each other's count of strikes.
    """
    db.session.refresh(account, attribute_names=["connection_status", "consecutive_failures"], with_for_update=True)
    previous = account.connection_status
    status, failures = next_status(previous, account.consecutive_failures, outcome)
    now = utcnow()
    account.connection_status, account.consecutive_failures, account.last_checked_at = status, failures, now
    if outcome.ok:
        account.last_connected_at = now
        account.broker_name = outcome.broker or account.broker_name
        account.last_error = None
    else:
        account.last_error = (outcome.error or "")[:500]
    changed = status if status != previous else None
    if changed:
        logger.warning("Account %s (%s) is now %s (was %s): %s", account.id, account.account_name, status, previous,
                       outcome.error or "ping ok")
        audit.record("account_connection_changed", category="monitor", user=_owner(account), commit=False,
                     success=outcome.ok, details={"account_id": account.id, "account_name": account.account_name,
                                                  "from": previous, "to": status, "error": outcome.error})
    db.session.commit()
    return changed


def _owner(account: TradingAccount):
    from app.models.users import User

    return db.session.get(User, account.user_id)


def check_connection(account: TradingAccount) -> PingOutcome:
    """Ping now and record the result (user-triggered "Test connection")."""
    from app.services.accounts import client_for

    account_id = account.id
    try:
        client: OpenAlgoClient | None = client_for(account)
    except HostNotAllowed as exc:
        client, outcome = None, PingOutcome(False, error=str(exc))
    db.session.commit()  # no transaction open across the network call
    if client is not None:
        outcome = ping_client(client)
    fresh = db.session.get(TradingAccount, account_id)
    if fresh is not None:
        apply_outcome(fresh, outcome)
    return outcome
