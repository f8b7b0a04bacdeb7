"""Run-time application settings stored in the database."""

from __future__ import annotations

from app.extensions import db
from app.models.settings import AppSetting

REGISTRATION_OPEN = "registration_open"
ADMIN_BOOTSTRAPPED = "admin_bootstrapped"  # written with the first (admin) user


def get_setting(key: str, default: str | None = None) -> str | None:
    row = db.session.get(AppSetting, key)
    return row.value if row is not None else default


def set_setting(key: str, value: str, *, commit: bool = True) -> None:
    row = db.session.get(AppSetting, key)
    if row is None:
        db.session.add(AppSetting(key=key, value=value))
    else:
        row.value = value
    if commit:
        db.session.commit()


def registration_open() -> bool:
    return get_setting(REGISTRATION_OPEN, "false") == "true"
