"""The Supertrend exit of a run: the legs' 1-minute history read over real HTTP from the paper broker,
live prices as the current minute, a decision on the candle close after the trend flips, and a hold
(one risk event) when a leg has no history."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from app.broker.client import OpenAlgoClient
from app.domain.instruments import Action
from app.domain.premium_series import IST
from app.domain.risk_settings import RiskAction, RiskEventType
from app.domain.strategy_settings import SupertrendExit, SupertrendTimeframe
from app.extensions import db
from app.models.risk import RiskEvent
from app.services.risk.book import LegInfo, RunBook
from app.services.risk.snapshot import SupertrendSettings
from app.services.risk.supertrend_exit import SupertrendWatch
from tests.support.paperbroker import START

CLOCK = datetime.fromisoformat(START)  # the session broker's frozen clock: 10:00 IST


def _book(symbol: str = "SBIN", action: Action = Action.SELL) -> RunBook:
    return RunBook(run_id=1, user_id=1, strategy_id=None, strategy_name="t", status="open",
                   trading_day=CLOCK.date(), legs=(LegInfo(1, symbol, "NSE", action, 1, 1),), accounts=(),
                   settings=None, supertrend=None, state={})


SETTINGS = SupertrendSettings(period=3, multiplier=Decimal("1"), timeframe=SupertrendTimeframe.M1,
                              exit=SupertrendExit.BREAKOUT, action=RiskAction.CLOSE_ALL)


def test_history_then_live_prices_fire_a_breakout_once_on_the_candle_close(broker, apikey):
    client = OpenAlgoClient(broker.url, apikey)
    watch = SupertrendWatch(_book(), SETTINGS, entered_at=CLOCK)  # flips in the history came before the entry
    assert watch.load(client, CLOCK) is None and watch.loaded
    history = watch.candles.candles(CLOCK)
    assert len(history) == 45 and history[0].start == datetime(2026, 1, 5, 9, 15, tzinfo=IST)
    # Falling premium first (a short leg earning), then a sharp rise: the breakout.
    minute = CLOCK.replace(second=30)
    price = history[-1].close
    decisions = []
    for n, step in enumerate([-3] * 6 + [+12] * 6):
        price += step
        watch.on_price("SBIN", "NSE", minute, price)
        minute += timedelta(minutes=1)
        decision = watch.evaluate(minute.replace(second=0))  # the minute that just closed
        if decision is not None:
            decisions.append((n, decision))
    assert len(decisions) == 1, decisions
    step, decision = decisions[0]
    assert step >= 6  # on the way up, not while the premium fell
    assert decision.event_type is RiskEventType.SUPERTREND and decision.action is RiskAction.CLOSE_ALL
    assert "turned bullish" in decision.reason and decision.current_value > decision.threshold
    chart = watch.chart()
    assert chart is not None and chart["candles"][-1]["direction"] == 1 and chart["timeframe"] == "1m"
    client.close()


def test_the_warm_up_session_before_today_is_read_and_only_flips_after_entry_count(broker, apikey):
    client = OpenAlgoClient(broker.url, apikey)
    watch = SupertrendWatch(_book(), SETTINGS, entered_at=CLOCK)
    assert watch.load(client, CLOCK, first_day=date(2026, 1, 2)) is None
    history = watch.candles.candles(CLOCK)
    days = sorted({c.start.astimezone(IST).date() for c in history})
    assert days == [date(2026, 1, 2), date(2026, 1, 5)]  # Friday's whole session, then Monday's
    assert len(history) == 375 + 45 and history[0].start == datetime(2026, 1, 2, 9, 15, tzinfo=IST)
    # The trend is defined from the first candles of today on (period 3): with only today's 45
    # candles the first two would be undefined.
    assert watch.evaluate(CLOCK) is None  # no flip since the entry's candle
    _, _, direction = watch.last
    assert 0 not in direction[375:].tolist()
    client.close()


def test_a_leg_with_only_earlier_sessions_holds_once_todays_session_has_begun(broker, apikey):
    # The broker's history ends at its clock (Monday 10:00 IST): for Tuesday it has nothing yet.
    client = OpenAlgoClient(broker.url, apikey)
    tuesday = CLOCK + timedelta(days=1)
    watch = SupertrendWatch(_book(), SETTINGS, entered_at=tuesday)
    problem = watch.load(client, tuesday, first_day=date(2026, 1, 5))
    assert problem == "no 1-minute history for SBIN today" and not watch.loaded
    before_open = datetime(2026, 1, 6, 9, 10, tzinfo=IST)  # monitors start before the open
    early = SupertrendWatch(_book(), SETTINGS, entered_at=before_open)
    assert early.load(client, before_open, first_day=date(2026, 1, 5)) is None and early.loaded
    client.close()


def test_a_candle_that_has_not_closed_is_not_used(broker, apikey):
    client = OpenAlgoClient(broker.url, apikey)
    watch = SupertrendWatch(_book(), SETTINGS, entered_at=CLOCK)
    watch.load(client, CLOCK)
    watch.on_price("SBIN", "NSE", CLOCK + timedelta(seconds=10), Decimal("5000"))  # a huge jump, minute still open
    assert watch.evaluate(CLOCK + timedelta(seconds=59)) is None
    client.close()


def test_a_leg_without_history_holds_the_exit_with_one_event(app, broker, apikey):
    from app.services.risk import actions
    from tests.helpers import make_user

    user = make_user(app, "alice")
    book = _book(symbol="NOSUCHSYMBOL")
    book = dataclasses.replace(book, user_id=user.id)
    watch = SupertrendWatch(book, SETTINGS, entered_at=CLOCK)
    client = OpenAlgoClient(broker.url, apikey)
    problem = watch.load(client, CLOCK)
    assert problem is not None and "no 1-minute history for NOSUCHSYMBOL" in problem and not watch.loaded
    assert watch.load(client, CLOCK) is None  # asked again only after the retry interval
    actions.supertrend_held(book, problem)
    [event] = db.session.scalars(select(RiskEvent)).all()
    assert (event.event_type, event.action, event.user_id) == ("supertrend", "held", user.id)
    assert watch.evaluate(CLOCK + timedelta(minutes=5)) is None
    client.close()
