"""Leg resolution over real HTTP: the user's market-data account -> counting proxy -> rewriting
proxy -> the paper broker (deterministic, 2026-01-05 10:00 IST, NIFTY 26,000).

The counting proxy proves what the broker was really asked; the rewriting proxy makes it answer
like other brokers (numbers as strings, chains without quotes, short expiry lists).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from app.broker.client import OpenAlgoClient
from app.domain.expiries import ExpiryChoice
from app.domain.instruments import Action, InstrumentKind, OptionType
from app.domain.legs import LegSpec
from app.domain.strategy_settings import OrderType
from app.domain.strikes import StrikeMethod, StrikeRule
from app.extensions import db
from app.models import TradingAccount
from app.models.accounts import STATUS_CONNECTED, STATUS_DISCONNECTED
from app.models.users import User
from app.services.strategy.resolution import LegError, LegFailure, ResolvedLeg, resolve_for_user
from tests.helpers import Browserless, make_user
from tests.support.broker_proxy import BrokerProxy
from tests.support.paperbroker import START

NOW = datetime.fromisoformat(START)
WEEK = ExpiryChoice.CURRENT_WEEK


def option(rule: StrikeRule, option_type: str, action: str, *, underlying: str = "NIFTY",
           expiry: ExpiryChoice = WEEK, lots: int = 1, **extra: Any) -> LegSpec:
    return LegSpec(underlying, InstrumentKind.OPTION, expiry, rule, OptionType(option_type), Action(action), lots,
                   **extra)


def future(expiry: ExpiryChoice, action: str = "BUY", underlying: str = "NIFTY") -> LegSpec:
    return LegSpec(underlying, InstrumentKind.FUTURE, expiry, None, None, Action(action), 1)


def otm(n: int) -> StrikeRule:
    return StrikeRule(StrikeMethod.OTM, offset=n)


def near(premium: str) -> StrikeRule:
    return StrikeRule(StrikeMethod.PREMIUM_NEAR, target_premium=Decimal(premium))


IRON_CONDOR = [option(otm(2), "CE", "SELL"), option(otm(4), "CE", "BUY"),
               option(otm(2), "PE", "SELL"), option(otm(4), "PE", "BUY")]


@dataclass
class Env:
    app: Any
    counting: BrokerProxy
    rewriting: BrokerProxy
    broker_client: OpenAlgoClient  # straight to the paper broker, for the reference answers
    keys: dict[str, str]

    def user(self, username: str = "alice") -> User:
        user = db.session.scalar(select(User).where(User.username == username))
        assert user is not None
        return user

    def calls(self, endpoint: str, account: str = "Alpha") -> int:
        return self.counting.count(endpoint, self.keys[account])

    def resolve(self, specs: list[LegSpec], username: str = "alice", now: datetime = NOW):
        with self.app.app_context():
            return resolve_for_user(self.user(username), specs, now=now)


@pytest.fixture
def env(app_factory, broker, sim) -> Iterator[Env]:
    sim.set_spot(NIFTY=26000, BANKNIFTY=59000, SENSEX=85000)
    keys: dict[str, str] = {}
    with BrokerProxy(broker.url) as rewriting, BrokerProxy(rewriting.url) as counting:
        application = app_factory()
        with application.app_context():
            make_user(application, "alice")
            make_user(application, "carol")  # no accounts
            client = Browserless(application.test_client())
            client.login("alice")
            for name in ("Alpha", "Beta"):
                keys[name] = sim.new_account()
                answer = client.post_form("/accounts/add", {
                    "account_name": name, "host_url": counting.url, "websocket_url": broker.ws_url,
                    "api_key": keys[name]}, page="/accounts/add")
                assert answer.status_code == 302, answer.get_data(as_text=True)
        direct = OpenAlgoClient(broker.url, keys["Alpha"])
        try:
            yield Env(application, counting, rewriting, direct, keys)
        finally:
            direct.close()
    sim.call("DELETE", "/sim/faults")
    for key in keys.values():
        sim.call("DELETE", f"/sim/accounts/{key}")


def _resolved(resolution) -> list[ResolvedLeg]:
    assert resolution.ok, [e.message for e in resolution.errors] or resolution.error
    return resolution.resolved


def test_iron_condor_resolves_to_the_strikes_the_brokers_optionsymbol_gives(env):
    resolution = env.resolve(IRON_CONDOR)

    legs = _resolved(resolution)
    assert [leg.symbol for leg in legs] == ["NIFTY06JAN2626100CE", "NIFTY06JAN2626200CE",
                                            "NIFTY06JAN2625900PE", "NIFTY06JAN2625800PE"]
    expiry = env.broker_client.expiries("NIFTY", "NFO")[0]
    reference = [env.broker_client.option_symbol("NIFTY", "NFO", expiry, f"OTM{n}", kind).symbol
                 for n, kind in ((2, "CE"), (4, "CE"), (2, "PE"), (4, "PE"))]
    assert [leg.symbol for leg in legs] == reference
    assert [leg.strike for leg in legs] == [Decimal(26100), Decimal(26200), Decimal(25900), Decimal(25800)]
    assert {(leg.expiry, leg.exchange, leg.lot_size, leg.freeze_qty, leg.max_lots_per_order, leg.quantity)
            for leg in legs} == {(date(2026, 1, 6), "NFO", 65, 1755, 27, 65)}
    assert resolution.source == "Alpha" and resolution.today == date(2026, 1, 5)
    # LTP, IV and greeks come from the same chain answer, for every leg.
    chain = env.broker_client.option_chain("NIFTY", "NSE_INDEX", expiry)
    by_symbol = {leg.symbol: leg for row in chain.rows for leg in (row.ce, row.pe) if leg is not None}
    for leg in legs:
        listed = by_symbol[leg.symbol]
        assert (leg.ltp, leg.iv, leg.delta, leg.gamma, leg.theta, leg.vega) == (
            listed.ltp, listed.iv, listed.delta, listed.gamma, listed.theta, listed.vega)
        assert leg.ltp > 0 and leg.iv is not None and leg.quote_source == "optionchain"
        assert leg.spot == Decimal(26000)


def test_iron_condor_asks_one_chain_and_the_market_data_account_only(env):
    env.resolve(IRON_CONDOR)

    assert env.calls("optionchain") == 1  # four legs, one (underlying, expiry): one chain
    assert env.calls("expiry") == 2  # options and futures lists of NIFTY
    assert env.calls("multiquotes") == 0  # the chain's own quotes priced every leg
    assert sum(env.calls(e, "Beta") for e in ("expiry", "optionchain", "multiquotes", "symbol")) == 0


def test_the_legs_contract_figures_are_read_together_not_one_after_another(env):
    # Each leg's lot size and freeze quantity come from /symbol (cached for minutes): with a cold
    # cache a four-leg strategy must not wait four round trips, one per leg, before it can size.
    env.counting.gather("symbol", 4)
    legs = _resolved(env.resolve(IRON_CONDOR))
    assert env.calls("symbol") == 4 and env.counting.peak("symbol") == 4
    assert {(leg.lot_size, leg.freeze_qty, leg.lot_source) for leg in legs} == {(65, 1755, "broker")}
    # Within the cache's lifetime nothing is asked again.
    _resolved(env.resolve(IRON_CONDOR))
    assert env.calls("symbol") == 4


def test_one_contract_whose_figures_are_refused_falls_back_to_the_stored_settings_alone(env):
    env.rewriting.rewrite("symbol", lambda body: {"status": "error", "message": "unknown symbol"}
                          if "26200CE" in str(body) else body)
    legs = _resolved(env.resolve(IRON_CONDOR))
    assert [leg.lot_source for leg in legs] == ["broker", "settings", "broker", "broker"]
    assert {leg.lot_size for leg in legs} == {65}


def test_atm_itm_otm_legs_ask_a_window_of_strikes_and_resolve_as_on_the_full_chain(env):
    """A window of 6 strikes each side (OTM 4 + the margin of 2) instead of all 152: the same
    legs as when a specific-strike leg makes the chain a full one."""
    windowed = _resolved(env.resolve(IRON_CONDOR))
    assert [body.get("strike_count") for body in env.counting.asked("optionchain")] == [6]

    full = _resolved(env.resolve([*IRON_CONDOR, option(StrikeRule(StrikeMethod.STRIKE, strike=Decimal(26000)),
                                                       "CE", "BUY")]))
    assert [body.get("strike_count") for body in env.counting.asked("optionchain")] == [6, None]
    assert [(leg.symbol, leg.strike, leg.ltp) for leg in windowed] == [
        (leg.symbol, leg.strike, leg.ltp) for leg in full[:4]]


def test_premium_near_or_a_specific_strike_asks_the_whole_chain(env):
    _resolved(env.resolve([option(otm(1), "CE", "SELL"), option(near("40"), "PE", "SELL")]))
    _resolved(env.resolve([option(StrikeRule(StrikeMethod.ATM), "CE", "SELL"),
                           option(StrikeRule(StrikeMethod.STRIKE, strike=Decimal(26100)), "CE", "BUY")]))
    assert ["strike_count" in body for body in env.counting.asked("optionchain")] == [False, False]


def _window_cut_above(strike: float, full_spot: float | None = None):
    """A server whose windows (not its full chains) stop at `strike`: narrower than asked; its
    full chains optionally a moment later, the spot at `full_spot`."""
    def cut(body: dict[str, Any]) -> dict[str, Any]:
        rows = body.get("chain", [])
        if len(rows) < 100:
            body["chain"] = [row for row in rows if float(row["strike"]) <= strike]
        elif full_spot is not None:
            body["underlying_ltp"] = full_spot
        return body
    return cut


def test_a_window_that_cannot_serve_a_leg_has_every_leg_of_its_chain_selected_on_one_full_read(env):
    """OTM 4 CE walks off a window cut short above 26,050: the chain is read again in full, once,
    and all four legs are selected on that one answer, whose spot (26,030: ATM 26,050) differs
    from the window's (26,000). Legs around two different ATMs would make a lopsided condor."""
    env.rewriting.rewrite("optionchain", _window_cut_above(26050, full_spot=26030))

    legs = _resolved(env.resolve(IRON_CONDOR))

    assert [leg.symbol for leg in legs] == ["NIFTY06JAN2626150CE", "NIFTY06JAN2626250CE",
                                            "NIFTY06JAN2625950PE", "NIFTY06JAN2625850PE"]
    assert {leg.spot for leg in legs} == {Decimal(26030)}
    assert [body.get("strike_count") for body in env.counting.asked("optionchain")] == [6, None]


