"""Market-data feed: the last-price cache (fake clock) and the feed manager against a real paper broker."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from app.broker.feed import FeedState, Instrument, Mode, Tick
from app.broker.feed_frames import parse_market_data, parse_price
from app.services.market_data import FeedManager, LastPriceCache, Rejection
from tests import helpers
from tests.support.paperbroker import Admin, BrokerProc, start_broker

HOST = "paper-local"
NIFTY = Instrument("NSE_INDEX", "NIFTY")
SBIN = Instrument("NSE", "SBIN")
RELIANCE = Instrument("NSE", "RELIANCE")
TCS = Instrument("NSE", "TCS")
FAST = (0.1, 0.2, 0.4, 0.8)
FRESH = timedelta(minutes=2)  # the broker's clock is frozen at its start, so its ticks age with the test
T0 = datetime(2026, 1, 5, 4, 30, tzinfo=UTC)


def wait_until(pred: Callable[[], Any], timeout: float = helpers.WAIT_SECONDS, what: str = "condition") -> Any:
    return helpers.wait_until(pred, timeout=timeout, interval=0.02, message=f"waiting for {what}")


def attempts_within(seconds: float, backoff: tuple[float, ...]) -> int:
    """The most connection attempts a backoff schedule allows in a window of ``seconds`` after a
    failure (the last delay repeats), plus one attempt that may already be under way."""
    attempts, elapsed, delays = 1, 0.0, iter(backoff)
    delay = next(delays)
    while elapsed + delay <= seconds:
        elapsed += delay
        attempts += 1
        delay = next(delays, delay)
    return attempts


def wait_price(cache: LastPriceCache, inst: Instrument, price: str) -> Any:
    def seen() -> Any:
        reading = cache.get(inst.symbol, inst.exchange, FRESH)
        return reading if reading is not None and reading.ltp == Decimal(price) else None

    return wait_until(seen, what=f"{inst.symbol} at {price}")


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class TickLog:
    """Thread-safe record of every tick a manager delivered."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ticks: list[Tick] = []

    def __call__(self, tick: Tick) -> None:
        with self.lock:
            self.ticks.append(tick)

    def count(self, inst: Instrument) -> int:
        with self.lock:
            return sum(1 for t in self.ticks if t.instrument == inst)

    def last(self, inst: Instrument) -> Tick | None:
        with self.lock:
            return next((t for t in reversed(self.ticks) if t.instrument == inst), None)


# --- fixtures ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def feed_broker() -> Iterator[BrokerProc]:
    # Frozen at the real "now" so that its ticks pass the cache's age check.
    start = datetime.now(UTC).replace(microsecond=0).isoformat()
    bp = start_broker("--no-rate-limit", "--start-time", start, accounts=2)
    yield bp
    bp.stop()


@pytest.fixture(scope="module")
def admin(feed_broker: BrokerProc) -> Iterator[Admin]:
    client = Admin(feed_broker.url)
    client.set_spot(NIFTY=26000, SBIN=800, RELIANCE=1400, TCS=3200)
    yield client
    client.http.close()


@pytest.fixture
def make_manager() -> Iterator[Callable[..., FeedManager]]:
    made: list[FeedManager] = []

    def build(**options: Any) -> FeedManager:
        options.setdefault("backoff", FAST)
        manager = FeedManager(LastPriceCache(), **options)
        made.append(manager)
        return manager

    yield build
    for manager in made:
        manager.close()


def subscribe(manager: FeedManager, broker: BrokerProc, instruments: list[Instrument], owner: str,
              key: str | None = None, mode: int = Mode.LTP) -> None:
    manager.subscribe(HOST, broker.ws_url, key or broker.keys[0], instruments, owner, mode)


# --- frame parsing ----------------------------------------------------------------------------------

def test_parse_market_data_with_extra_keys_and_one_alias_fills_the_other() -> None:
    frame = {"type": "market_data", "symbol": "SBIN", "exchange": "NSE", "mode": 2, "broker": "x", "extra": 1,
             "data": {"ltp": 801.5, "ltt": 1767587400000, "average_price": 800.1, "last_trade_quantity": 5,
                      "depth": {"buy": []}, "unknown": "ok"}}
    tick = parse_market_data(frame, T0)
    assert tick is not None
    assert (tick.instrument, tick.mode, tick.ltp) == (SBIN, 2, Decimal("801.5"))
    assert tick.tick_time == datetime(2026, 1, 5, 4, 30, tzinfo=UTC)
    assert tick.data["avg_trade_price"] == 800.1 and tick.data["last_quantity"] == 5


