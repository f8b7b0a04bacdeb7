"""Trading accounts: validation, the connection check before any key is stored, ownership, lifecycle.

Network calls (ping, positions, provisioning) always happen before the database transaction
that records their result, never inside one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import abort, current_app
from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError

from app.broker.client import ClientRegistry, ClientSettings, OpenAlgoClient
from app.broker.errors import BrokerAuthError, BrokerError, HostNotAllowed
from app.broker.paper import provision_paper_account
from app.domain import hosts
from app.extensions import db
from app.models.accounts import STATUS_CONNECTED, TradingAccount
from app.models.types import utcnow
from app.models.users import User
from app.services import audit, outbound
from app.services.encryption import get_encryptor

logger = logging.getLogger(__name__)

class AccountError(Exception):
    """An account action was refused; `field` names the form field the message belongs to."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


# --- validation (pure) ---------------------------------------------------------------------------

def normalize_url(raw: str, schemes: tuple[str, ...], field: str) -> str:
    """The canonical form of a host or WebSocket URL (see app/domain/hosts.py), or AccountError."""
    url = (raw or "").strip()
    scheme, sep, _rest = url.partition("://")
    if not sep or scheme.lower() not in schemes:
        raise AccountError(f"Use a full URL starting with {' or '.join(s + '://' for s in schemes)}.", field)
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None  # canonical_url reports it
    if parts is not None and (parts.query or parts.fragment):
        raise AccountError("The URL must not contain a query (?…) or fragment (#…).", field)
    try:
        return hosts.canonical_url(url)
    except hosts.HostRuleError as exc:
        raise AccountError(exc.message, field) from exc


def default_ws_url(host_url: str) -> str:
    """OpenAlgo's WebSocket default: same host, port 8765, ws:// or wss:// to match the host."""
    dest = hosts.destination(host_url)
    scheme = "wss" if dest.scheme == "https" else "ws"
    return f"{scheme}://{hosts.Destination(scheme, dest.host, 8765, '').address}"


def check_api_key(raw: str) -> str:
    key = raw or ""
    if not key.strip():
        raise AccountError("Enter the API key from OpenAlgo.", "api_key")
    if key != key.strip() or any(c.isspace() for c in key):
        raise AccountError("The API key contains spaces or line breaks; paste it again without them.", "api_key")
    if len(key) > 256:
        raise AccountError("The API key is too long (at most 256 characters).", "api_key")
    return key


# --- outbound allow-list (app/services/outbound.py) ---------------------------------------------

def check_host_allowed(url: str, field: str = "host_url") -> None:
    """Refuse a URL whose host:port the administrator's allow-list does not cover (empty list: any)."""
    allowed = outbound.allowlist()
    if allowed is None:
        return
    dest = hosts.destination(url)
    if not hosts.is_allowed(dest, allowed):
        listed = ", ".join(str(e) for e in allowed) or "(none)"
        raise AccountError(f"{dest.address} is not on the administrator's list of allowed hosts: {listed}. "
                           "A host without a port allows ports 80 and 443 only.", field)


# --- broker access --------------------------------------------------------------------------------

def client_settings() -> ClientSettings:
    cfg = current_app.config
    return ClientSettings(connect_timeout=cfg["BROKER_CONNECT_TIMEOUT"], read_timeout=cfg["BROKER_READ_TIMEOUT"],
                          orders_per_second=cfg["BROKER_ORDERS_PER_SECOND"],
                          reads_per_second=cfg["BROKER_READS_PER_SECOND"],
                          pacing_redis_url=cfg["REDIS_URL"], pacing_key_prefix=cfg["BROKER_PACING_KEY_PREFIX"],
                          pacing_max_wait=cfg["BROKER_PACING_MAX_WAIT_SECONDS"],
                          http_client=cfg["BROKER_HTTP_CLIENT"])