def test_a_window_whose_atm_is_at_its_edge_is_not_trusted(env):
    """A window cut at 26,000 has ATM at its upper end: the nearest strike may lie beyond it, so
    the full list decides ATM (here the same strike, read once more)."""
    env.rewriting.rewrite("optionchain", _window_cut_above(26000))

    legs = _resolved(env.resolve([option(StrikeRule(StrikeMethod.ATM), "CE", "SELL")]))

    assert [leg.symbol for leg in legs] == ["NIFTY06JAN2626000CE"]
    assert [body.get("strike_count") for body in env.counting.asked("optionchain")] == [2, None]


def test_each_underlying_and_expiry_has_its_own_single_chain(env):
    specs = [option(otm(1), "CE", "SELL"), option(otm(1), "PE", "SELL"),
             option(otm(1), "CE", "BUY", expiry=ExpiryChoice.NEXT_WEEK),
             option(otm(1), "CE", "SELL", underlying="SENSEX"), option(otm(3), "PE", "SELL", underlying="SENSEX")]

    legs = _resolved(env.resolve(specs))

    assert [leg.symbol for leg in legs] == ["NIFTY06JAN2626050CE", "NIFTY06JAN2625950PE", "NIFTY13JAN2626050CE",
                                            "SENSEX08JAN2685100CE", "SENSEX08JAN2684700PE"]
    assert [leg.exchange for leg in legs] == ["NFO"] * 3 + ["BFO"] * 2
    assert env.calls("optionchain") == 3 and env.calls("expiry") == 4


