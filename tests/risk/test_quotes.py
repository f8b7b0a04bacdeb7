"""The price the rules use for one instrument: the feed's, or a quote asked for after its last trade
while the quote's host trades (the monitor decides `market_live`: per host, in the exchange's session)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from app.domain.price_guard import PriceProblem
from app.services.market_data import CachedPrice
from app.services.risk.quotes import QuotedPrice, judge_price

NOW = datetime(2026, 1, 5, 5, 0, tzinfo=UTC)
AGE = timedelta(seconds=15)


def _fed(price: str, traded_ago: float) -> CachedPrice:
    return CachedPrice(D(price), NOW - timedelta(seconds=traded_ago), NOW - timedelta(seconds=1), "host")


def _quote(price: str, ago: float) -> QuotedPrice:
    return QuotedPrice(D(price), NOW - timedelta(seconds=ago), "host")


def test_a_quote_later_than_the_last_trade_stands_in_while_the_market_trades():
    check = judge_price(_fed("2.05", 40), _quote("2.10", 1), NOW, AGE, market_live=True)
    assert (check.price, check.problem, check.age) == (D("2.10"), None, timedelta(seconds=1))


def test_the_last_trade_alone_is_stale_after_the_age_limit():
    check = judge_price(_fed("2.05", 40), None, NOW, AGE, market_live=True)
    assert (check.price, check.problem) == (None, PriceProblem.STALE)


def test_no_quote_is_used_when_the_market_is_not_live():
    check = judge_price(_fed("2.05", 40), _quote("2.10", 1), NOW, AGE, market_live=False)
    assert check.problem is PriceProblem.STALE


def test_a_trade_later_than_the_quote_wins():
    check = judge_price(_fed("2.20", 0.5), _quote("2.10", 1), NOW, AGE, market_live=True)
    assert (check.price, check.age) == (D("2.20"), timedelta(seconds=0.5))


def test_a_quote_alone_prices_an_instrument_the_feed_never_priced():
    assert judge_price(None, _quote("2.10", 3), NOW, AGE, market_live=True).price == D("2.10")
    assert judge_price(None, None, NOW, AGE, market_live=True).problem is PriceProblem.MISSING


def test_a_quote_is_as_fresh_as_its_asking():
    assert judge_price(_fed("2.05", 40), _quote("2.10", 16), NOW, AGE, market_live=True).problem is \
        PriceProblem.STALE


def test_a_quote_counts_only_while_its_own_host_trades_and_its_exchange_is_in_session(app):
    """The monitor's side: liveness is per market-data host (a frozen broker beside a live one does
    not borrow its liveness), and a closed exchange uses no quote."""
    from app.services.risk.monitor import RiskMonitor
    from app.services.risk.quotes import QuotedPrice

    monitor = RiskMonitor(app)
    now = datetime.now(UTC)
    monitor.prices._live_at = {"http://live": now - timedelta(seconds=1), "http://frozen": now - timedelta(minutes=5)}
    monitor.prices._sessions = {"NSE": (time.monotonic(), True), "BSE": (time.monotonic(), False)}  # (asked at, open)
    monitor.quotes._quotes = {("A", "NFO"): QuotedPrice(D("2.10"), now - timedelta(seconds=1), "http://live"),
                              ("B", "NFO"): QuotedPrice(D("3.10"), now - timedelta(seconds=1), "http://frozen"),
                              ("C", "BFO"): QuotedPrice(D("4.10"), now - timedelta(seconds=1), "http://live")}
    assert monitor.prices.check("A", "NFO", now).price == D("2.10")
    assert monitor.prices.check("B", "NFO", now).problem is PriceProblem.MISSING  # the feed never priced it
    assert monitor.prices.check("C", "BFO", now).problem is PriceProblem.MISSING  # BSE closed


def test_a_pass_judges_each_instrument_once_and_the_next_pass_judges_it_again(app):
    """`PriceBoard.checker(now)`: the runs of one pass that share a contract see one verdict; a tick
    that arrives during the pass is seen by the next pass (its runs are marked for it)."""
    from app.services.monitors import last_prices
    from app.services.risk.monitor import RiskMonitor

    monitor = RiskMonitor(app)
    cache = last_prices(app)
    now = datetime.now(UTC)
    cache.update("PASS1", "NFO", "2.10", now - timedelta(seconds=1), "host", now)
    check = monitor.prices.checker(now)
    assert check("PASS1", "NFO", now).price == D("2.10")
    cache.update("PASS1", "NFO", "2.30", now, "host", now)
    assert check("PASS1", "NFO", now).price == D("2.10")  # the same pass: the verdict it started with
    later = now + timedelta(milliseconds=5)
    assert check("PASS1", "NFO", later).price == D("2.30")  # another moment is judged anew
    assert monitor.prices.checker(later)("PASS1", "NFO", later).price == D("2.30")  # so is the next pass
