"""The trading calendar from the database: a cached domain calendar and the admin's edits.

Rows are read into app.domain.market_hours dataclasses and cached per app for
CALENDAR_CACHE_SECONDS (default 30 s): services ask "is the market open?" every few seconds
and the answer changes only when an admin edits the calendar. An edit clears this process's
cache at once; other processes see it within the cache lifetime.
"""

from __future__ import annotations

import logging
import threading
import time as _time
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app.domain.market_hours import Holiday, SpecialSession, TradingCalendar, WeeklySchedule, WeeklySession
from app.extensions import db
from app.models.calendar import MarketHoliday, SpecialTradingSession, TradingHoursTemplate, TradingSession
from app.models.types import utcnow
from app.models.users import User
from app.services import audit

logger = logging.getLogger(__name__)

_CACHE_KEY = "algomirror_calendar_cache"
DEFAULT_CACHE_SECONDS = 30.0


class CalendarError(Exception):
    """An edit the calendar refuses; `field` names the form field to attach the message to."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass
class _Cache:
    lock: threading.Lock
    calendar: TradingCalendar | None = None
    loaded_at: float = 0.0


def _cache(app: Flask) -> _Cache:
    cache = app.extensions.get(_CACHE_KEY)
    if cache is None:
        cache = app.extensions.setdefault(_CACHE_KEY, _Cache(threading.Lock()))
    return cache


def load_calendar_from_db() -> TradingCalendar:
    """Read the calendar tables (active templates only) into a domain TradingCalendar."""
    templates = db.session.scalars(
        select(TradingHoursTemplate)
        .where(TradingHoursTemplate.is_active.is_(True))
        .options(selectinload(TradingHoursTemplate.sessions))
        .order_by(TradingHoursTemplate.id)
    ).all()
    schedules = []
    for template in templates:
        sessions = []
        for row in template.sessions:
            try:
                sessions.append(WeeklySession(row.day_of_week, row.start_time, row.end_time, row.is_active))
            except ValueError:
                logger.warning("Ignoring invalid trading session %s of template %r", row.id, template.name)
        schedules.append(WeeklySchedule(
            name=template.name,
            exchanges=frozenset(split_exchanges(template.exchanges)),
            sessions=tuple(sessions),
            pre_open_buffer=timedelta(minutes=template.pre_open_buffer_minutes),
        ))
    holidays = tuple(
        Holiday(row.holiday_date, row.exchange, row.description)
        for row in db.session.scalars(select(MarketHoliday).order_by(MarketHoliday.holiday_date))
    )
    specials = []
    for special in db.session.scalars(select(SpecialTradingSession).order_by(SpecialTradingSession.session_date)):
        try:
            specials.append(SpecialSession(special.session_date, special.exchange, special.start_time,
                                           special.end_time, special.description))
        except ValueError:
            logger.warning("Ignoring invalid special session %s", special.id)
    return TradingCalendar(tuple(schedules), holidays, tuple(specials))


def get_calendar() -> TradingCalendar:
    """The current app's calendar, reloaded from the database when older than the cache lifetime."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    cache = _cache(app)
    max_age = float(app.config.get("CALENDAR_CACHE_SECONDS", DEFAULT_CACHE_SECONDS))
    with cache.lock:
        if cache.calendar is not None and _time.monotonic() - cache.loaded_at < max_age:
            return cache.calendar
    calendar = load_calendar_from_db()
    with cache.lock:
        cache.calendar, cache.loaded_at = calendar, _time.monotonic()
    return calendar


def invalidate_cache(app: Flask | None = None) -> None:
    """Forget the cached calendar of an app (the current one by default)."""
    cache = _cache(app or current_app._get_current_object())  # type: ignore[attr-defined]
    with cache.lock:
        cache.calendar = None


def market_is_open(exchange: str = "NSE", now: datetime | None = None) -> bool:
    """Whether the exchange is in session now (or at `now`, an aware datetime)."""
    return get_calendar().is_market_open(now or utcnow(), exchange)


def services_should_run(exchange: str = "NSE", now: datetime | None = None,
                        pre_open_buffer: timedelta | None = None) -> bool:
    """Whether market-hours services should be active: from the pre-open buffer until the close.

    The buffer defaults to the exchange template's `pre_open_buffer_minutes` (admin-editable).
    """
    return get_calendar().monitors_should_run(now or utcnow(), exchange, pre_open_buffer)


def split_exchanges(raw: str) -> list[str]:
    """"NSE, bse ,NFO" -> ["NSE", "BSE", "NFO"] (order kept, duplicates and blanks dropped)."""
    seen: list[str] = []
    for part in raw.split(","):
        code = part.strip().upper()
        if code and code not in seen:
            seen.append(code)
    return seen


def known_exchanges() -> list[str]:
    """Exchanges listed by any template, active or not, in first-seen order."""
    codes: list[str] = []
    for raw in db.session.scalars(select(TradingHoursTemplate.exchanges).order_by(TradingHoursTemplate.id)):
        codes.extend(c for c in split_exchanges(raw) if c not in codes)
    return codes


# --- admin edits: every change is audited in the same transaction, then the cache is cleared ---


def _flush(conflict: CalendarError) -> None:
    try:
        db.session.flush()
    except IntegrityError as exc:
        db.session.rollback()
        raise conflict from exc


