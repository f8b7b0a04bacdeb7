"""The risk monitor: the leader's service that protects open runs, driven by price ticks.

It watches every run that holds something (app/services/risk/book.py), subscribes the legs on the
shared feed connections (one WebSocket per OpenAlgo host, the same last-price cache as the
dashboard), and on each tick re-evaluates only the runs the tick touches: the price guard, then
the pure rules (app/domain/risk_rules.py), then the account daily limits (daily_limits.py). A leg
that has not traded for RISK_QUOTE_REFRESH_SECONDS is read by quote while the market trades
(quotes.py), so a quiet hedge does not hold its run's rules. A new breach closes
through the exit manager (app/services/risk/actions.py) once; alert-only breaches write one
event per breach; unreliable prices hold every rule and write one event per span. Once a second
(RISK_REFRESH_SECONDS) it re-reads the books when fills changed and re-evaluates every run, so a
price that stops coming turns stale even without a tick. What must survive a change of leader (the
trailing stops' peaks, the breaches acted on) is saved on the run (StrategyRun.risk_state).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from flask import Flask, current_app
from sqlalchemy import select

from app.broker.errors import BrokerError
from app.broker.feed import Tick
from app.domain.expiries import ist_today
from app.domain.premium_series import sessions_back, warmup_sessions
from app.domain.price_guard import (
    SpanEnded,
    SpanStarted,
    UnreliableSpan,
    assess_prices,
    check_price,
)
from app.domain.risk_pnl import leg_pnl
from app.domain.risk_rules import (
    AccountPosition,
    BreachLatch,
    RunRiskState,
    ScopedDecision,
    evaluate_run,
)
from app.domain.risk_settings import RiskAction
from app.extensions import db
from app.models.accounts import TradingAccount
from app.models.execution import ExitRequest, Purpose
from app.models.types import utcnow
from app.services.accounts import account_urls_allowed, client_for
from app.services.calendar import get_calendar
from app.services.market_source import choose_source
from app.services.monitors import feed_manager
from app.services.risk import actions
from app.services.risk.book import RunBook, load_books, run_signatures
from app.services.risk.daily_limits import DailyLimits
from app.services.risk.live import live_view
from app.services.risk.price_board import Instrument, PriceBoard, PriceCheckFn, instrument_key
from app.services.risk.quotes import QuoteReader
from app.services.risk.state import StateWriter, decode_state, encode_state
from app.services.risk.supertrend_exit import SupertrendWatch, supertrend_scope
from app.services.runner import Service, register_service

logger = logging.getLogger(__name__)

OWNER = "risk-monitor"
ACT_RETRY_SECONDS = 5.0
FAILED_EXIT_RETRY_SECONDS = 30.0  # a risk exit that failed is asked for again after this
FULL_RELOAD_SECONDS = 10.0
LIVE_VIEW_SECONDS = 0.5  # half the write interval: the view written is at most this old
# After the monitor asks for an exit, its once-a-second refresh (state writes, book reloads,
# subscriptions: 20-40 ms of CPU) waits this long, at most REFRESH_DEFER_MAX_SECONDS past due: in
# this process the leader's engine is sending the exit's orders then, and shares the CPU.
EXIT_QUIET_SECONDS = 0.3
REFRESH_DEFER_MAX_SECONDS = 1.0
# A pass evaluates the runs whose prices moved most first. It gives way to a tick that arrives
# during it with a move of at least PREEMPT_MOVE (relative) and PREEMPT_FACTOR times the move of
# the next run in line: a 2 % jump of an index moves its options by tens of percent, the feed's
# ordinary ticks by a few tenths of one.
PREEMPT_MOVE = 0.005
PREEMPT_FACTOR = 2.0

class RiskMonitor(Service):
    """See the module docstring."""

    name = "risk_monitor"
    interval = 0.0

    def __init__(self, app: Flask | None = None) -> None:
        self.app = app or current_app._get_current_object()  # type: ignore[attr-defined]
        cfg = self.app.config
        self.refresh_every = float(cfg.get("RISK_REFRESH_SECONDS", 1.0))
        self.failed_exit_retry = float(cfg.get("RISK_FAILED_EXIT_RETRY_SECONDS", FAILED_EXIT_RETRY_SECONDS))
        self._live: dict[int, dict[str, Any]] = {}  # run → what the run page shows, written once a second
        self._live_built: dict[int, tuple[float, bool]] = {}  # run → (when its view was built, held)
        self._watches: dict[int, SupertrendWatch] = {}  # runs with a Supertrend exit
        self._supertrend_fired: set[int] = set()  # saved in risk_state: a new leader does not fire again
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="risk-history")
        self._history_jobs: dict[int, Future[Any]] = {}
        self._watch_problems: dict[int, str] = {}  # the last history problem written as an event
        self._sources: dict[int, TradingAccount] = {}  # user → market-data account (history, feed)
        self._retry: dict[tuple[int, Any], float] = {}  # (run, breach) whose exit must be asked again, when
        self._failed_seen: set[int] = set()  # risk exit requests that failed and were handled
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._dirty: dict[Instrument, float] = {}  # ticked since the last pass → its biggest move
        self._dirty_peak = 0.0  # the biggest move in _dirty
        self._pending: dict[int, float] = {}  # runs a pass gave way before → their moves
        self.quotes = QuoteReader(float(cfg.get("RISK_QUOTE_REFRESH_SECONDS", 5.0)), self._quoted)
        self.prices = PriceBoard(self.app, timedelta(seconds=float(cfg.get("RISK_PRICE_MAX_AGE_SECONDS", 15.0))),
                                 float(cfg.get("RISK_FIRST_PRICE_GRACE_SECONDS", 10.0)), self.quotes)
        self._books: dict[int, RunBook] = {}
        self._evaluated_at: dict[int, float] = {}  # run → when it was last evaluated (monotonic)
        self._by_instrument: dict[Instrument, set[int]] = {}
        self._states: dict[int, RunRiskState] = {}
        self._writer = StateWriter()
        self._spans: dict[int, UnreliableSpan] = {}
        self._span_events: dict[int, int] = {}
        self._subscribed: dict[str, set[Instrument]] = {}
        self._signatures: dict[int, tuple[Any, ...]] = {}  # run → run_signatures() when its book was loaded
        self._day: Any = None
        self._next_full_reload = 0.0
        self._next_refresh = 0.0
        self._quiet_until = 0.0  # monotonic: no refresh before this (an exit was just asked for)
        self.daily = DailyLimits()
        self.evaluations = 0

    # -- the Service hooks --
    def on_start(self) -> None:
        self._signatures = {}
        self._next_refresh = 0.0

    def on_stop(self) -> None:
        manager = self.app.extensions.get("feed_manager")
        if manager is not None:
            manager.remove_listener(self.on_tick)
            if not manager.closed:
                manager.release_owner(OWNER)
        for run_id in list(self._states):
            self._save_state(run_id, force=True)
        self._subscribed.clear()
        self._loader.shutdown(wait=False, cancel_futures=True)
        self.quotes.close()
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="risk-history")
        self._history_jobs.clear()

    def run_once(self) -> str | None:
        self._wake.wait(timeout=max(0.0, self._refresh_due() - time.monotonic()))
        self._wake.clear()
        # The runs that ticks touched first: a breach never waits behind the refresh below.
        self._evaluate_touched()
        if time.monotonic() >= self._refresh_due():
            self._next_refresh = time.monotonic() + self.refresh_every
            try:
                self.refresh()
            except Exception:  # evaluate what is known rather than nothing
                db.session.rollback()
                logger.exception("risk monitor refresh failed")
            self._evaluate_touched()
            # Every run at least once per refresh period, so that prices going stale without ticks
            # are seen; a run that a tick had evaluated within the period needs no second look.
            horizon = time.monotonic() - self.refresh_every
            for run in self._books:
                if self._evaluated_at.get(run, 0.0) <= horizon:
                    self._pending.setdefault(run, 0.0)
            self._evaluate_touched()
        return f"{len(self._books)} runs watched"

    def _refresh_due(self) -> float:
        """When the next refresh runs: every refresh_every seconds, later while an exit just asked
        for is being sent (EXIT_QUIET_SECONDS), never more than REFRESH_DEFER_MAX_SECONDS late."""
        return min(max(self._next_refresh, self._quiet_until), self._next_refresh + REFRESH_DEFER_MAX_SECONDS)

    def _evaluate_touched(self) -> None:
        """Evaluate the runs that ticks touched, those whose prices moved most first (a breach comes
        with a move). A pass that gave way to a bigger move (PREEMPT_MOVE) leaves the runs it had not
        reached in `_pending`; the next pass takes them with the new ticks' runs, by their moves."""
        while True:
            with self._lock:
                touched, self._dirty, self._dirty_peak = self._dirty, {}, 0.0
            pending = self._pending
            for instrument, move in touched.items():
                for run in self._by_instrument.get(instrument, ()):
                    if move > pending.get(run, -1.0):
                        pending[run] = move
            if not pending:
                return
            self._pending = {}
            self._pending = self.evaluate(pending, utcnow())
            if not self._pending:
                return

    # -- ticks (the feed's thread: quick) --
    def on_tick(self, tick: Tick, host: str = "") -> None:
        key = instrument_key(tick.instrument.symbol, tick.instrument.exchange)
        if key not in self._by_instrument:
            return
        move = self.prices.note_tick(key, tick, host)
        with self._lock:
            if move > self._dirty.get(key, -1.0):
                self._dirty[key] = move
            if move > self._dirty_peak:
                self._dirty_peak = move
        self._wake.set()

    def _quoted(self, instruments: set[Instrument]) -> None:
        """Quotes of quiet instruments arrived (the quote worker's thread): their runs are evaluated."""
        with self._lock:
            for instrument in instruments:
                self._dirty.setdefault(instrument, 0.0)
        self._wake.set()

    # -- books and subscriptions --
    def refresh(self) -> None:
        """Re-read the books when the intents changed; keep the feed subscriptions to match. Between
        its steps (each committed) the runs that ticks touched meanwhile are evaluated: a breach
        does not wait for the whole refresh."""
        self._write_states()
        self._evaluate_touched()
        signatures = run_signatures()
        day = ist_today(utcnow())
        self._refire_failed_exits()
        full = day != self._day or time.monotonic() >= self._next_full_reload
        changed = set(signatures) if full else {run for run, sig in signatures.items()
                                                if self._signatures.get(run) != sig}
        if full or changed or set(self._books) - set(signatures):
            # Only the runs whose intents or statuses moved are read again (every FULL_RELOAD_SECONDS
            # and at a new day, all of them): a trial's fills used to reload all 100 books.
            if full:
                self._next_full_reload = time.monotonic() + FULL_RELOAD_SECONDS
            self._day = day
            books = {run: book for run, book in self._books.items() if run in signatures and run not in changed}
            books.update({b.run_id: b for b in load_books(changed)})
            for run_id in set(self._states) - set(books):  # no longer held: forget the run
                self._save_state(run_id, force=True)
                self._states.pop(run_id, None)
                self._spans.pop(run_id, None)
            for run_id in set(self._watches) - set(books):
                self._watches.pop(run_id, None)
                self._watch_problems.pop(run_id, None)
            for run_id, book in books.items():
                if book.supertrend is not None and run_id not in self._watches:
                    watch = self._watches[run_id] = SupertrendWatch(book, book.supertrend, book.entered_at or utcnow())
                    if book.state.get("supertrend_fired"):
                        watch.fired = True
                        self._supertrend_fired.add(run_id)
            for run_id, book in books.items():
                if run_id not in self._states:
                    restored = decode_state(run_id, book.state)
                    if restored is not None:
                        self._states[run_id] = restored
            by_instrument: dict[Instrument, set[int]] = defaultdict(set)
            for book in books.values():
                for symbol, exchange in book.instruments():
                    by_instrument[instrument_key(symbol, exchange)].add(book.run_id)
            self._books, self._by_instrument = books, dict(by_instrument)
            self.prices.keep_only(self._by_instrument)
            # A reloaded run is evaluated with its new book right after this refresh (the sweep).
            self._evaluated_at = {run: at for run, at in self._evaluated_at.items()
                                  if run in books and run not in changed}
            self._signatures = signatures
            self.daily.reload(books, day)
        self.daily.read_blocks(self._books, day, timedelta(seconds=self.failed_exit_retry))
        db.session.commit()
        self._evaluate_touched()
        self._subscribe()
        self._evaluate_touched()
        self._load_histories()
        self._ask_quotes()

    def _refire_failed_exits(self) -> None:
        """A risk exit request that failed (rejected rounds, an unreadable position book) leaves the
        breach standing: after RISK_FAILED_EXIT_RETRY_SECONDS (30) its run's breaches fire again."""
        if not self._books:
            return
        horizon = utcnow() - timedelta(seconds=self.failed_exit_retry)
        rows = db.session.execute(select(ExitRequest.id, ExitRequest.run_id).where(
            ExitRequest.run_id.in_(list(self._books)), ExitRequest.purpose == Purpose.RISK,
            ExitRequest.status == "failed", ExitRequest.done_at <= horizon)).all()
        for request_id, run_id in rows:
            if request_id in self._failed_seen:
                continue
            self._failed_seen.add(request_id)
            state = self._states.get(run_id)
            if state is not None:
                logger.warning("run %s: risk exit %s failed; its breaches will be acted on again", run_id, request_id)
                self._states[run_id] = replace(state, exits=BreachLatch())
                self._supertrend_fired.discard(run_id)
                if run_id in self._watches:
                    self._watches[run_id].fired = False

    def _subscribe(self) -> None:
        from app.services.encryption import get_encryptor

        manager = feed_manager(self.app)
        manager.add_listener(self.on_tick)
        wanted: dict[str, set[Instrument]] = defaultdict(set)
        sources: dict[str, TradingAccount] = {}
        users = {b.user_id for b in self._books.values()}
        by_user: dict[int, list[TradingAccount]] = defaultdict(list)
        if users:
            for account in db.session.scalars(select(TradingAccount).where(
                    TradingAccount.user_id.in_(users), TradingAccount.deleted_at.is_(None))):
                by_user[account.user_id].append(account)
        self._sources = {}
        allowed: dict[int, bool] = {}  # per market-data account, not per run (the allow-list is a DB read)
        for book in self._books.values():
            source = choose_source(by_user.get(book.user_id, []))
            if source is not None and not allowed.setdefault(source.id, account_urls_allowed(source)):
                logger.warning("run %s: market-data account %s is not on the allow-list", book.run_id, source.id)
                source = None
            if source is not None:
                self._sources[book.user_id] = source
            if source is None or not source.websocket_url:
                continue
            sources.setdefault(source.host_url, source)
            wanted[source.host_url] |= {instrument_key(s, e) for s, e in book.instruments()}
        for host, instruments in wanted.items():
            # What the manager really holds for us: a host dropped elsewhere (the market feed closes its
            # connections at market close) loses our subscriptions too, and we take them again.
            have = {i for i in self._subscribed.get(host, set())
                    if OWNER in manager.owners(host, {"symbol": i[0], "exchange": i[1]})}
            new = instruments - have
            try:
                if new:
                    self.prices.subscribed(new)
                    account = sources[host]
                    manager.subscribe(host, account.websocket_url or "",
                                      get_encryptor().decrypt(account.api_key_encrypted),
                                      [{"symbol": s, "exchange": e} for s, e in sorted(new)], OWNER)
                gone = have - instruments
                if gone:
                    manager.unsubscribe(host, [{"symbol": s, "exchange": e} for s, e in sorted(gone)], OWNER)
            except Exception:  # one host's trouble must not leave the others unwatched
                logger.exception("risk feed for %s not subscribed", host)
                continue
            self._subscribed[host] = set(instruments)
        for host in [h for h in self._subscribed if h not in wanted]:
            manager.unsubscribe(host, [{"symbol": s, "exchange": e} for s, e in self._subscribed.pop(host)], OWNER)
        db.session.commit()

    def _ask_quotes(self) -> None:
        """A held instrument whose price was not confirmed for RISK_QUOTE_REFRESH_SECONDS is quiet,
        not gone, while its market trades: read its quote (one /multiquotes per market-data account,
        only while that account's feed delivers fresh ticks and the leg's exchange is in session)."""
        self.quotes.keep_only(self._by_instrument)
        now = utcnow()
        if self.quotes.every <= 0:
            return
        quiet: dict[int, set[Instrument]] = defaultdict(set)
        check = self.prices.checker(now)
        for book in self._books.values():
            source = self._sources.get(book.user_id)
            if source is None or not self.prices.host_live(source.host_url, now):
                continue
            for symbol, exchange in book.instruments():
                age = check(symbol, exchange, now).age
                if (age is None or age.total_seconds() >= self.quotes.every) and self.prices.in_session(exchange, now):
                    quiet[source.id].add(instrument_key(symbol, exchange))
        sources = {s.id: s for s in self._sources.values()}
        for source_id, instruments in quiet.items():
            if not self.quotes.due(source_id, instruments):
                continue  # asked for a moment ago, or a read is in flight: no client needed
            source = sources[source_id]
            try:
                self.quotes.ask(source_id, source.host_url, client_for(source), instruments)
            except Exception as exc:  # one account's trouble must not keep the others' quotes
                logger.warning("quotes of quiet legs not asked from account %s: %s", source_id, exc)

    def _load_histories(self) -> None:
        """The 1-minute history of each new Supertrend watch (today and its warm-up sessions), read on
        the loader thread (a broker call per leg must never hold up the ticks); what arrived is taken
        here, on the monitor's thread."""
        now = utcnow()
        for run_id, future in list(self._history_jobs.items()):
            if not future.done():
                continue
            del self._history_jobs[run_id]
            watch, book = self._watches.get(run_id), self._books.get(run_id)
            if watch is None or book is None:
                continue
            try:
                problem = watch.apply_history(future.result(), now)
            except Exception as exc:  # the loader's own failure: say so, ask again later
                problem = f"history not read: {type(exc).__name__}"
            if problem is not None and self._watch_problems.get(run_id) != problem:
                self._watch_problems[run_id] = problem
                actions.supertrend_held(book, problem)
        calendar = None
        for run_id, watch in self._watches.items():
            if not watch.due() or run_id in self._history_jobs:
                continue
            calendar = calendar or get_calendar()
            trading_day = partial(calendar.is_trading_day, exchange="NSE")  # F&O sessions follow NSE's
            source = self._sources.get(self._books[run_id].user_id)
            try:
                client = client_for(source) if source is not None else None
            except BrokerError as exc:
                client = None
                logger.warning("run %s: no client for the Supertrend history: %s", run_id, exc)
            sessions = warmup_sessions(watch.settings.period, watch.settings.timeframe)
            first_day = sessions_back(ist_today(now), sessions, trading_day)
            self._history_jobs[run_id] = self._loader.submit(watch.fetch, client, now, first_day)
        db.session.commit()

    def _supertrend(self, book: RunBook, positions: list[AccountPosition], prices: dict[Instrument, Decimal],
                    now: datetime) -> None:
        watch = self._watches.get(book.run_id)
        if watch is None:
            return
        for (symbol, exchange), price in prices.items():
            watch.on_price(symbol, exchange, now, price)
        decision = watch.evaluate(now)
        if decision is None:
            return
        if decision.action is RiskAction.ALERT_ONLY:
            actions.alert(book, supertrend_scope(decision, positions))
        elif not self._act(book, supertrend_scope(decision, positions)):
            watch.fired = False  # not requested: the next candle close asks again
            return
        self._supertrend_fired.add(book.run_id)
        self._save_state(book.run_id, force=True)

    # -- evaluation --
    def evaluate(self, moves: dict[int, float], now: datetime) -> dict[int, float]:
        """Evaluate these runs at `now`, the biggest move first, then the daily limits of the
        accounts of those evaluated. Answers the runs not reached (with their moves) when a tick of
        a much bigger move arrived meanwhile (PREEMPT_MOVE); the caller evaluates them next."""
        account_pnl: dict[int, Decimal] = defaultdict(Decimal)
        unreliable: set[int] = set()
        check = self.prices.checker(now)  # a contract in several runs is judged once per pass
        order = sorted(moves, key=lambda run: (-moves[run], run))
        left: dict[int, float] = {}
        for position, run_id in enumerate(order):
            peak = self._dirty_peak  # written by the feed's thread; a float is read whole
            if peak >= PREEMPT_MOVE and peak > PREEMPT_FACTOR * moves[run_id]:
                left = {run: moves[run] for run in order[position:]}
                break
            book = self._books.get(run_id)
            if book is None:
                continue
            self._evaluated_at[run_id] = time.monotonic()
            try:
                pnls = self._evaluate_run(book, now, check)
            except Exception:  # one run's bad data must never stop the monitor
                db.session.rollback()
                logger.exception("run %s: risk evaluation failed", run_id)
                pnls = None
            if pnls is None:
                unreliable |= {a.account_id for a in book.accounts}
            else:
                for account_id, pnl in pnls.items():
                    account_pnl[account_id] += pnl
        self.daily.check(self._books, set(moves) - set(left), account_pnl, unreliable, now, check)
        return left

    def _evaluate_run(self, book: RunBook, now: datetime, check: PriceCheckFn) -> dict[int, Decimal] | None:
        self.evaluations += 1
        checks = {f"{exchange}:{symbol}": check(symbol, exchange, now)
                  for symbol, exchange in sorted(book.instruments())}
        unpriced = [a.account_name for a in book.accounts if a.unpriced]
        if unpriced:  # a fill without a known price: no P&L can be trusted
            checks[f"fill price ({', '.join(unpriced)})"] = check_price(None, None, now, self.prices.max_age)
        reliability = assess_prices(checks)
        if not reliability.reliable and self.prices.awaiting_first_prices(reliability):
            return None  # just subscribed: the first ticks are on their way (the rules hold, silently)
        span, change = self._spans.get(book.run_id, UnreliableSpan()).observe(reliability, now)
        self._spans[book.run_id] = span
        if isinstance(change, SpanStarted):
            self._span_events[book.run_id] = actions.prices_unreliable(book, change.reason)
        elif isinstance(change, SpanEnded) and book.run_id in self._span_events:
            seconds = Decimal(str(round(change.duration.total_seconds(), 2)))
            actions.prices_reliable_again(self._span_events.pop(book.run_id), seconds, change.held_evaluations)
        priced = {(s, e): checks[f"{e}:{s}"] for s, e in book.instruments()}
        if not reliability.reliable:
            if self._live_due(book.run_id, held=True):
                self._live[book.run_id] = live_view(book, None, priced, now, reliability.reason)
            return None
        prices = {(s, e): c.price for s, e in book.instruments()
                  if (c := checks[f"{e}:{s}"]).price is not None}
        deciding = [a for a in book.accounts if a.deciding and a.entry_fills]
        positions = [AccountPosition(a.account_id, a.quantity_per_leg, a.positions(book.legs, prices))
                     for a in deciding]
        if book.settings is None or not positions:  # no rules to run: the P&L for the daily limits only
            return {p.account_id: sum((leg_pnl(leg).total for leg in p.legs), Decimal(0)) for p in positions}
        result = evaluate_run(book.settings, book.run_id, positions, self._states.get(book.run_id), reliability)
        self._states[book.run_id] = result.state
        # Act first: a breach counts as handled only once its exit request is committed; a refused
        # or failed request is asked again every ACT_RETRY_SECONDS while the breach stands.
        standing = set()
        acted = False
        for decision in result.exits:
            key = (book.run_id, decision.key)
            standing.add(key)
            due = self._retry.get(key)
            if decision.new or (due is not None and time.monotonic() >= due):
                acted = True
                if self._act(book, decision):
                    self._retry.pop(key, None)
                else:
                    self._retry[key] = time.monotonic() + ACT_RETRY_SECONDS
        for key in [k for k in self._retry if k[0] == book.run_id and k not in standing]:
            del self._retry[key]  # the condition cleared
        for decision in result.alerts_to_notify:
            self._guarded(book, "alert", lambda d=decision: actions.alert(book, d))
            acted = True  # notified once: a new leader must not notify it again
        if acted:  # the breach acted on (or alerted) must survive a change of leader now
            self._save_state(book.run_id, force=True)
        self._guarded(book, "Supertrend", lambda: self._supertrend(book, positions, prices, now))
        watch = self._watches.get(book.run_id)
        if self._live_due(book.run_id, held=False):
            self._live[book.run_id] = live_view(book, result, priced, now, chart=watch.chart() if watch else None)
        return dict(result.account_pnls)

    def _live_due(self, run_id: int, *, held: bool) -> bool:
        """The live view is written once a second: build it at most that often (or when the rules
        start or stop holding, which the page must show at once)."""
        last = self._live_built.get(run_id)
        if last is not None and last[1] == held and time.monotonic() - last[0] < LIVE_VIEW_SECONDS:
            return False
        self._live_built[run_id] = (time.monotonic(), held)
        return True

    def _act(self, book: RunBook, decision: ScopedDecision) -> bool:
        self._quiet_until = time.monotonic() + EXIT_QUIET_SECONDS
        try:
            return actions.act(book, decision)
        except Exception:  # e.g. the database refused the write: asked again while the breach stands
            db.session.rollback()
            logger.exception("run %s: the exit of %s was not requested", book.run_id, decision.decision.reason)
            return False

    def _guarded(self, book: RunBook, what: str, fn: Any) -> None:
        try:
            fn()
        except Exception:
            db.session.rollback()
            logger.exception("run %s: %s step failed", book.run_id, what)

    def _write_states(self) -> None:
        """Every run's state and live view that changed, in one transaction (once a second)."""
        runs = sorted(set(self._states) | set(self._live))
        self._writer.write_many([(run_id, data) for run_id in runs
                                 if self._writer.due(run_id, data := self._state_data(run_id), force=True)])

    def _save_state(self, run_id: int, *, force: bool = False) -> None:
        data = self._state_data(run_id)
        if self._writer.due(run_id, data, force=force):
            self._writer.write_one(run_id, data)

    def _state_data(self, run_id: int) -> dict[str, Any]:
        """The run's risk_state as it stands: the rules' memory, the Supertrend latch, the live view."""
        state = self._states.get(run_id)
        data: dict[str, Any] = encode_state(state) if state is not None else {"run_id": run_id}
        if run_id in self._supertrend_fired:
            data["supertrend_fired"] = True
        if run_id in self._live:
            data["live"] = self._live[run_id]
        return data


def register_risk_monitor(app: Flask) -> None:
    register_service(app, RiskMonitor)
