"""Builders for strategy tests: a valid JSON body, its form-post twin, accounts and JSON calls."""

from __future__ import annotations

import copy
from typing import Any

from app.extensions import db
from app.models import TradingAccount


def leg(**overrides: Any) -> dict[str, Any]:
    base = {"underlying": "NIFTY", "instrument": "option", "expiry_choice": "current_week",
            "strike_method": "otm", "strike_offset": 2, "option_type": "CE", "action": "SELL", "lots": 1,
            "order_type": "MARKET"}
    base.update(overrides)
    return base


def body(**overrides: Any) -> dict[str, Any]:
    """A valid two-leg strategy in the JSON API's shape; overrides replace top-level keys."""
    base: dict[str, Any] = {
        "name": "Test strangle", "description": "two legs", "market_condition": "any",
        "risk_profile": "balanced", "product": "MIS",
        "entry_time": "09:20", "exit_time": "15:00", "square_off_time": "15:15",
        "legs": [leg(), leg(option_type="PE", strike_offset=3)], "accounts": [],
    }
    base.update(copy.deepcopy(overrides))
    return base


def form_fields(data: dict[str, Any], csrf_token: str) -> dict[str, str]:
    """The body as the builder page posts it (indexed names, ticked accounts)."""
    out = {"csrf_token": csrf_token}
    for key, value in data.items():
        if key in ("legs", "accounts"):
            for i, item in enumerate(value):
                if key == "accounts":
                    out[f"accounts-{i}-enabled"] = "y"
                for sub, sub_value in item.items():
                    if sub_value is not None:
                        out[f"{key}-{i}-{sub}"] = "y" if sub_value is True else str(sub_value)
        elif value is True:
            out[key] = "y"
        elif value not in (None, False):
            out[key] = str(value)
    return out


def add_account(app, owner_id: int, name: str) -> int:
    with app.app_context():
        account = TradingAccount(user_id=owner_id, account_name=name, host_url="http://127.0.0.1:9",
                                 api_key_encrypted="x", api_key_last4="abcd")
        db.session.add(account)
        db.session.commit()
        return account.id


def send(client, method: str, url: str, payload: Any = None):
    """A JSON call with the CSRF header the app checks on every unsafe method."""
    headers = {"X-CSRFToken": client.token("/strategy")}
    return client.open(url, method=method, json=payload, headers=headers)