def _chain_ltps(env: Env, option_type: str, expiry_index: int = 0) -> dict[Decimal, Decimal]:
    expiry = env.broker_client.expiries("NIFTY", "NFO")[expiry_index]
    chain = env.broker_client.option_chain("NIFTY", "NSE_INDEX", expiry)
    return {row.strike: (row.ce if option_type == "CE" else row.pe).ltp for row in chain.rows}


def _nearest(ltps: dict[Decimal, Decimal], target: Decimal) -> Decimal:
    return min(ltps, key=lambda k: (abs(ltps[k] - target), ltps[k], k))


def test_premium_near_takes_the_strike_nearest_the_target_from_one_chain_answer(env):
    specs = [option(near("40"), "CE", "SELL"), option(near("25"), "PE", "SELL"), option(near("5"), "CE", "BUY")]

    legs = _resolved(env.resolve(specs))

    calls, puts = _chain_ltps(env, "CE"), _chain_ltps(env, "PE")
    assert [leg.strike for leg in legs] == [_nearest(calls, Decimal(40)), _nearest(puts, Decimal(25)),
                                            _nearest(calls, Decimal(5))]
    assert legs[0].strike > Decimal(26000) and legs[1].strike < Decimal(26000)  # out of the money
    assert env.calls("optionchain") == 1 and env.calls("multiquotes") == 0  # one answer held every quote