def client_registry() -> ClientRegistry:
    registry = current_app.extensions.get("broker_clients")
    if registry is None:
        registry = current_app.extensions.setdefault("broker_clients", ClientRegistry(client_settings()))
    return registry


def account_urls_allowed(account: TradingAccount) -> bool:
    """True when the current allow-list covers the account's host URL and WebSocket URL.

    Checked on every use, not only when the URL was entered: removing a host from the list
    stops the monitor, refresher, feed and pages from sending that account's key there.
    """
    allowed = outbound.allowlist()
    if allowed is None:
        return True
    for url in (account.host_url, account.websocket_url):
        if not url:
            continue
        try:
            if not hosts.is_allowed(hosts.destination(url), allowed):
                return False
        except hosts.HostRuleError:
            return False
    return True


def client_for(account: TradingAccount) -> OpenAlgoClient:
    """The pooled client of an account (the key is decrypted here and nowhere else).

    Raises:
        HostNotAllowed: the allow-list no longer covers the account's host or WebSocket URL.
    """
    if not account_urls_allowed(account):
        # Every service cycle asks again: warn when an account becomes refused, not on every call.
        refused: set[int] = current_app.extensions.setdefault("allowlist_refused_accounts", set())
        log = logger.debug if account.id in refused else logger.warning
        refused.add(account.id)
        log("Not contacting account %s: host %r or WebSocket %r is not on the allow-list",
            account.id, account.host_url, account.websocket_url)
        raise HostNotAllowed(HostNotAllowed.user_message)
    if account.id in current_app.extensions.get("allowlist_refused_accounts", ()):
        current_app.extensions["allowlist_refused_accounts"].discard(account.id)
        logger.info("Account %s is on the allow-list again", account.id)
    api_key = get_encryptor().decrypt(account.api_key_encrypted)
    return client_registry().get(account.id, account.host_url, api_key, label=f"{account.id}:{account.account_name}",
                                 ws_url=account.websocket_url)


# One answer for every failed check except a refused key: it must not tell a closed port from an
# open non-HTTP port or from a foreign web service, nor repeat anything the remote host said, or
# the add form becomes a port scanner that reads banners (docs/security.md).
UNVERIFIED_HOST = ("Could not verify an OpenAlgo server at this address with this key. Check that the URL is the "
                   "OpenAlgo base URL (e.g. http://127.0.0.1:5000) and that OpenAlgo is running, then try again.")
KEY_REFUSED = "OpenAlgo refused this API key: check the key, or log the broker in again in OpenAlgo."


def explain_broker_error(exc: BrokerError, host_url: str) -> AccountError:
    """The user-facing reason a check failed; the detail goes to the log only.

    A 401/403 answered with JSON (OpenAlgo's "Invalid openalgo apikey") is reported as a
    refused key: it is the one answer a user can act on. Any other failure (refused
    connection, timeout, garbage, HTML, other JSON, 429, 5xx) gets UNVERIFIED_HOST.
    """
    logger.warning("Account check failed: host=%r error=%s endpoint=%s status=%s detail=%r", host_url,
                   type(exc).__name__, exc.endpoint, exc.status_code, str(exc)[:300])
    if isinstance(exc, BrokerAuthError):
        return AccountError(KEY_REFUSED, "api_key")
    return AccountError(UNVERIFIED_HOST, "host_url")


def probe(host_url: str, api_key: str) -> str:
    """Ping with a throw-away client; return the broker name or raise AccountError saying why not."""
    client = OpenAlgoClient(host_url, api_key, account_label="probe", settings=client_settings())
    try:
        return client.ping()
    except BrokerError as exc:
        raise explain_broker_error(exc, host_url) from exc
    finally:
        client.close()


# --- ownership ------------------------------------------------------------------------------------

