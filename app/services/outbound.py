"""The administrator's outbound allow-list: which host:port pairs accounts may point at.

Parsing and matching are pure (app/domain/hosts.py); this module stores the list in
`app_settings`, audits changes and reads it back. An empty list allows any host; that is
the development default, and in production admins see a warning until a list is set.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from app.domain import hosts
from app.extensions import db
from app.models.users import User
from app.services import audit
from app.services.settings import get_setting, set_setting

logger = logging.getLogger(__name__)

HOST_ALLOWLIST = "account_host_allowlist"  # the app_settings key (unchanged since issue 4)


def allowlist_text() -> list[str]:
    """The saved entries as stored (for the admin form), including any that no longer parse."""
    return hosts.split_entries(get_setting(HOST_ALLOWLIST, "") or "")


def allowlist() -> list[hosts.AllowEntry] | None:
    """The parsed allow-list; None when none is set (any host allowed).

    Lists saved before entries had ports hold bare host names, which keep their meaning of
    the default ports (80 and 443). A saved entry that does not parse allows nothing (and is
    logged); a list of only such entries still counts as set: a broken list fails closed.
    """
    raw = allowlist_text()
    if not raw:
        return None
    entries, problems = hosts.parse_entries(",".join(raw))
    for problem in problems:
        logger.warning("Ignoring an unreadable saved host allow-list entry: %s", problem)
    return entries


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
    logger.info("Host allow-list set by %r: %d entries", admin.username, len(cleaned))
    return cleaned


def allowlist_required(config: Mapping[str, Any]) -> bool:
    """Whether an empty allow-list deserves a warning: in production, unless HOST_ALLOWLIST_REQUIRED says."""
    flag = config.get("HOST_ALLOWLIST_REQUIRED")
    return bool(flag) if flag is not None else config.get("ENV_NAME") == "production"