def _without_quotes(body: dict[str, Any]) -> dict[str, Any]:
    """A chain as some brokers answer it: strikes and symbols, no prices."""
    body["quotes_included"] = False
    for row in body.get("chain", []):
        for side in ("ce", "pe"):
            if row.get(side):
                row[side]["ltp"] = 0
    return body


def test_premium_near_without_chain_quotes_makes_exactly_one_batched_quote_call(env):
    env.rewriting.rewrite("optionchain", _without_quotes)
    specs = [option(near("40"), "CE", "SELL"), option(near("25"), "PE", "SELL"), option(otm(2), "CE", "BUY"),
             future(ExpiryChoice.CURRENT_MONTH)]

    legs = _resolved(env.resolve(specs))

    calls, puts = _chain_ltps(env, "CE"), _chain_ltps(env, "PE")
    assert [leg.strike for leg in legs[:3]] == [_nearest(calls, Decimal(40)), _nearest(puts, Decimal(25)),
                                                Decimal(26100)]
    assert env.calls("multiquotes") == 1  # ~600 candidates, the OTM2 leg and the future: one call
    assert {leg.quote_source for leg in legs} == {"multiquotes"}
    assert legs[2].ltp == calls[Decimal(26100)]


def test_a_window_without_quotes_prices_its_legs_with_one_batched_quote_call(env):
    env.rewriting.rewrite("optionchain", _without_quotes)

    legs = _resolved(env.resolve(IRON_CONDOR))

    assert [leg.symbol for leg in legs] == ["NIFTY06JAN2626100CE", "NIFTY06JAN2626200CE",
                                            "NIFTY06JAN2625900PE", "NIFTY06JAN2625800PE"]
    assert [body.get("strike_count") for body in env.counting.asked("optionchain")] == [6]
    assert env.calls("multiquotes") == 1
    calls, puts = _chain_ltps(env, "CE"), _chain_ltps(env, "PE")
    assert [leg.ltp for leg in legs] == [calls[Decimal(26100)], calls[Decimal(26200)], puts[Decimal(25900)],
                                         puts[Decimal(25800)]]
    assert {leg.quote_source for leg in legs} == {"multiquotes"}