def owned_accounts(user: User, *, include_inactive: bool = True) -> Select[TradingAccount]:
    """Every query for a user's accounts starts here: scoped to the user, deleted ones excluded."""
    stmt = select(TradingAccount).where(TradingAccount.user_id == user.id, TradingAccount.deleted_at.is_(None))
    if not include_inactive:
        stmt = stmt.where(TradingAccount.is_active.is_(True))
    return stmt.order_by(TradingAccount.is_primary.desc(), TradingAccount.failover_order, TradingAccount.id)


def get_owned(user: User, account_id: int) -> TradingAccount:
    """The user's account, or 404 (never 403: ids of other users' accounts are not confirmed)."""
    account = db.session.scalar(select(TradingAccount).where(
        TradingAccount.id == account_id, TradingAccount.user_id == user.id, TradingAccount.deleted_at.is_(None)))
    if account is None:
        abort(404)
    return account


def _name_taken(user: User, name: str, exclude_id: int | None = None) -> bool:
    stmt = select(func.count()).select_from(TradingAccount).where(
        TradingAccount.user_id == user.id, func.lower(TradingAccount.account_name) == name.lower(),
        TradingAccount.deleted_at.is_(None))
    if exclude_id is not None:
        stmt = stmt.where(TradingAccount.id != exclude_id)
    return (db.session.scalar(stmt) or 0) > 0


def check_name(user: User, name: str, exclude_id: int | None = None) -> str:
    cleaned = (name or "").strip()
    if not cleaned:
        raise AccountError("Enter an account name.", "account_name")
    if len(cleaned) > 64:
        raise AccountError("Use at most 64 characters.", "account_name")
    if _name_taken(user, cleaned, exclude_id):
        raise AccountError("You already have an account with this name.", "account_name")
    return cleaned


# --- lifecycle ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AccountInput:
    account_name: str
    host_url: str
    websocket_url: str | None
    api_key: str | None  # None on edit = keep the stored key
    is_primary: bool = False


def _next_failover_order(user: User) -> int:
    current = db.session.scalar(select(func.max(TradingAccount.failover_order)).where(
        TradingAccount.user_id == user.id, TradingAccount.deleted_at.is_(None)))
    return (current or 0) + 10


def _urls(data: AccountInput) -> tuple[str, str]:
    host = normalize_url(data.host_url, ("http", "https"), "host_url")
    ws = normalize_url(data.websocket_url, ("ws", "wss"), "websocket_url") if data.websocket_url else (
        default_ws_url(host))
    return host, ws


def _check_allowed(host: str, ws: str) -> None:
    check_host_allowed(host)
    check_host_allowed(ws, "websocket_url")  # the feed sends the key there too


def create_account(user: User, data: AccountInput, *, is_paper: bool = False) -> TradingAccount:
    """Validate, ping with the key, then store it encrypted. Nothing is saved if any step fails."""
    name = check_name(user, data.account_name)
    host, ws = _urls(data)
    _check_allowed(host, ws)
    key = check_api_key(data.api_key or "")
    db.session.commit()  # end the read transaction: no connection is held across the network call
    broker = probe(host, key)
    has_primary = db.session.scalar(select(func.count()).select_from(TradingAccount).where(
        TradingAccount.user_id == user.id, TradingAccount.is_primary.is_(True),
        TradingAccount.deleted_at.is_(None))) or 0
    now = utcnow()
    account = TradingAccount(
        user_id=user.id, account_name=name, broker_name=broker, host_url=host, websocket_url=ws,
        api_key_encrypted=get_encryptor().encrypt(key), api_key_last4=key[-4:], is_paper=is_paper,
        is_primary=False, failover_order=_next_failover_order(user), connection_status=STATUS_CONNECTED,
        last_connected_at=now, last_checked_at=now,
    )
    db.session.add(account)
    try:
        db.session.flush()
        if data.is_primary or not has_primary:
            _make_primary(user, account)
        audit.record("account_added", category="account", user=user, commit=False, details={
            "account_id": account.id, "account_name": name, "host": host, "broker": broker, "paper": is_paper})
        db.session.commit()
    except IntegrityError as exc:  # a concurrent add took the same name
        db.session.rollback()
        raise AccountError("You already have an account with this name.", "account_name") from exc
    return account


