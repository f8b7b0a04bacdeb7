"""Execute → a committed run with every entry intent planned, or a clear refusal that writes nothing.

Over real HTTP against the paper broker (tests/test_strategy_preview.py's `env`: three accounts
Alpha, Beta, Gamma behind a counting proxy, the broker at 2026-01-05 10:00 IST, NIFTY 26,000).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import OrderIntent, RunAccount, RunLeg, ServiceLease, Strategy, StrategyRun, TradingAccount, User
from app.models.accounts import STATUS_DISCONNECTED
from app.services.execution import planner
from app.services.execution.errors import EngineOffline, ExecutionRefused, TradingHalted
from app.services.execution.halt import halt_trading
from app.services.lease import DEFAULT_LEASE_NAME
from tests.test_strategy_preview import IRON_CONDOR, NOW, Env, env  # noqa: F401  (the shared fixture)

SATURDAY = datetime(2026, 1, 10, 5, 0, tzinfo=UTC)  # 10:30 IST on a Saturday


@pytest.fixture
def ctx(env):  # noqa: F811
    """The env, with its app's context pushed for the test."""
    with env.app.app_context():
        yield env
        db.session.rollback()


@pytest.fixture
def online(ctx):
    """A valid services lease row: the engine counts as online."""
    now = datetime.now(UTC)
    db.session.add(ServiceLease(name=DEFAULT_LEASE_NAME, holder="test:1:abc", acquired_at=now, renewed_at=now,
                                expires_at=now + timedelta(hours=1)))
    db.session.commit()
    return ctx


def _user() -> User:
    return db.session.scalar(select(User).where(User.username == "alice"))


def _strategy(env: Env, **overrides) -> Strategy:  # noqa: F811
    strategy_id = env.create(IRON_CONDOR, risk_profile="fixed_lots", **overrides)
    return db.session.get(Strategy, strategy_id)


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _nothing_written() -> None:
    assert (_count(StrategyRun), _count(RunAccount), _count(RunLeg), _count(OrderIntent)) == (0, 0, 0, 0)


def test_submit_iron_condor_on_three_accounts_plans_every_child_hedges_first(online):
    strategy = _strategy(online)

    run = planner.submit_execution(_user(), strategy, idempotency_key="k-1", now=NOW)

    assert (run.status, run.strategy_name, run.product, run.trigger, run.failure_policy) == (
        "entering", "Condor", "MIS", "manual", "report")
    assert run.clicked_at == NOW and str(run.trading_day) == "2026-01-05"
    assert [(leg.number, leg.symbol, leg.action, leg.lot_size, leg.freeze_qty) for leg in run.legs] == [
        (1, "NIFTY06JAN2626100CE", "SELL", 65, 1755), (2, "NIFTY06JAN2626200CE", "BUY", 65, 1755),
        (3, "NIFTY06JAN2625900PE", "SELL", 65, 1755), (4, "NIFTY06JAN2625800PE", "BUY", 65, 1755)]
    assert [(a.account_name, a.status, a.skip_reason) for a in run.accounts] == [
        ("Alpha", "planned", None), ("Beta", "planned", None), ("Gamma", "planned", None)]
    intents = db.session.scalars(select(OrderIntent).order_by(OrderIntent.id)).all()
    assert len(intents) == 12
    alpha = online.ids["Alpha"]
    first = [i for i in intents if i.account_id == alpha]
    assert [(i.leg_number, i.action, i.phase, i.quantity, i.price_type, i.state, i.purpose) for i in first] == [
        (1, "SELL", 1, 65, "MARKET", "planned", "entry"), (2, "BUY", 0, 65, "MARKET", "planned", "entry"),
        (3, "SELL", 1, 65, "MARKET", "planned", "entry"), (4, "BUY", 0, 65, "MARKET", "planned", "entry")]
    assert first[0].intent_key == f"run:{run.id}/acct:{alpha}/leg:1/child:0/entry/1"
    assert all(i.run_id == run.id and i.product == "MIS" and i.broker_order_id is None for i in intents)


def test_submit_same_idempotency_key_twice_is_one_run(online):
    strategy = _strategy(online)
    first = planner.submit_execution(_user(), strategy, idempotency_key="same", now=NOW)
    second = planner.submit_execution(_user(), strategy, idempotency_key="same", now=NOW)
    assert first.id == second.id
    assert (_count(StrategyRun), _count(OrderIntent)) == (1, 12)


def test_submit_above_the_freeze_quantity_plans_one_intent_per_child(online):
    strategy = _strategy(online)
    for leg in strategy.legs:
        leg.lots = 60  # 3,900 units: 1,755 + 1,755 + 390
    db.session.commit()

    run = planner.submit_execution(_user(), strategy, idempotency_key="split", account_ids=[online.ids["Beta"]],
                                   now=NOW)

    leg1 = db.session.scalars(select(OrderIntent).where(OrderIntent.run_id == run.id, OrderIntent.leg_number == 1)
                              .order_by(OrderIntent.child)).all()
    assert [(i.child, i.quantity) for i in leg1] == [(0, 1755), (1, 1755), (2, 390)]
    assert _count(OrderIntent) == 12


def test_submit_with_engine_offline_refuses_and_writes_nothing(ctx):
    strategy = _strategy(ctx)
    with pytest.raises(EngineOffline):
        planner.submit_execution(_user(), strategy, idempotency_key="k", now=NOW)
    _nothing_written()


def test_submit_while_halted_refuses_with_the_reason_and_writes_nothing(online):
    strategy = _strategy(online)
    admin = _user()
    admin.role = "admin"
    db.session.commit()
    halt_trading(admin, "exchange glitch")
    with pytest.raises(TradingHalted, match="exchange glitch"):
        planner.submit_execution(_user(), strategy, idempotency_key="k", now=NOW)
    _nothing_written()