@pytest.mark.parametrize(("ltt", "expected"), [
    (1767587400000, datetime(2026, 1, 5, 4, 30, tzinfo=UTC)),  # epoch ms, as the protocol says
    (1767587400, datetime(2026, 1, 5, 4, 30, tzinfo=UTC)),  # epoch seconds, as some adapters send
    ("garbage", None),
    (0, None),
])
def test_parse_market_data_reads_tick_time_in_ms_or_seconds(ltt: Any, expected: datetime | None) -> None:
    tick = parse_market_data({"type": "market_data", "symbol": "nifty", "exchange": "nse_index",
                              "data": {"ltp": "26000.05", "ltt": ltt}}, T0)
    assert tick is not None and tick.instrument == NIFTY and tick.ltp == Decimal("26000.05")
    assert tick.tick_time == expected


@pytest.mark.parametrize("frame", [{"type": "pong"}, {"type": "market_data", "data": {"ltp": 1}}])
def test_parse_market_data_ignores_other_frames_and_frames_without_instrument(frame: dict[str, Any]) -> None:
    assert parse_market_data(frame, T0) is None


# --- the cache (fake clock) -------------------------------------------------------------------------

@pytest.mark.parametrize(("ltp", "reason"), [
    (0, Rejection.NOT_POSITIVE), (0.0, Rejection.NOT_POSITIVE), ("0.00", Rejection.NOT_POSITIVE),
    (-5, Rejection.NOT_POSITIVE), ("abc", Rejection.NOT_A_NUMBER), (None, Rejection.NOT_A_NUMBER),
    (float("nan"), Rejection.NOT_A_NUMBER), ("Infinity", Rejection.NOT_A_NUMBER), (True, Rejection.NOT_A_NUMBER),
    ({"ltp": 1}, Rejection.NOT_A_NUMBER),
])
def test_cache_update_with_bad_ltp_is_rejected_counted_and_keeps_last_good_price(ltp: Any,
                                                                                  reason: Rejection) -> None:
    clock = FakeClock()
    cache = LastPriceCache(clock=clock)
    assert cache.update("NIFTY", "NSE_INDEX", "26000.5", clock.now, "h") is None

    assert cache.update("NIFTY", "NSE_INDEX", ltp, clock.now, "h") is reason

    assert cache.rejections()[reason] == 1
    reading = cache.get("NIFTY", "NSE_INDEX", timedelta(seconds=1))
    assert reading is not None and reading.ltp == Decimal("26000.5")


def test_cache_update_older_than_max_tick_age_is_rejected_as_stale() -> None:
    clock = FakeClock()
    cache = LastPriceCache(max_tick_age=timedelta(minutes=5), clock=clock)

    reason = cache.update("SBIN", "NSE", 800, clock.now - timedelta(minutes=5, seconds=1), "h")

    assert reason is Rejection.STALE
    assert cache.peek("SBIN", "NSE") is None and cache.rejections()["stale"] == 1


def test_cache_update_older_than_cached_tick_is_rejected_as_out_of_order() -> None:
    clock = FakeClock()
    cache = LastPriceCache(clock=clock)
    cache.update("SBIN", "NSE", 801, clock.now, "h")

    reason = cache.update("SBIN", "NSE", 799, clock.now - timedelta(seconds=1), "h")

    assert reason is Rejection.OUT_OF_ORDER
    assert cache.update("SBIN", "NSE", 802, clock.now, "h") is None  # same time stamp: accepted
    assert cache.get("SBIN", "NSE", timedelta(seconds=1)).ltp == Decimal("802")  # type: ignore[union-attr]


def test_cache_get_returns_age_and_none_once_older_than_max_age() -> None:
    clock = FakeClock()
    cache = LastPriceCache(clock=clock)
    cache.update("NIFTY", "NSE_INDEX", Decimal("26000.05"), clock.now, "h")
    clock.advance(seconds=10)

    fresh = cache.get("NIFTY", "NSE_INDEX", max_age=timedelta(seconds=30))
    stale = cache.get("NIFTY", "NSE_INDEX", max_age=timedelta(seconds=5))

    assert fresh is not None and fresh.age == timedelta(seconds=10) and fresh.source == "h"
    assert fresh.tick_time.tzinfo is not None and fresh.received_at.tzinfo is not None
    assert stale is None
    assert cache.get("BANKNIFTY", "NSE_INDEX", max_age=timedelta(hours=1)) is None