KEY_AGAIN = ("Enter the API key again: a stored key is only ever sent to the host and WebSocket URL it was "
             "entered for, and you changed {what}.")


def update_account(user: User, account: TradingAccount, data: AccountInput) -> TradingAccount:
    """Edit an account; a new key or host is pinged first, and refused with the reason if it fails.

    Key custody: the stored key never goes to a destination the user did not enter it for. A
    changed host or WebSocket URL (compared after normalisation, so case, a trailing slash or
    an explicit default port are not changes) is refused unless the key is entered again, before
    anything is sent or saved. Every edit that sends a key (a new key or a new URL) is checked
    against the allow-list; a rename or a primary change is not, so tightening the list does not
    lock users out of renaming accounts it already covers.
    """
    name = check_name(user, data.account_name, exclude_id=account.id)
    host, ws = _urls(data)
    new_key = check_api_key(data.api_key) if data.api_key else None
    host_changed = not hosts.same_destination(host, account.host_url)
    ws_changed = not hosts.same_destination(ws, account.websocket_url)  # no stored URL: a change
    if new_key is not None or host_changed or ws_changed:
        _check_allowed(host, ws)
    if new_key is None and (host_changed or ws_changed):
        what = " and ".join(w for w, c in (("the host URL", host_changed), ("the WebSocket URL", ws_changed)) if c)
        raise AccountError(KEY_AGAIN.format(what=what), "api_key")
    changes = sorted(k for k, changed in {
        "account_name": name != account.account_name, "host_url": host_changed,
        "websocket_url": ws_changed, "api_key": new_key is not None}.items() if changed)
    if new_key is not None:
        db.session.commit()  # end the read transaction before the network call
        account.broker_name = probe(host, new_key)
        account.api_key_encrypted = get_encryptor().encrypt(new_key)
        account.api_key_last4 = new_key[-4:]
        account.connection_status = STATUS_CONNECTED
        account.consecutive_failures = 0
        account.last_connected_at = account.last_checked_at = utcnow()
    account.account_name, account.host_url, account.websocket_url = name, host, ws
    if data.is_primary and not account.is_primary:
        if not account.is_active:
            raise AccountError("Activate the account before making it primary.")
        _make_primary(user, account)
        changes.append("primary")
    audit.record("account_updated", category="account", user=user, commit=False,
                 details={"account_id": account.id, "changed": changes})
    db.session.commit()
    return account


def _make_primary(user: User, account: TradingAccount) -> None:
    for other in db.session.scalars(owned_accounts(user)):
        other.is_primary = other.id == account.id


def set_primary(user: User, account: TradingAccount) -> None:
    if not account.is_active:
        raise AccountError("Activate the account before making it primary.")
    _make_primary(user, account)
    audit.record("account_primary_set", category="account", user=user, commit=False,
                 details={"account_id": account.id, "account_name": account.account_name})
    db.session.commit()


def set_active(user: User, account: TradingAccount, active: bool) -> None:
    if account.is_active == active:
        return
    account.is_active = active
    promoted = None
    if not active and account.is_primary:
        account.is_primary = False
        promoted = db.session.scalar(owned_accounts(user, include_inactive=False).where(
            TradingAccount.id != account.id).limit(1))
        if promoted is not None:
            promoted.is_primary = True
    audit.record("account_activated" if active else "account_deactivated", category="account", user=user,
                 commit=False, details={"account_id": account.id, "account_name": account.account_name,
                                        "new_primary": promoted.account_name if promoted else None})
    db.session.commit()


