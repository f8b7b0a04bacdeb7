"""Time helpers: storage is aware UTC, display and the trading day are in IST."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")


def to_ist(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(IST)


def format_ist(moment: datetime | None) -> str:
    return "" if moment is None else to_ist(moment).strftime("%d %b %Y, %H:%M:%S IST")


def ist_day_start_utc(day: date) -> datetime:
    """The UTC instant at which an IST calendar day begins."""
    return datetime(day.year, day.month, day.day, tzinfo=IST).astimezone(UTC)