def test_cache_tick_stamped_in_the_future_counts_as_received_now() -> None:
    clock = FakeClock()
    cache = LastPriceCache(clock=clock)

    cache.update("SBIN", "NSE", 800, clock.now + timedelta(minutes=3), "h")

    reading = cache.get("SBIN", "NSE", timedelta(seconds=1))
    assert reading is not None and reading.tick_time == clock.now and reading.age == timedelta(0)


def test_parse_price_keeps_decimal_text_exact() -> None:
    assert parse_price(26012.35) == Decimal("26012.35")
    assert parse_price(" 801.10 ") == Decimal("801.10")


# --- the feed manager against the paper broker --------------------------------------------------------

def test_subscribe_nifty_receives_exact_ltp_set_through_sim(feed_broker: BrokerProc, admin: Admin,
                                                            make_manager: Callable[..., FeedManager]) -> None:
    admin.set_spot(NIFTY=26012.35)
    manager = make_manager()

    subscribe(manager, feed_broker, [NIFTY], "dashboard")
    first = wait_price(manager.cache, NIFTY, "26012.35")
    admin.set_spot(NIFTY=26100.05)
    moved = wait_price(manager.cache, NIFTY, "26100.05")

    assert first.source == HOST and moved.tick_time.tzinfo is not None
    status = manager.status()[HOST]
    assert status.connected and status.subscribed == 1 and status.reconnects == 0
    assert status.last_message_at is not None and "ws://127.0.0.1" in status.as_dict()["url"]


def test_quote_mode_delivers_quote_fields_with_both_aliases(feed_broker: BrokerProc, admin: Admin,
                                                            make_manager: Callable[..., FeedManager]) -> None:
    ticks = TickLog()
    manager = make_manager(on_tick=ticks)

    subscribe(manager, feed_broker, [SBIN], "chain", mode=Mode.QUOTE)
    admin.set_spot(SBIN=812.4)
    wait_price(manager.cache, SBIN, "812.4")

    tick = ticks.last(SBIN)
    assert tick is not None and tick.mode == Mode.QUOTE
    assert {"volume", "average_price", "avg_trade_price", "last_quantity", "last_trade_quantity"} <= set(tick.data)


def test_ref_counting_keeps_symbol_until_last_owner_releases_it(feed_broker: BrokerProc, admin: Admin,
                                                               make_manager: Callable[..., FeedManager]) -> None:
    ticks = TickLog()
    manager = make_manager(on_tick=ticks)
    subscribe(manager, feed_broker, [NIFTY], "alice")
    subscribe(manager, feed_broker, [NIFTY], "bob")
    subscribe(manager, feed_broker, [RELIANCE], "sentinel")
    admin.set_spot(NIFTY=26200)
    wait_price(manager.cache, NIFTY, "26200")

    manager.unsubscribe(HOST, [NIFTY], "alice")
    admin.set_spot(NIFTY=26250)
    wait_price(manager.cache, NIFTY, "26250")  # bob still holds it
    assert manager.owners(HOST, NIFTY) == {"bob": Mode.LTP}

    manager.unsubscribe(HOST, [NIFTY], "bob")
    # Frames on one socket are handled in order: once TCS's snapshot is back, the unsubscribe was applied.
    subscribe(manager, feed_broker, [TCS], "sentinel")
    wait_until(lambda: ticks.count(TCS), what="TCS snapshot")
    seen = ticks.count(NIFTY)
    admin.set_spot(NIFTY=26300, RELIANCE=1411.5)  # NIFTY's frame would be sent before RELIANCE's
    wait_price(manager.cache, RELIANCE, "1411.5")

    assert ticks.count(NIFTY) == seen
    assert manager.cache.peek("NIFTY", "NSE_INDEX") is None
    assert manager.status()[HOST].subscribed == 2


def test_stale_tick_from_feed_is_rejected(feed_broker: BrokerProc, admin: Admin,
                                          make_manager: Callable[..., FeedManager]) -> None:
    manager = make_manager()
    subscribe(manager, feed_broker, [SBIN], "risk")
    admin.set_spot(SBIN=805)
    wait_price(manager.cache, SBIN, "805")
    now = datetime.now(UTC)
    try:
        admin.post("/sim/clock", {"time": (now - timedelta(hours=1)).isoformat(), "frozen": True})
        admin.set_spot(SBIN=790)  # stamped an hour ago
        wait_until(lambda: manager.cache.rejections()["stale"] >= 1, what="stale rejection")
    finally:
        admin.post("/sim/clock", {"time": now.isoformat(), "frozen": True})

    assert manager.cache.get("SBIN", "NSE", FRESH).ltp == Decimal("805")  # type: ignore[union-attr]