def move_in_failover(user: User, account: TradingAccount, direction: str) -> None:
    """Swap the account with its neighbour in the backup order ("up" = used earlier)."""
    ordered = list(db.session.scalars(select(TradingAccount).where(
        TradingAccount.user_id == user.id, TradingAccount.deleted_at.is_(None)).order_by(
        TradingAccount.failover_order, TradingAccount.id)))
    index = next(i for i, a in enumerate(ordered) if a.id == account.id)
    other = index - 1 if direction == "up" else index + 1
    if 0 <= other < len(ordered):
        ordered[index], ordered[other] = ordered[other], ordered[index]
        for position, item in enumerate(ordered):
            item.failover_order = (position + 1) * 10
        audit.record("account_failover_order_changed", category="account", user=user, commit=False,
                     details={"order": [a.account_name for a in ordered]})
        db.session.commit()


def open_positions(account: TradingAccount) -> list[str] | None:
    """Symbols with a non-zero position, live from the broker; None when the broker cannot say."""
    client = client_for(account)
    db.session.commit()  # no transaction open across the network call
    try:
        positions = client.positions()
    except BrokerError:
        return None
    return [f"{p.symbol} ({p.quantity:+d})" for p in positions if p.quantity != 0]


def delete_account(user: User, account: TradingAccount) -> None:
    """Soft delete: refused while positions are open; history rows keep pointing at the row.

    When the broker cannot be asked, only an account the user already deactivated may be
    deleted (an explicit choice: AlgoMirror then stops watching positions it cannot see).
    """
    was_active = account.is_active
    open_now = open_positions(account)  # network, outside any transaction
    if open_now is None:
        if was_active:
            raise AccountError("Cannot check this account's positions: OpenAlgo does not answer. Deactivate the "
                               "account first if you still want to delete it, or try again when it is reachable.")
        logger.warning("Deleting account %s without a position check (broker unreachable)", account.id)
    if open_now:
        raise AccountError("This account has open positions: " + ", ".join(open_now[:5])
                           + (" …" if len(open_now) > 5 else "") + ". Close them before deleting the account.")
    name = account.account_name
    account.deleted_at = utcnow()
    account.is_active = False
    was_primary, account.is_primary = account.is_primary, False
    suffix = f" [deleted #{account.id}]"
    account.account_name = name[: 64 - len(suffix)] + suffix  # frees the name; the id keeps it unique
    if was_primary:
        successor = db.session.scalar(owned_accounts(user, include_inactive=False).where(
            TradingAccount.id != account.id).limit(1))
        if successor is not None:
            successor.is_primary = True
    audit.record("account_deleted", category="account", user=user, commit=False,
                 details={"account_id": account.id, "account_name": name, "positions_verified": open_now is not None})
    db.session.commit()
    current_app.extensions.get("broker_clients", ClientRegistry()).forget(account.id)


def add_paper_account(user: User) -> TradingAccount:
    cfg = current_app.config
    token = cfg.get("PAPERBROKER_ADMIN_TOKEN")
    if not token:
        raise AccountError("The paper broker's admin token is not configured (PAPERBROKER_ADMIN_TOKEN).")
    _check_allowed(*_urls(AccountInput("", cfg["PAPER_BROKER_URL"], cfg["PAPER_BROKER_WS_URL"], None)))
    db.session.commit()  # no transaction open across the network call
    try:
        key = provision_paper_account(cfg["PAPER_BROKER_URL"], token)
    except BrokerError as exc:
        raise AccountError(f"Could not create a paper account: {exc}") from exc
    count = db.session.scalar(select(func.count()).select_from(TradingAccount).where(
        TradingAccount.user_id == user.id, TradingAccount.is_paper.is_(True))) or 0
    name = f"Paper {count + 1}"
    while _name_taken(user, name):
        count += 1
        name = f"Paper {count + 1}"
    return create_account(user, AccountInput(name, cfg["PAPER_BROKER_URL"], cfg["PAPER_BROKER_WS_URL"], key),
                          is_paper=True)