def test_submit_with_no_accounts_chosen_refuses(online):
    strategy = _strategy(online)
    with pytest.raises(ExecutionRefused, match="No accounts are chosen"):
        planner.submit_execution(_user(), strategy, idempotency_key="k", account_ids=[], now=NOW)
    _nothing_written()


def test_submit_with_another_users_account_id_refuses(online):
    strategy = _strategy(online)
    with pytest.raises(ExecutionRefused, match="strategy's own accounts"):
        planner.submit_execution(_user(), strategy, idempotency_key="k", account_ids=[999_999], now=NOW)
    _nothing_written()


def test_submit_with_only_inactive_or_disconnected_accounts_refuses_with_reasons(online):
    strategy = _strategy(online)
    for name, account_id in online.ids.items():
        account = db.session.get(TradingAccount, account_id)
        if name == "Alpha":
            account.connection_status = STATUS_DISCONNECTED
        else:
            account.is_active = False
    db.session.commit()
    with pytest.raises(ExecutionRefused) as caught:
        planner.submit_execution(_user(), strategy, idempotency_key="k", now=NOW)
    message = caught.value.user_message
    assert "No account can trade this strategy" in message
    assert "Alpha: account disconnected" in message and "Beta: account inactive" in message
    _nothing_written()


def test_submit_a_disconnected_account_is_skipped_with_its_reason_and_gets_no_intents(online):
    strategy = _strategy(online)
    db.session.get(TradingAccount, online.ids["Gamma"]).connection_status = STATUS_DISCONNECTED
    db.session.commit()

    run = planner.submit_execution(_user(), strategy, idempotency_key="k", now=NOW)

    rows = {a.account_name: (a.status, a.skip_reason) for a in run.accounts}
    assert rows["Gamma"] == ("skipped", "account disconnected")
    assert db.session.scalar(select(func.count()).select_from(OrderIntent)
                             .where(OrderIntent.account_id == online.ids["Gamma"])) == 0
    assert _count(OrderIntent) == 8


def test_submit_real_accounts_outside_market_hours_refuses(online):
    strategy = _strategy(online)
    with pytest.raises(ExecutionRefused, match="market is closed"):
        planner.submit_execution(_user(), strategy, idempotency_key="k", now=SATURDAY)
    _nothing_written()


def test_submit_with_the_market_data_account_down_refuses(online, sim):
    strategy = _strategy(online)
    sim.post("/sim/faults", {"apikey": online.keys["Alpha"], "error_rate": 1.0})
    with pytest.raises(ExecutionRefused, match=r"market-data account|could not be resolved"):
        planner.submit_execution(_user(), strategy, idempotency_key="k", now=NOW)
    _nothing_written()


def test_submit_failing_between_sizing_and_commit_leaves_nothing_behind(online, monkeypatch):
    strategy = _strategy(online)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(planner.audit, "record", broken)  # the last write before the commit
    with pytest.raises(RuntimeError):
        planner.submit_execution(_user(), strategy, idempotency_key="k", now=NOW)
    db.session.rollback()
    _nothing_written()


def test_submit_blank_or_overlong_idempotency_key_refuses(online):
    strategy = _strategy(online)
    for key in ("", "x" * 65):
        with pytest.raises(ExecutionRefused, match="form has expired"):
            planner.submit_execution(_user(), strategy, idempotency_key=key, now=NOW)
    _nothing_written()


def test_submit_an_account_blocked_by_its_daily_limit_is_skipped_and_the_run_keeps_its_rules(online):
    from app.domain.expiries import ist_today
    from app.services.risk.events import block_account_entries

    strategy = _strategy(online)
    strategy.max_loss = Decimal("2500")
    strategy.risk_scope = "combined"
    db.session.commit()
    block_account_entries(online.ids["Gamma"], ist_today(NOW), "daily loss limit ₹5,000 reached", commit=True)

    run = planner.submit_execution(_user(), strategy, idempotency_key="k", now=NOW)

    rows = {a.account_name: (a.status, a.skip_reason) for a in run.accounts}
    assert rows["Gamma"] == ("skipped", "entries blocked for today: daily loss limit ₹5,000 reached")
    assert _count(OrderIntent) == 8
    assert (run.risk_settings["scope"], run.risk_settings["max_loss"], run.risk_settings["max_loss_action"]) == \
        ("combined", "2500.00", "close_all")
    assert sorted(run.risk_settings["legs"]) == ["1", "2", "3", "4"]
    strategy.max_loss = Decimal("100")  # a later edit changes the next run, not this one
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(StrategyRun, run.id).risk_settings["max_loss"] == "2500.00"


def test_execute_after_the_weeks_expiry_closed_trades_the_next_week_never_an_expired_contract(online):
    """15:45 IST on the expiry day (6 Jan 2026; paper accounts, so no market-hours gate): the broker
    still lists the 6 Jan expiry, but its contracts have expired, so "current week" is 13 Jan.
    (The planner's own refusal of an expired leg stays as a second guard behind the resolver.)"""
    strategy = _strategy(online)
    for account in db.session.scalars(select(TradingAccount)):
        account.is_paper = True
    db.session.commit()

    run = planner.submit_execution(_user(), strategy, idempotency_key="k-after-expiry",
                                   now=datetime(2026, 1, 6, 10, 15, tzinfo=UTC))

    assert [(leg.symbol, str(leg.expiry)) for leg in run.legs] == [
        ("NIFTY13JAN2626100CE", "2026-01-13"), ("NIFTY13JAN2626200CE", "2026-01-13"),
        ("NIFTY13JAN2625900PE", "2026-01-13"), ("NIFTY13JAN2625800PE", "2026-01-13")]
    assert _count(OrderIntent) == 12
