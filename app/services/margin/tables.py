"""The admin-edited trading tables behind cached getters, and their audited updates.

Readers get frozen snapshots, never ORM rows. The cache is per process and keyed by a
version stored in app_settings: every update writes a new version in the same transaction,
so every worker (and host) reloads on its next read after a change, at the cost of one
primary-key read per lookup; within one web request the version is read once (an Execute looks
up several legs' contracts: every lookup used to read it again).
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import asdict, dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from flask import current_app, has_request_context, request
from sqlalchemy import select

from app.domain.margin import MarginRate, TradeType
from app.domain.sizing import max_lots_per_order
from app.extensions import db
from app.models.settings import AppSetting
from app.models.trading_settings import MarginRequirement, TradeQuality, TradingSettings
from app.models.users import User
from app.services import audit

VERSION_KEY = "trading_tables_version"
_CACHE_EXTENSION = "margin_tables_cache"
_REQUEST_MEMO = "algomirror.margin_tables"  # the request's snapshot, in its WSGI environ


class UnknownRow(LookupError):
    """No such underlying, trade type or grade in the tables (a 404 for a page)."""


@dataclass(frozen=True)
class ContractRow:
    """Stored contract settings of one underlying."""

    underlying: str
    lot_size: int
    next_month_lot_size: int
    freeze_qty: int
    strike_step: int

    @property
    def max_lots_per_order(self) -> int:
        """Derived, never stored: floor(freeze ÷ lot size) of the current month."""
        return max_lots_per_order(self.lot_size, self.freeze_qty)


@dataclass(frozen=True)
class Tables:
    """One consistent snapshot of all three tables."""

    contracts: MappingProxyType[str, ContractRow]
    margins: MappingProxyType[str, MappingProxyType[TradeType, MarginRate]]
    grades: MappingProxyType[str, Decimal]


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.version: str | None = None
        self.tables: Tables | None = None


def _cache() -> _Cache:
    cache = current_app.extensions.get(_CACHE_EXTENSION)
    if cache is None:
        cache = current_app.extensions.setdefault(_CACHE_EXTENSION, _Cache())
    return cache


def _current_version() -> str:
    value = db.session.scalar(select(AppSetting.value).where(AppSetting.key == VERSION_KEY))
    return value or "initial"


def _load() -> Tables:
    contracts = {r.underlying: ContractRow(r.underlying, r.lot_size, r.next_month_lot_size, r.freeze_qty,
                                           r.strike_step)
                 for r in db.session.scalars(select(TradingSettings).order_by(TradingSettings.id))}
    margins: dict[str, dict[TradeType, MarginRate]] = {}
    for m in db.session.scalars(select(MarginRequirement).order_by(MarginRequirement.id)):
        try:
            trade_type = TradeType(m.trade_type)
        except ValueError:
            continue  # a row of a trade type this version does not know
        margins.setdefault(m.underlying, {})[trade_type] = MarginRate(Decimal(m.expiry_margin),
                                                                     Decimal(m.non_expiry_margin))
    grades = {g.grade: Decimal(g.percent)
              for g in db.session.scalars(select(TradeQuality).order_by(TradeQuality.grade))}
    return Tables(MappingProxyType(contracts),
                  MappingProxyType({k: MappingProxyType(v) for k, v in margins.items()}),
                  MappingProxyType(grades))


def tables() -> Tables:
    """The current tables (cached until any update, in any process; read once per web request)."""
    if has_request_context():
        found = request.environ.get(_REQUEST_MEMO)
        if found is None:
            found = request.environ[_REQUEST_MEMO] = _tables()
        return found
    return _tables()


def _tables() -> Tables:
    version = _current_version()
    cache = _cache()
    with cache.lock:
        if cache.tables is not None and cache.version == version:
            return cache.tables
    loaded = _load()
    with cache.lock:
        cache.version, cache.tables = version, loaded
    return loaded


def contract_row(underlying: str) -> ContractRow:
    """Stored contract settings of an underlying. Raises UnknownRow."""
    row = tables().contracts.get(underlying.upper())
    if row is None:
        raise UnknownRow(f"no contract settings for {underlying!r}")
    return row


def margin_rows(underlying: str) -> MappingProxyType[TradeType, MarginRate]:
    """Margin per lot of every trade type of an underlying. Raises UnknownRow."""
    rows = tables().margins.get(underlying.upper())
    if rows is None:
        raise UnknownRow(f"no margin requirements for {underlying!r}")
    return rows


def grade_percent(grade: str) -> Decimal:
    """A trade-quality grade's share of available margin (%). Raises UnknownRow."""
    percent = tables().grades.get(grade.upper())
    if percent is None:
        raise UnknownRow(f"no trade-quality grade {grade!r}")
    return percent


