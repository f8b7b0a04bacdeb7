"""JSON bodies as the builder's form data, and the form's errors as dotted field names.

The builder posts indexed names (legs-0-lots); a JSON strategy ({"legs": [{"lots": 1}]}) is
turned into the same names, so that one form validates both, and its errors come back as
{"legs.0.lots": message}.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from werkzeug.datastructures import MultiDict
from wtforms import FieldList

# Entries parsed before the count is checked: more than MAX_LEGS is an error, never a silent cut.
PARSE_LIMIT = 200
# Checkboxes whose default is ticked: a JSON body (or a template) that leaves them out keeps the
# default, where a browser's unticked box sends nothing and means "off".
TICKED_BY_DEFAULT = {"resend_not_placed": "y"}


def int_or_none(raw: Any) -> int | None:
    text = str(raw).strip() if raw is not None else ""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 12 else None


def _scalar(value: Any) -> str:
    if value is True:
        return "y"
    if value is None or value is False:
        return ""
    if isinstance(value, dict | list):
        raise ValueError("must be a string, a number or a boolean")
    return str(value)


def formdata_from_json(body: Mapping[str, Any]) -> MultiDict:
    """A JSON strategy as the indexed form fields a browser posts.

    Args:
        body: {"name": ..., "legs": [{...}], "accounts": [{"account_id": 3, "lot_multiplier": 2}], ...};
            an account listed is an account the strategy runs on.
    Returns:
        The form data (true → "y", false/null → empty, as a browser's form post).
    Raises:
        ValueError: with {"field": message} in args[0] when the shape is wrong (a leg that is
        not an object, a nested value where a scalar belongs).
    """
    data: MultiDict = MultiDict()
    problems: dict[str, str] = {}
    for key, value in body.items():
        if key in ("legs", "accounts"):
            if not isinstance(value, list):
                problems[key] = "must be a list"
                continue
            for i, item in enumerate(value[:PARSE_LIMIT + 1]):
                if not isinstance(item, dict):
                    problems[f"{key}.{i}"] = "must be an object"
                    continue
                if key == "accounts":
                    data.add(f"accounts-{i}-enabled", "y")
                else:
                    data.add(f"legs-{i}-present", "")  # an empty leg still counts (with defaults)
                for sub, sub_value in item.items():
                    try:
                        data.add(f"{key}-{i}-{sub}", _scalar(sub_value))
                    except ValueError as exc:
                        problems[f"{key}.{i}.{sub}"] = str(exc)
            continue
        try:
            data.add(key, _scalar(value))
        except ValueError as exc:
            problems[key] = str(exc)
    if problems:
        raise ValueError(problems)
    for key, value in TICKED_BY_DEFAULT.items():
        if key not in body:
            data.add(key, value)
    return data


def dotted_errors(form: Any) -> dict[str, str]:
    """The form's errors as {"legs.2.lots": message, "name": message, "legs": message}."""
    out: dict[str, str] = {}
    for name, field in form._fields.items():
        if name == "csrf_token":
            continue
        if isinstance(field, FieldList):
            for error in field.errors:
                if isinstance(error, str):
                    out.setdefault(name, error)
            for i, entry in enumerate(field.entries):
                for sub_name, sub_field in entry.form._fields.items():
                    if sub_field.errors:
                        out[f"{name}.{i}.{sub_name}"] = str(sub_field.errors[0])
        elif field.errors:
            out[name] = str(field.errors[0])
    for error in form.form_errors:
        out.setdefault("form", error)
    return out


def prefill_formdata(body: Mapping[str, Any], own_accounts: Mapping[int, str]) -> MultiDict:
    """Form data for the builder page from a strategy or template body: one row per own account,
    ticked (with its multiplier and cap) when the body lists it."""
    chosen = {}
    for item in body.get("accounts") or []:
        if isinstance(item, dict) and int_or_none(item.get("account_id")) is not None:
            chosen[int_or_none(item.get("account_id"))] = item
    data = formdata_from_json({k: v for k, v in body.items() if k != "accounts"})
    for i, account_id in enumerate(own_accounts):
        item = chosen.get(account_id)
        data.add(f"accounts-{i}-account_id", str(account_id))
        data.add(f"accounts-{i}-enabled", "y" if item else "")
        data.add(f"accounts-{i}-lot_multiplier", _scalar(item.get("lot_multiplier")) if item else "1")
        data.add(f"accounts-{i}-capital_cap", _scalar(item.get("capital_cap")) if item else "")
    return data
