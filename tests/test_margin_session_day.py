"""The trading session day (legs.expiry_reference_day) in the margin services: the stored
next-month lot size at month end, and the calculator's contract and rate after the close."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from app.domain.expiries import format_expiry
from app.domain.legs import expiry_reference_day
from app.services.margin import calculator, contracts
from app.services.margin.tables import ContractRow
from app.services.strategy.resolution import default_contract_lookup
from tests.test_margin_calculator import add, calc, nifty_expiries, no_broker_margin  # noqa: F401

ROW = ContractRow("NIFTY", lot_size=65, next_month_lot_size=75, freeze_qty=1755, strike_step=50)


@pytest.mark.parametrize(("now", "expiry", "lot_size"), [
    # 31 Dec 10:00 IST: the session is in December, a January contract is next month.
    (datetime(2026, 12, 31, 4, 30, tzinfo=UTC), date(2027, 1, 26), 75),
    # 31 Dec 16:00 IST, after the close: the session it trades in is in January.
    (datetime(2026, 12, 31, 10, 30, tzinfo=UTC), date(2027, 1, 26), 65),
    (datetime(2026, 12, 31, 10, 30, tzinfo=UTC), date(2027, 2, 23), 75),
    # 30 Nov one minute before and exactly at 15:30 IST, a December contract.
    (datetime(2026, 11, 30, 9, 59, tzinfo=UTC), date(2026, 12, 29), 75),
    (datetime(2026, 11, 30, 10, 0, tzinfo=UTC), date(2026, 12, 29), 65),
    # A contract of the session's own month.
    (datetime(2026, 12, 1, 4, 30, tzinfo=UTC), date(2026, 12, 29), 65),
])
def test_stored_lot_size_follows_the_trading_session_month_in_resolution_and_calculator(
        monkeypatch, now, expiry, lot_size):
    monkeypatch.setattr(contracts, "contract_row", lambda underlying: ROW)
    monkeypatch.setattr(contracts, "utcnow", lambda: now)

    by_default = contracts.contract_spec(None, "NIFTY", None, None, expiry)  # what the calculator's day gives
    by_resolution = default_contract_lookup(None, "NIFTY", "NIFTYFUT", "NFO", expiry,  # type: ignore[arg-type]
                                            expiry_reference_day(now))

    assert (by_default.lot_size, by_default.stored_lot_size, by_resolution.lot_size) == (lot_size,) * 3


def test_calculator_after_the_close_on_an_expiry_day_takes_the_next_expiry_at_the_non_expiry_rate(
        alice, broker, sim, apikey, monkeypatch, nifty_expiries):  # noqa: F811
    day = nifty_expiries[0]
    monkeypatch.setattr(calculator, "utcnow", lambda: datetime(day.year, day.month, day.day, 10, 30, tzinfo=UTC))
    account_id = add(alice, broker, apikey)
    no_broker_margin(sim, apikey)

    data = calc(alice, [account_id]).json

    assert format_expiry(nifty_expiries[1]) in data["contract"]["symbol"]  # not today's expired contract
    assert data["expiry_day"] == {"NIFTY": {"expiry_day": False, "known": True}}
    assert data["margin_per_strategy_lot"] == "250000.00"
    assert data["accounts"][0]["strategy_lots"] == 2  # floor(6,50,000 / 2,50,000)