def _commit(actor: User, action: str, details: dict[str, Any], conflict: CalendarError) -> None:
    audit.record(action, category="admin", user=actor, details=details, commit=False)
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise conflict from exc
    invalidate_cache()


def update_template(actor: User, template: TradingHoursTemplate, *, name: str, exchanges: list[str],
                    pre_open_buffer_minutes: int, is_active: bool,
                    sessions: dict[int, tuple[time | None, time | None, bool]]) -> None:
    """Save a template and its weekday sessions.

    Args:
        sessions: weekday -> (start, end, active). A day without times has no session row.

    Raises:
        CalendarError: the name is taken, or a session ends before it starts.
    """
    for day, (start, end, _active) in sessions.items():
        if start is not None and end is not None and end <= start:
            raise CalendarError("The session must end after it starts.", field=f"sessions-{day}-end_time")
    by_day = {row.day_of_week: row for row in template.sessions}
    changes: dict[str, Any] = {}
    for day, (start, end, active) in sorted(sessions.items()):
        row = by_day.get(day)
        if start is None or end is None:
            if row is not None:
                template.sessions.remove(row)
                changes[str(day)] = "removed"
            continue
        if row is None:
            row = TradingSession(day_of_week=day, start_time=start, end_time=end, is_active=active)
            template.sessions.append(row)
        elif (row.start_time, row.end_time, row.is_active) == (start, end, active):
            continue
        row.start_time, row.end_time, row.is_active = start, end, active
        changes[str(day)] = f"{start:%H:%M}-{end:%H:%M} {'active' if active else 'inactive'}"
    before = {"name": template.name, "exchanges": template.exchanges,
              "pre_open_buffer_minutes": template.pre_open_buffer_minutes, "is_active": template.is_active}
    template.name = name
    template.exchanges = ",".join(exchanges)
    template.pre_open_buffer_minutes = pre_open_buffer_minutes
    template.is_active = is_active
    after = {"name": template.name, "exchanges": template.exchanges,
             "pre_open_buffer_minutes": template.pre_open_buffer_minutes, "is_active": template.is_active}
    details = {"template_id": template.id, "sessions": changes,
               "changed": {k: [before[k], after[k]] for k in after if before[k] != after[k]}}
    _commit(actor, "calendar_template_updated", details,
            CalendarError("Another template already has this name.", field="name"))


def add_holidays(actor: User, day: date, exchanges: list[str], description: str) -> list[MarketHoliday]:
    """Add a holiday on one or more exchanges.

    Raises:
        CalendarError: the date is already a holiday on one of them.
    """
    taken = db.session.scalars(select(MarketHoliday.exchange).where(
        MarketHoliday.holiday_date == day, MarketHoliday.exchange.in_(exchanges))).all()
    if taken:
        raise CalendarError(f"{day:%d %b %Y} is already a holiday on {', '.join(sorted(taken))}.",
                            field="holiday_date")
    rows = [MarketHoliday(holiday_date=day, exchange=code, description=description) for code in exchanges]
    db.session.add_all(rows)
    _flush(CalendarError("This date is already a holiday on that exchange.", field="holiday_date"))
    _commit(actor, "calendar_holiday_added",
            {"date": day.isoformat(), "exchanges": exchanges, "description": description, "ids": [r.id for r in rows]},
            CalendarError("This date is already a holiday on that exchange.", field="holiday_date"))
    return rows


def delete_holiday(actor: User, holiday: MarketHoliday) -> None:
    details = {"id": holiday.id, "date": holiday.holiday_date.isoformat(), "exchange": holiday.exchange,
               "description": holiday.description}
    db.session.delete(holiday)
    _commit(actor, "calendar_holiday_deleted", details, CalendarError("The holiday could not be deleted."))


def add_special_session(actor: User, day: date, exchanges: list[str], start: time, end: time,
                        description: str) -> list[SpecialTradingSession]:
    """Add a special session (it overrides a holiday and the regular hours of that day).

    Raises:
        CalendarError: it ends before it starts, or that date already has one on an exchange.
    """
    if end <= start:
        raise CalendarError("The session must end after it starts.", field="end_time")
    taken = db.session.scalars(select(SpecialTradingSession.exchange).where(
        SpecialTradingSession.session_date == day, SpecialTradingSession.exchange.in_(exchanges))).all()
    if taken:
        raise CalendarError(f"{day:%d %b %Y} already has a special session on {', '.join(sorted(taken))}.",
                            field="session_date")
    rows = [SpecialTradingSession(session_date=day, exchange=code, start_time=start, end_time=end,
                                  description=description) for code in exchanges]
    db.session.add_all(rows)
    _flush(CalendarError("That date already has a special session on that exchange.", field="session_date"))
    _commit(actor, "calendar_special_session_added",
            {"date": day.isoformat(), "exchanges": exchanges, "start": f"{start:%H:%M}", "end": f"{end:%H:%M}",
             "description": description, "ids": [r.id for r in rows]},
            CalendarError("That date already has a special session on that exchange.", field="session_date"))
    return rows


def delete_special_session(actor: User, special: SpecialTradingSession) -> None:
    details = {"id": special.id, "date": special.session_date.isoformat(), "exchange": special.exchange,
               "start": f"{special.start_time:%H:%M}", "end": f"{special.end_time:%H:%M}",
               "description": special.description}
    db.session.delete(special)
    _commit(actor, "calendar_special_session_deleted", details,
            CalendarError("The special session could not be deleted."))
