"""Strategy times on trading days: scheduled entry, exit and square-off (issue 9, point 5).

`tick(now)` is the whole decision, driven by an injectable clock so tests can step through a
day. On a trading day of the calendar (app/services/calendar.py), in IST:

- from a strategy's exit_time (purpose exit) and square_off_time (purpose square_off) until the
  session's close, every open run of the strategy clicked before that time gets one
  ExitRequest per purpose and day (the exit manager closes it; two purposes racing on the same
  leg collide on the close keys, so nothing is closed twice); a request that FAILED is not
  done: a new one is created RETRY_FAILED_AFTER (one minute) after it failed, again and again
  until the run is closed or the session ends;
- within ENTRY_GRACE of entry_time, a strategy with auto_entry gets one scheduled execution
  (planner.submit_execution with the idempotency key f"schedule:{strategy.id}:{ist_date}", so
  a second tick, or a restarted leader, is the same run).

`SchedulerService` runs tick every few seconds in the leader (registered in create_app).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select

from app.domain.risk_settings import RiskEventType
from app.exceptions import AlgoMirrorError
from app.extensions import db
from app.models import User
from app.models.execution import ExitRequest, Purpose, RunLeg, RunStatus, StrategyRun
from app.models.strategies import Strategy
from app.models.types import utcnow
from app.services.calendar import get_calendar
from app.services.runner import Service
from app.timeutil import IST

logger = logging.getLogger(__name__)

ENTRY_GRACE = timedelta(minutes=2)  # a leader that starts later than this does not enter any more
RETRY_FAILED_AFTER = timedelta(minutes=1)  # a failed scheduled exit is asked again this long after
DEFAULT_EXCHANGE = "NSE"
_DERIVATIVES = {"NFO": "NSE", "BFO": "BSE", "CDS": "NSE", "MCX": "MCX"}


@dataclass
class TickResult:
    """What one tick did: exit requests created (run id, purpose) and runs entered (strategy id)."""

    exits: list[tuple[int, str]] = field(default_factory=list)
    entries: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def at_ist(day: date, moment: time) -> datetime:
    """The aware UTC instant of an IST wall-clock time on `day`."""
    return datetime.combine(day, moment.replace(second=0, microsecond=0), tzinfo=IST).astimezone(UTC)


def _calendar_exchange(exchange: str | None) -> str:
    calendar = get_calendar()
    name = (exchange or DEFAULT_EXCHANGE).upper()
    if calendar.schedule_for(name) is not None:
        return name
    return _DERIVATIVES.get(name, DEFAULT_EXCHANGE)


def _run_exchange(run: StrategyRun) -> str:
    leg = db.session.scalar(select(RunLeg.exchange).where(RunLeg.run_id == run.id).order_by(RunLeg.number).limit(1))
    return _calendar_exchange(leg)


def _session_end(day: date, exchange: str) -> datetime | None:
    bounds = get_calendar().session_bounds(day, exchange)
    return bounds[1] if bounds else None


def tick(now: datetime | None = None) -> TickResult:
    """Create the scheduled exit requests and entries that are due at `now` (aware UTC)."""
    now = now or utcnow()
    day = now.astimezone(IST).date()
    result = TickResult()
    _exits(now, day, result)
    _entries(now, day, result)
    return result


def _exits(now: datetime, day: date, result: TickResult) -> None:
    from app.services.execution.exits import request_exit

    calendar = get_calendar()
    runs = list(db.session.scalars(select(StrategyRun).where(
        StrategyRun.status.not_in([RunStatus.CLOSED, RunStatus.FAILED]), StrategyRun.strategy_id.is_not(None))
        .order_by(StrategyRun.id)))
    for run in runs:
        strategy = db.session.get(Strategy, run.strategy_id)
        if strategy is None:
            continue
        exchange = _run_exchange(run)
        if not calendar.is_trading_day(day, exchange):
            continue
        end = _session_end(day, exchange)
        for purpose, moment in ((Purpose.EXIT, strategy.exit_time), (Purpose.SQUARE_OFF, strategy.square_off_time)):
            due = at_ist(day, moment)
            if now < due or (end is not None and now >= end) or run.clicked_at >= due:
                continue
            last = db.session.scalars(select(ExitRequest).where(
                ExitRequest.run_id == run.id, ExitRequest.purpose == purpose, ExitRequest.created_at >= due)
                .order_by(ExitRequest.id.desc()).limit(1)).first()
            if last is not None and not _retry_due(last, now):
                continue
            user = db.session.get(User, run.user_id)
            reason = f"scheduled {purpose.replace('_', '-')} at {moment:%H:%M} IST"
            if last is not None:
                reason += f" (again: request {last.id} failed)"
            try:
                request_exit(user, run, purpose=purpose, reason=reason, event_type=RiskEventType.SQUARE_OFF)
            except (AlgoMirrorError, LookupError) as exc:
                db.session.rollback()
                result.skipped.append(f"run {run.id} {purpose}: {exc}")
                logger.warning("Scheduled %s of run %s not requested: %s", purpose, run.id, exc)
                continue
            result.exits.append((run.id, purpose))
            logger.info("Scheduled %s of run %s requested", purpose, run.id)


def _retry_due(last: ExitRequest, now: datetime) -> bool:
    """A failed scheduled exit is asked again, at most once per RETRY_FAILED_AFTER after it
    failed; one that is pending, working or done is not."""
    if last.status != "failed":
        return False
    failed_at = last.done_at or last.created_at
    return failed_at is None or now >= failed_at + RETRY_FAILED_AFTER


def _entries(now: datetime, day: date, result: TickResult) -> None:
    calendar = get_calendar()
    for strategy in list(db.session.scalars(select(Strategy).where(Strategy.auto_entry.is_(True))
                                            .order_by(Strategy.id))):
        due = at_ist(day, strategy.entry_time)
        if not (due <= now < due + ENTRY_GRACE):
            continue
        exchange = _calendar_exchange(_strategy_exchange(strategy))
        if not calendar.is_trading_day(day, exchange):
            continue
        from app.services.execution import planner

        user = db.session.get(User, strategy.user_id)
        if user is None:
            continue
        key = f"schedule:{strategy.id}:{day.isoformat()}"
        if planner.existing_run(user, key) is not None:
            continue
        try:
            planner.submit_execution(user, strategy, idempotency_key=key, trigger="scheduled")
        except AlgoMirrorError as exc:
            db.session.rollback()
            result.skipped.append(f"strategy {strategy.id}: {exc}")
            logger.warning("Scheduled entry of strategy %s refused: %s", strategy.id, exc)
            continue
        result.entries.append(strategy.id)


def _strategy_exchange(strategy: Strategy) -> str:
    underlyings = {getattr(leg, "underlying", "") for leg in strategy.legs}
    return "BSE" if underlyings and underlyings <= {"SENSEX", "BANKEX"} else DEFAULT_EXCHANGE


class SchedulerService(Service):
    """Runs `tick` in the leader every few seconds (the times are whole minutes)."""

    name = "strategy_scheduler"
    interval = 5.0

    def __init__(self, clock: Callable[[], datetime] | None = None):
        self.clock = clock  # None: the module's utcnow, looked up at each tick

    def run_once(self) -> str | None:
        if not self.still_leading():
            return None
        done = tick(self.clock() if self.clock is not None else None)
        return f"exits {len(done.exits)}, entries {len(done.entries)}, skipped {len(done.skipped)}"