def test_server_disconnect_reconnects_resubscribes_and_receives_next_move(
        feed_broker: BrokerProc, admin: Admin, make_manager: Callable[..., FeedManager]) -> None:
    manager = make_manager()
    subscribe(manager, feed_broker, [NIFTY], "dashboard")
    admin.set_spot(NIFTY=26000)
    wait_price(manager.cache, NIFTY, "26000")

    assert admin.post("/sim/ws/disconnect", {"apikey": feed_broker.keys[0]})["closed"] >= 1
    wait_until(lambda: manager.status()[HOST].reconnects >= 1 and manager.status()[HOST].connected,
               what="reconnect")
    admin.post("/sim/prices/move", {"symbol": "NIFTY", "points": 42.5})

    wait_price(manager.cache, NIFTY, "26042.5")
    assert manager.status()[HOST].last_error is None


def test_bad_api_key_reports_auth_failure_with_backoff_and_never_logs_key(
        feed_broker: BrokerProc, admin: Admin, make_manager: Callable[..., FeedManager],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bad_key = "bad-key-7f3a9c-must-not-be-logged"
    backoff = (0.3, 0.6, 1.2, 2.4)
    manager = make_manager(backoff=backoff)

    subscribe(manager, feed_broker, [NIFTY], "dashboard", key=bad_key)
    failed = wait_until(lambda: (s := manager.status()[HOST]).state is FeedState.AUTH_FAILED and s,
                        what="auth failure")
    window_start = time.monotonic()
    time.sleep(1.5)  # measuring the retry rate needs a window; its real length is measured below
    later = manager.status()[HOST]
    window = time.monotonic() - window_start

    assert "authentication refused" in (failed.last_error or "") and "Invalid API key" in (failed.last_error or "")
    assert not failed.connected
    # 1.5 s allows 3 (0.3 + 0.6 s, and one under way); a storm would be hundreds. A loaded machine
    # may stretch the window, and the bound follows the schedule over the window actually measured.
    assert later.attempts - failed.attempts <= attempts_within(window, backoff)
    assert later.auth_failures >= 1
    assert bad_key not in caplog.text


def test_switch_source_moves_feed_to_another_accounts_key(feed_broker: BrokerProc, admin: Admin,
                                                          make_manager: Callable[..., FeedManager],
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    manager = make_manager(backoff=(5.0,))  # a long wait: the switch must cut it short
    subscribe(manager, feed_broker, [SBIN], "dashboard", key="expired-key")
    wait_until(lambda: manager.status()[HOST].state is FeedState.AUTH_FAILED, what="auth failure")

    manager.switch_source(HOST, feed_broker.ws_url, feed_broker.keys[1])
    admin.set_spot(SBIN=821.05)

    wait_price(manager.cache, SBIN, "821.05")
    assert manager.status()[HOST].connected
    assert feed_broker.keys[1] not in caplog.text


def test_quiet_line_is_kept_alive_by_pings_without_reconnecting(feed_broker: BrokerProc,
                                                                make_manager: Callable[..., FeedManager]) -> None:
    manager = make_manager(ping_interval=0.2, idle_timeout=2.0)
    subscribe(manager, feed_broker, [TCS], "dashboard")
    wait_until(lambda: manager.status()[HOST].connected, what="connected")
    before = manager.status()[HOST].messages

    # No price moves: only pongs arrive. Without them the 2 s idle timeout would force a reconnect.
    wait_until(lambda: manager.status()[HOST].messages >= before + 8, what="pongs")

    status = manager.status()[HOST]
    assert status.connected and status.reconnects == 0 and status.attempts == 1


def test_unreachable_host_backs_off_with_the_error_in_status(make_manager: Callable[..., FeedManager]) -> None:
    manager = make_manager(backoff=(0.2, 0.4, 0.8))

    manager.subscribe("nowhere", "ws://127.0.0.1:9/", "k", [NIFTY], "dashboard")

    status = wait_until(lambda: (s := manager.status()["nowhere"]).last_error and s, what="error")
    assert not status.connected and "Connection" in (status.last_error or "")


def test_close_stops_every_feed_thread(feed_broker: BrokerProc, admin: Admin) -> None:
    before = set(threading.enumerate())
    manager = FeedManager(LastPriceCache(), backoff=(30.0,))
    manager.subscribe("host-a", feed_broker.ws_url, feed_broker.keys[0], [NIFTY], "a")
    manager.subscribe("host-b", feed_broker.ws_url, feed_broker.keys[1], [SBIN], "b")
    manager.subscribe("host-c", feed_broker.ws_url, "wrong-key", [TCS], "c")  # sits in a 30 s backoff
    wait_until(lambda: all(s.connected for k, s in manager.status().items() if k != "host-c"), what="connected")
    wait_until(lambda: manager.status()["host-c"].state is FeedState.AUTH_FAILED, what="auth failure")

    started = time.monotonic()
    manager.close()

    assert time.monotonic() - started < 20  # well inside host-c's 30 s backoff: close never waits it out
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leaked == []
    assert manager.status() == {}
    with pytest.raises(RuntimeError):
        manager.subscribe("host-a", feed_broker.ws_url, feed_broker.keys[0], [NIFTY], "a")


# --- frames that are not valid UTF-8 (the feed skips websocket-client's slow pure-Python check) ----
def _ws_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One final, unmasked (a server's) frame, with the 7-, 16- or 64-bit length RFC 6455 asks for."""
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 127]) + n.to_bytes(8, "big")
    return head + payload


def _one_shot_ws_server(frames: list[bytes]) -> tuple[str, threading.Thread]:
    """A loopback WebSocket server that accepts one client, sends `frames` (made by `_ws_frame`) in one
    write, so that they reach the client as one burst, and waits for the client to hang up."""
    import base64
    import hashlib
    import socket

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        with conn, server:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key:"))
            accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            conn.sendall(b"".join(frames))
            conn.settimeout(helpers.WAIT_SECONDS)
            try:
                conn.recv(1024)  # the client's close frame, or its hang-up
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return f"ws://127.0.0.1:{port}", thread


def test_a_frame_that_is_not_utf8_is_ignored_and_the_next_frame_is_read() -> None:
    from app.broker.feed import FeedClient
    from app.broker.feed_socket import connect

    url, server = _one_shot_ws_server([_ws_frame(b'{"type": "market_data", "ltp": "\xff\xfe"}'),
                                       _ws_frame(b'{"type": "market_data", "symbol": "SBIN"}')])
    client = FeedClient(url, "key", lambda tick: None)
    ws = connect(url, timeout=helpers.WAIT_SECONDS)
    try:
        assert client._recv(ws) is None  # not JSON text: skipped, not raised
        assert client._recv(ws) == {"type": "market_data", "symbol": "SBIN"}
    finally:
        ws.close()
    server.join(helpers.WAIT_SECONDS)


def test_a_burst_of_frames_is_read_with_a_few_socket_reads_and_every_frame_intact(monkeypatch) -> None:
    """The feed reads the socket in chunks (app/broker/feed_socket.py): frames of every length form
    (7-, 16- and 64-bit, one larger than a chunk), split anywhere across chunks, and a ping among them
    come out whole and in order, and 300 frames sent at once take a few socket reads, not three each."""
    import websocket

    from app.broker.feed import FeedClient
    from app.broker.feed_socket import READ_CHUNK, connect

    small = [f'{{"type": "market_data", "n": {i}}}'.encode() for i in range(300)]
    medium = b'{"type": "market_data", "pad": "' + b"m" * 300 + b'"}'
    large = b'{"type": "market_data", "pad": "' + b"L" * (READ_CHUNK + 1000) + b'"}'
    url, server = _one_shot_ws_server([_ws_frame(p) for p in small[:150]] + [_ws_frame(b"hi", opcode=0x9)]
                                      + [_ws_frame(medium), _ws_frame(large)] + [_ws_frame(p) for p in small[150:]])
    reads = []
    real_recv = websocket.WebSocket._recv
    monkeypatch.setattr(websocket.WebSocket, "_recv", lambda self, n: reads.append(n) or real_recv(self, n))
    client = FeedClient(url, "key", lambda tick: None)
    ws = connect(url, timeout=helpers.WAIT_SECONDS)
    try:
        got = []
        while len(got) < 302:
            frame = client._recv(ws)
            if frame is not None:  # (the ping is answered by the library and gives no frame)
                got.append(frame)
    finally:
        ws.close()
    server.join(helpers.WAIT_SECONDS)
    assert [f["n"] for f in got[:150]] == list(range(150)) and [f["n"] for f in got[152:]] == list(range(150, 300))
    assert got[150]["pad"] == "m" * 300 and got[151]["pad"] == "L" * (READ_CHUNK + 1000)
    # About 80 kB arrived: a plain websocket-client connection makes over 600 reads of it.
    assert len(reads) <= 40 and set(reads) == {READ_CHUNK}
