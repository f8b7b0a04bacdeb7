"""Provisioning accounts on the project's own paper broker (its /sim/ admin API)."""

from __future__ import annotations

import httpx

from app.broker.errors import BrokerError, BrokerUnavailable


def provision_paper_account(base_url: str, admin_token: str, *, funds: float | None = None,
                            timeout: float = 5.0) -> str:
    """Create an account on the paper broker and return its API key."""
    body: dict[str, float] = {} if funds is None else {"funds": funds}
    try:
        response = httpx.post(f"{base_url.rstrip('/')}/sim/accounts", json=body,
                              headers={"X-Admin-Token": admin_token}, timeout=timeout)
    except httpx.HTTPError as exc:
        raise BrokerUnavailable(f"The paper broker at {base_url} cannot be reached.") from exc
    if response.status_code != 200:
        raise BrokerError(f"The paper broker refused to create an account (HTTP {response.status_code}).",
                          status_code=response.status_code)
    try:
        return str(response.json()["apikey"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BrokerError("The paper broker answered without an API key.") from exc