def test_premium_near_with_no_quote_anywhere_names_the_leg(env):
    env.rewriting.rewrite("optionchain", _without_quotes)
    env.rewriting.answer("multiquotes", 200, {"status": "success", "results": []})

    resolution = env.resolve([option(otm(1), "CE", "SELL"), option(near("40"), "PE", "SELL")])

    first, second = resolution.legs
    assert isinstance(first, LegError) and first.reason is LegFailure.NO_QUOTE
    assert first.message == "Leg 1 (SELL NIFTY OTM1 CE (current week)): no live quote for NIFTY06JAN2626050CE"
    assert isinstance(second, LegError) and second.reason is LegFailure.NO_QUOTE
    assert second.message.startswith("Leg 2 (SELL NIFTY premium ≈ 40 PE (current week)): no strike has a quote")


def test_monthly_only_underlying_maps_weeks_to_months(env):
    specs = [option(otm(1), "CE", "SELL", underlying="BANKNIFTY"),
             option(otm(1), "PE", "SELL", underlying="BANKNIFTY", expiry=ExpiryChoice.NEXT_WEEK),
             option(otm(1), "PE", "SELL", underlying="BANKNIFTY", expiry=ExpiryChoice.CURRENT_MONTH)]

    legs = _resolved(env.resolve(specs))

    assert [leg.expiry for leg in legs] == [date(2026, 1, 27), date(2026, 2, 24), date(2026, 1, 27)]
    assert [leg.symbol[:16] for leg in legs] == ["BANKNIFTY27JAN26", "BANKNIFTY24FEB26", "BANKNIFTY27JAN26"]
    assert {leg.lot_size for leg in legs} == {30}
    assert env.calls("optionchain") == 2


def test_futures_resolve_to_the_chosen_months_contract(env):
    specs = [future(ExpiryChoice.CURRENT_MONTH), future(ExpiryChoice.NEXT_MONTH, "SELL"),
             future(ExpiryChoice.CURRENT_WEEK), future(ExpiryChoice.NEXT_MONTH, underlying="SENSEX")]

    legs = _resolved(env.resolve(specs))

    assert [leg.symbol for leg in legs] == ["NIFTY27JAN26FUT", "NIFTY24FEB26FUT", "NIFTY27JAN26FUT",
                                            "SENSEX26FEB26FUT"]
    assert [(leg.strike, leg.option_type, leg.iv) for leg in legs] == [(None, None, None)] * 4
    quotes = env.broker_client.multiquotes([(leg.symbol, leg.exchange) for leg in legs])
    assert [leg.ltp for leg in legs] == [quotes[(leg.symbol, leg.exchange)].ltp for leg in legs]
    assert [leg.lot_size for leg in legs] == [65, 65, 65, 20]
    assert [leg.spot for leg in legs] == [Decimal(26000)] * 3 + [Decimal(85000)]  # the index, same call
    assert env.calls("multiquotes") == 1 and env.calls("optionchain") == 0


def test_a_specific_strike_not_listed_names_the_leg_and_the_others_resolve(env):
    specs = [option(otm(2), "CE", "SELL"), option(StrikeRule(StrikeMethod.STRIKE, strike=Decimal(26025)), "CE", "BUY"),
             option(StrikeRule(StrikeMethod.STRIKE, strike=Decimal(26000)), "PE", "SELL")]

    resolution = env.resolve(specs)

    first, second, third = resolution.legs
    assert isinstance(first, ResolvedLeg) and first.symbol == "NIFTY06JAN2626100CE"
    assert isinstance(second, LegError) and second.reason is LegFailure.STRIKE_NOT_LISTED
    assert second.message.startswith("Leg 2 (BUY NIFTY strike 26025 CE (current week)): strike 26025 is not listed")
    assert isinstance(third, ResolvedLeg) and third.symbol == "NIFTY06JAN2626000PE"
    assert not resolution.ok and resolution.error is None