def invalidate() -> None:
    """Forget this process's snapshot (the next read reloads)."""
    cache = _cache()
    with cache.lock:
        cache.version, cache.tables = None, None
    if has_request_context():
        request.environ.pop(_REQUEST_MEMO, None)


# --- audited updates (admin only: the views are in the guarded margin_admin blueprint) -----------

def _bump_version() -> None:
    row = db.session.get(AppSetting, VERSION_KEY)
    value = secrets.token_hex(8)
    if row is None:
        db.session.add(AppSetting(key=VERSION_KEY, value=value))
    else:
        row.value = value


def _commit_change(action: str, actor: User, target: dict[str, Any], before: dict[str, Any],
                   after: dict[str, Any]) -> bool:
    """Audit and commit a change; False (nothing written) when nothing changed."""
    if before == after:
        db.session.rollback()
        return False
    _bump_version()
    audit.record(action, category="admin", user=actor, commit=False,
                 details={**target, "before": before, "after": after})
    db.session.commit()
    invalidate()
    return True


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in values.items()}


def update_contract(actor: User, underlying: str, *, lot_size: int, next_month_lot_size: int, freeze_qty: int,
                    strike_step: int) -> bool:
    """Change an underlying's contract settings. Returns whether anything changed.

    Raises:
        UnknownRow: no such underlying.
        SizingError: a freeze quantity below one lot (current or next month), or a value < 1.
    """
    row = db.session.scalar(select(TradingSettings).where(TradingSettings.underlying == underlying.upper()))
    if row is None:
        raise UnknownRow(f"no contract settings for {underlying!r}")
    max_lots_per_order(lot_size, freeze_qty)
    max_lots_per_order(next_month_lot_size, freeze_qty)
    if isinstance(strike_step, bool) or not isinstance(strike_step, int) or strike_step < 1:
        raise ValueError("strike step must be a whole number >= 1")
    fields = ("lot_size", "next_month_lot_size", "freeze_qty", "strike_step")
    before = {f: getattr(row, f) for f in fields}
    after = {"lot_size": lot_size, "next_month_lot_size": next_month_lot_size, "freeze_qty": freeze_qty,
             "strike_step": strike_step}
    for name, value in after.items():
        setattr(row, name, value)
    return _commit_change("contract_settings_updated", actor, {"underlying": row.underlying}, before, after)


def update_margin(actor: User, underlying: str, trade_type: TradeType | str, *, expiry_margin: Decimal,
                  non_expiry_margin: Decimal) -> bool:
    """Change the ₹ per lot of one trade type of an underlying. Returns whether anything changed.

    Raises:
        UnknownRow: no such row. ValueError: an amount <= 0.
    """
    kind = TradeType(trade_type)
    row = db.session.scalar(select(MarginRequirement).where(MarginRequirement.underlying == underlying.upper(),
                                                            MarginRequirement.trade_type == kind.value))
    if row is None:
        raise UnknownRow(f"no margin requirement for {underlying!r} {kind.value}")
    if expiry_margin <= 0 or non_expiry_margin <= 0:
        raise ValueError("margin per lot must be greater than 0")
    before = _plain({"expiry_margin": Decimal(row.expiry_margin).quantize(Decimal("0.01")),
                     "non_expiry_margin": Decimal(row.non_expiry_margin).quantize(Decimal("0.01"))})
    after = _plain({"expiry_margin": expiry_margin.quantize(Decimal("0.01")),
                    "non_expiry_margin": non_expiry_margin.quantize(Decimal("0.01"))})
    row.expiry_margin, row.non_expiry_margin = Decimal(after["expiry_margin"]), Decimal(after["non_expiry_margin"])
    return _commit_change("margin_requirement_updated", actor, {"underlying": row.underlying,
                                                                 "trade_type": kind.value}, before, after)


def update_grade(actor: User, grade: str, *, percent: Decimal) -> bool:
    """Change a trade-quality grade's percentage (0 < % <= 100). Returns whether anything changed.

    Raises:
        UnknownRow: no such grade. ValueError: a percentage outside (0, 100].
    """
    row = db.session.scalar(select(TradeQuality).where(TradeQuality.grade == grade.upper()))
    if row is None:
        raise UnknownRow(f"no trade-quality grade {grade!r}")
    if not 0 < percent <= 100:
        raise ValueError("the percentage must be above 0 and at most 100")
    before = {"percent": str(Decimal(row.percent).quantize(Decimal("0.01")))}
    after = {"percent": str(percent.quantize(Decimal("0.01")))}
    row.percent = Decimal(after["percent"])
    return _commit_change("trade_quality_updated", actor, {"grade": row.grade}, before, after)


def contract_as_dict(row: ContractRow) -> dict[str, Any]:
    """A contract row with its derived max lots per order (for JSON and templates)."""
    return {**asdict(row), "max_lots_per_order": row.max_lots_per_order}
