"""Strategy models: domain value objects from rows, cascades, constraints; the time rules."""

from __future__ import annotations

from datetime import time
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.domain.expiries import ExpiryChoice
from app.domain.instruments import Action, InstrumentKind, OptionType
from app.domain.sizing import RiskProfile
from app.domain.strategy_settings import LegRiskUnit, MarketCondition, OrderType, Product, TrailingType, time_problems
from app.domain.strikes import StrikeMethod, StrikeRule
from app.extensions import db
from app.models import Strategy, StrategyAccount, StrategyLeg, StrategyTemplate
from app.services.strategy.crud import regular_session
from tests.helpers import make_user
from tests.support.strategies import add_account

HOURS = "Choose a time within market hours (09:15–15:30 IST)."


def _strategy(user_id: int, **overrides) -> Strategy:
    values = {"user_id": user_id, "name": "S", "entry_time": time(9, 20), "exit_time": time(15, 0),
              "square_off_time": time(15, 15)}
    values.update(overrides)
    return Strategy(**values)


def _leg(position: int, **overrides) -> StrategyLeg:
    values = {"position": position, "underlying": "NIFTY", "instrument": "option", "expiry_choice": "next_week",
              "strike_method": "itm", "strike_offset": 3, "option_type": "PE", "action": "BUY", "lots": 2,
              "order_type": "MARKET"}
    values.update(overrides)
    return StrategyLeg(**values)


def test_strategy_defaults_and_value_objects(app, trader):
    strategy = _strategy(trader.id, trailing_type="percentage", trailing_value=Decimal("12.5"))
    db.session.add(strategy)
    db.session.commit()

    stored = db.session.get(Strategy, strategy.id)

    assert stored.profile() is RiskProfile.BALANCED
    assert stored.condition() is MarketCondition.ANY
    assert stored.product_type() is Product.MIS
    assert stored.trailing() is TrailingType.PERCENTAGE and stored.trailing_value == Decimal("12.50")
    assert (stored.supertrend_enabled, stored.supertrend_period, stored.supertrend_multiplier,
            stored.supertrend_timeframe, stored.supertrend_exit) == (False, 7, Decimal("3.00"), "5m", "breakout")
    assert stored.created_at.tzinfo is not None


def test_option_leg_gives_domain_rule_expiry_and_side(app, trader):
    strategy = _strategy(trader.id, legs=[
        _leg(0, stop_loss_unit="points", stop_loss_value=Decimal("25"), order_type="LIMIT",
             limit_buffer_pct=Decimal("1.5")),
        _leg(1, strike_method="premium_near", strike_offset=None, target_premium=Decimal("80.5"), option_type="CE",
             action="SELL"),
        _leg(2, instrument="future", strike_method=None, strike_offset=None, option_type=None,
             expiry_choice="current_month")])
    db.session.add(strategy)
    db.session.commit()

    first, second, future = db.session.get(Strategy, strategy.id).legs

    assert first.rule() == StrikeRule(StrikeMethod.ITM, offset=3)
    assert (first.expiry(), first.side(), first.option(), first.kind()) == (
        ExpiryChoice.NEXT_WEEK, Action.BUY, OptionType.PE, InstrumentKind.OPTION)
    assert first.order() is OrderType.LIMIT and first.limit_buffer_pct == Decimal("1.50")
    assert first.stop_loss() == (LegRiskUnit.POINTS, Decimal("25.00")) and first.target() is None
    assert first.index().derivatives_exchange == "NFO"
    assert second.rule() == StrikeRule(StrikeMethod.PREMIUM_NEAR, target_premium=Decimal("80.50"))
    assert (future.rule(), future.option(), future.kind(), future.expiry()) == (
        None, None, InstrumentKind.FUTURE, ExpiryChoice.CURRENT_MONTH)


def test_legs_come_back_in_position_order(app, trader):
    strategy = _strategy(trader.id, legs=[_leg(2, strike_offset=9), _leg(0, strike_offset=1), _leg(1, strike_offset=5)])
    db.session.add(strategy)
    db.session.commit()
    db.session.expire_all()

    assert [leg.strike_offset for leg in db.session.get(Strategy, strategy.id).legs] == [1, 5, 9]


def test_two_legs_in_one_position_are_refused(app, trader):
    db.session.add(_strategy(trader.id, legs=[_leg(0), _leg(0)]))

    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_deleting_a_strategy_deletes_its_legs_and_account_rows(app, trader):
    account_id = add_account(app, trader.id, "Main")
    strategy = _strategy(trader.id, legs=[_leg(0)],
                         accounts=[StrategyAccount(account_id=account_id, lot_multiplier=Decimal("1.5"))])
    db.session.add(strategy)
    db.session.commit()

    db.session.delete(strategy)
    db.session.commit()

    assert db.session.scalar(select(func.count()).select_from(StrategyLeg)) == 0
    assert db.session.scalar(select(func.count()).select_from(StrategyAccount)) == 0


def test_template_names_are_unique_per_user(app, trader):
    other = make_user(app, "carol")
    db.session.add_all([StrategyTemplate(user_id=trader.id, name="T", spec={}),
                        StrategyTemplate(user_id=other.id, name="T", spec={})])
    db.session.commit()
    db.session.add(StrategyTemplate(user_id=trader.id, name="T", spec={}))

    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_builtin_templates_are_seeded_without_owner(app):
    rows = db.session.scalars(select(StrategyTemplate).where(StrategyTemplate.user_id.is_(None))).all()

    assert len(rows) == 7 and all(t.builtin for t in rows)


def test_regular_session_comes_from_the_calendar(app):
    assert regular_session() == (time(9, 15), time(15, 30))


@pytest.mark.parametrize(("entry", "exit_", "square_off", "expected"), [
    ((9, 20), (15, 0), (15, 15), {}),
    ((9, 15), (15, 30), (15, 30), {}),  # both ends of the session, exit == square-off
    ((9, 14), (15, 0), (15, 15), {"entry_time": HOURS}),
    ((9, 20), (15, 31), (15, 31), {"exit_time": HOURS, "square_off_time": HOURS}),
    ((10, 0), (10, 0), (15, 0), {"exit_time": "The exit time must be after the entry time."}),
    ((11, 0), (10, 0), (15, 0), {"exit_time": "The exit time must be after the entry time."}),
    ((9, 20), (15, 0), (14, 59), {"square_off_time": "The square-off time must be at or after the exit time."}),
    ((8, 0), (7, 0), (6, 0), {"entry_time": HOURS, "exit_time": HOURS, "square_off_time": HOURS}),
])
def test_time_problems_decision_table(entry, exit_, square_off, expected):
    assert time_problems(time(*entry), time(*exit_), time(*square_off)) == expected


def test_time_problems_skips_missing_times():
    assert time_problems(None, time(15, 0), None) == {}
