"""The administrator's outbound allow-list: which host:port pairs accounts may point at.

Parsing and matching are pure (app/domain/hosts.py); this module stores the list in
`app_settings`, audits changes and reads it back. An empty list allows any host; that is
the development default, and in production admins see a warning until a list is set.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from flask import current_app

from app.domain import hosts
from app.extensions import db
from app.models.users import User
from app.services import audit
from app.services.settings import get_setting, set_setting

logger = logging.getLogger(__name__)

HOST_ALLOWLIST = "account_host_allowlist"  # the app_settings key (unchanged since issue 4)
# Every broker call checks the list (accounts.client_for): reading the settings row each time was a
# query per order on the engine's hot path. A process re-reads it at most this often; saving it
# here takes effect at once in this process, in other processes within this many seconds.
ALLOWLIST_CACHE_SECONDS = 1.0
_CACHE_KEY = "outbound_allowlist_cache"


def allowlist_text() -> list[str]:
    """The saved entries as stored (for the admin form), including any that no longer parse."""
    return hosts.split_entries(get_setting(HOST_ALLOWLIST, "") or "")


def allowlist() -> list[hosts.AllowEntry] | None:
    """The parsed allow-list; None when none is set (any host allowed).

    Lists saved before entries had ports hold bare host names, which keep their meaning of
    the default ports (80 and 443). A saved entry that does not parse allows nothing (and is
    logged); a list of only such entries still counts as set: a broken list fails closed.
    """
    cached = current_app.extensions.get(_CACHE_KEY)
    if cached is not None and time.monotonic() < cached[0]:
        return cached[1]
    raw = allowlist_text()
    entries: list[hosts.AllowEntry] | None = None
    if raw:
        entries, problems = hosts.parse_entries(",".join(raw))
        for problem in problems:
            logger.warning("Ignoring an unreadable saved host allow-list entry: %s", problem)
    current_app.extensions[_CACHE_KEY] = (time.monotonic() + ALLOWLIST_CACHE_SECONDS, entries)
    return entries


def forget_cached_allowlist() -> None:
    current_app.extensions.pop(_CACHE_KEY, None)


def save_allowlist(admin: User, text: str) -> list[str]:
    """Validate and save the allow-list (comma or newline separated); returns the saved entries.

    Raises:
        hosts.HostRuleError: one message naming every entry that is not ``host`` or ``host:port``;
            nothing is saved.
    """
    entries, problems = hosts.parse_entries(text)
    if problems:
        raise hosts.HostRuleError(" ".join(problems[:5]) + (" …" if len(problems) > 5 else ""))
    cleaned = sorted(str(e) for e in entries)
    set_setting(HOST_ALLOWLIST, ",".join(cleaned), commit=False)
    audit.record("account_hosts_allowlist_set", category="admin", user=admin, details={"hosts": cleaned},
                 commit=False)
    db.session.commit()
    forget_cached_allowlist()
    logger.info("Host allow-list set by %r: %d entries", admin.username, len(cleaned))
    return cleaned


def allowlist_required(config: Mapping[str, Any]) -> bool:
    """Whether an empty allow-list deserves a warning: in production, unless HOST_ALLOWLIST_REQUIRED says."""
    flag = config.get("HOST_ALLOWLIST_REQUIRED")
    return bool(flag) if flag is not None else config.get("ENV_NAME") == "production"