def test_a_choice_the_expiry_list_cannot_serve_names_the_leg(env):
    env.rewriting.answer("expiry", 200, {"status": "success", "data": ["06-JAN-26"]})

    resolution = env.resolve([option(otm(2), "CE", "SELL"),
                              option(otm(2), "CE", "BUY", expiry=ExpiryChoice.NEXT_WEEK)])

    _, second = resolution.legs
    assert isinstance(second, LegError) and second.reason is LegFailure.NO_EXPIRY
    assert second.message.startswith("Leg 2 (BUY NIFTY OTM2 CE (next week)): no expiry for next week")


def test_after_the_close_on_expiry_day_the_current_week_is_the_next_one(env):
    after_close = datetime.fromisoformat("2026-01-06T15:31:00+05:30")

    legs = _resolved(env.resolve([option(otm(1), "CE", "SELL")], now=after_close))

    assert legs[0].expiry == date(2026, 1, 13)


def test_market_data_account_down_fails_every_leg_with_a_clear_error_and_no_prices(env, sim):
    sim.post("/sim/faults", {"apikey": env.keys["Alpha"], "error_rate": 1.0})

    resolution = env.resolve(IRON_CONDOR)

    assert resolution.resolved == [] and resolution.error is not None
    assert resolution.error.startswith("Market-data account Alpha failed (expiry)")
    assert {e.reason for e in resolution.errors} == {LegFailure.MARKET_DATA_DOWN}
    assert resolution.errors[3].message.startswith("Leg 4 (BUY NIFTY OTM4 PE (current week)): Market-data account")
    assert env.calls("optionchain") == 0  # it stopped at the first failure


def test_no_market_data_account_says_so(env):
    resolution = env.resolve(IRON_CONDOR, username="carol")

    assert resolution.error == "No market-data account: add an OpenAlgo account first."
    assert len(resolution.errors) == 4 and resolution.source is None


def test_the_backup_serving_data_resolves_when_the_primary_is_down(env):
    with env.app.app_context():
        rows = {a.account_name: a for a in db.session.scalars(select(TradingAccount))}
        assert rows["Alpha"].is_primary
        rows["Alpha"].connection_status = STATUS_DISCONNECTED
        rows["Beta"].connection_status = STATUS_CONNECTED
        db.session.commit()

    resolution = env.resolve(IRON_CONDOR)

    assert resolution.source == "Beta" and next(leg.symbol for leg in _resolved(resolution)) == "NIFTY06JAN2626100CE"
    assert env.calls("optionchain", "Beta") == 1 and env.calls("optionchain", "Alpha") == 0


def test_numbers_as_strings_resolve_to_the_same_legs(env, sim):
    plain = _resolved(env.resolve([*IRON_CONDOR, future(ExpiryChoice.CURRENT_MONTH)]))
    sim.post(f"/sim/accounts/{env.keys['Alpha']}/options", {"numbers_as_strings": True})
    env.rewriting.stringify = True  # and every other number of every answer too

    strings = _resolved(env.resolve([*IRON_CONDOR, future(ExpiryChoice.CURRENT_MONTH)]))

    assert strings == plain
    assert all(isinstance(leg.ltp, Decimal) and isinstance(leg.lot_size, int) for leg in strings)


def test_a_limit_leg_carries_its_limit_price_on_the_tick(env):
    spec = option(otm(2), "CE", "SELL", order_type=OrderType.LIMIT, limit_buffer_pct=Decimal(2))

    [leg] = _resolved(env.resolve([spec]))

    assert leg.tick_size == Decimal("0.05") and leg.limit_price is not None
    assert leg.limit_price <= leg.ltp * Decimal("0.98") and leg.limit_price % Decimal("0.05") == 0
    assert leg.ltp * Decimal("0.98") - leg.limit_price < Decimal("0.05")


def test_a_refused_key_on_the_market_data_account_says_so(env, sim):
    sim.post("/sim/faults", {"apikey": env.keys["Alpha"], "session_expired": True})

    resolution = env.resolve(IRON_CONDOR)

    assert resolution.error is not None and resolution.resolved == []
    assert resolution.error.startswith("Market-data account Alpha failed (expiry): The API key was refused")
