"""WebSocket market-data (and order-update) client for one OpenAlgo host (OPENALGO_API.md §3).

One ``FeedClient`` owns one socket and one thread. The thread connects, authenticates, replays every
wanted subscription, reads frames, sends an application ping when the line is quiet, and on any
failure reconnects with exponential backoff. Callers change what is wanted from any thread; the
difference between "wanted" and "sent on this socket" is what goes on the wire, so a resubscription
after a reconnect and a change made during one can never disagree. With ``on_order`` the client also
subscribes to the account's order updates (``subscribe_orders``) on every session; ``orders_live_since``
says since when they flow on the current socket. The API key is never logged.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import websocket

from app.broker.feed_frames import Instrument, Mode, Tick, parse_market_data, parse_order_update, redact_url
from app.broker.feed_socket import connect
from app.broker.parsing import Order

__all__ = ["DEFAULT_BACKOFF", "AuthRefused", "FeedClient", "FeedState", "FeedStatus", "Instrument", "Mode", "Tick"]

logger = logging.getLogger(__name__)

DEFAULT_BACKOFF: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
SUBSCRIBE_CHUNK = 200  # symbols per subscribe frame


class FeedState(StrEnum):
    IDLE = "idle"  # not started
    CONNECTING = "connecting"
    AUTHENTICATING = "authenticating"
    CONNECTED = "connected"  # authenticated, subscriptions sent
    BACKOFF = "backoff"  # connection lost or refused; waiting to retry
    AUTH_FAILED = "auth_failed"  # the key was refused; waiting (with backoff) to retry
    CLOSED = "closed"


@dataclass(frozen=True)
class FeedStatus:
    url: str  # without credentials or query
    state: FeedState
    subscribed: int  # instruments wanted
    on_wire: int  # instruments subscribed on the current socket
    attempts: int  # connection attempts
    reconnects: int  # authenticated sessions after the first
    auth_failures: int
    messages: int
    last_message_at: datetime | None
    connected_since: datetime | None
    last_error: str | None

    @property
    def connected(self) -> bool:
        return self.state is FeedState.CONNECTED

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view for a health page."""
        return {"url": self.url, "state": str(self.state), "connected": self.connected,
                "subscribed": self.subscribed, "on_wire": self.on_wire, "attempts": self.attempts,
                "reconnects": self.reconnects, "auth_failures": self.auth_failures, "messages": self.messages,
                "last_message_at": self.last_message_at.isoformat() if self.last_message_at else None,
                "connected_since": self.connected_since.isoformat() if self.connected_since else None,
                "last_error": self.last_error}


class AuthRefused(Exception):
    """The server refused the API key."""


class _Kicked(Exception):
    """The session was ended on purpose (credentials switched)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class FeedClient:
    """A self-healing market-data connection to one OpenAlgo WebSocket server.

    ``on_tick`` is called on the feed's own thread for each parsed market-data frame; it must be quick
    and must not raise (exceptions are logged and swallowed). ``on_state`` is called on state changes.
    """

    def __init__(self, ws_url: str, api_key: str, on_tick: Callable[[Tick], None], *, name: str = "",
                 backoff: Sequence[float] = DEFAULT_BACKOFF, connect_timeout: float = 5.0,
                 auth_timeout: float = 10.0, ping_interval: float = 20.0, idle_timeout: float = 50.0,
                 stable_after: float = 30.0, poll_interval: float = 0.25,
                 on_state: Callable[[FeedState], None] | None = None,
                 on_order: Callable[[Order], None] | None = None) -> None:
        if not backoff or any(d < 0 for d in backoff):
            raise ValueError("backoff needs at least one non-negative delay")
        self._url, self._key = ws_url, api_key
        self.name = name or redact_url(ws_url)
        self._on_tick, self._on_state, self._on_order = on_tick, on_state, on_order
        self._orders_live_since: float | None = None  # monotonic: subscribe_orders confirmed on this socket
        self._backoff = tuple(backoff)
        self._connect_timeout, self._auth_timeout = connect_timeout, auth_timeout
        self._ping_interval, self._idle_timeout = ping_interval, idle_timeout
        self._stable_after, self._poll = stable_after, poll_interval
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._wake = threading.Event()  # cuts a backoff wait short (credentials switched, closing)
        self._wanted: dict[Instrument, int] = {}
        self._wire: dict[Instrument, int] = {}
        self._ws: websocket.WebSocket | None = None
        self._kick = False
        self._state = FeedState.IDLE
        self._attempts = self._sessions = self._auth_failures = self._messages = 0
        self._last_message_at: datetime | None = None
        self._connected_since: datetime | None = None
        self._last_error: str | None = None
        self._last_rx = 0.0  # monotonic time of the last frame on the current socket
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:  # never show the key
        return f"FeedClient({self.name!r}, state={self._state})"

    # --- public API -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the connection thread (idempotent)."""
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._run, name=f"feed-{self.name}", daemon=True)
            self._thread.start()

    def subscribe(self, instruments: Iterable[Instrument | Mapping[str, Any]], mode: int = Mode.LTP) -> None:
        """Want these instruments in ``mode`` (replacing any other mode); sent now when connected."""
        with self._lock:
            for item in instruments:
                self._wanted[Instrument.of(item)] = int(Mode(mode))
            self._sync()

    def unsubscribe(self, instruments: Iterable[Instrument | Mapping[str, Any]]) -> None:
        """Stop wanting these instruments; unsubscribed on the wire now when connected."""
        with self._lock:
            for item in instruments:
                self._wanted.pop(Instrument.of(item), None)
            self._sync()

    def wanted(self) -> dict[Instrument, int]:
        """A copy of the wanted instruments and their modes."""
        with self._lock:
            return dict(self._wanted)

    @property
    def orders_live_since(self) -> float | None:
        """When (time.monotonic) the server confirmed order updates on the current socket; None while
        they do not flow (not asked for, not yet confirmed, or the socket is down)."""
        with self._lock:
            return self._orders_live_since

    def set_credentials(self, ws_url: str, api_key: str) -> None:
        """Use another URL/key (failover): drop the current socket and reconnect now, backoff reset."""
        with self._lock:
            self._url, self._key = ws_url, api_key
            self._kick = True
            self._abort_socket()
        self._wake.set()

    def status(self) -> FeedStatus:
        """A consistent snapshot of the connection's health."""
        with self._lock:
            return FeedStatus(redact_url(self._url), self._state, len(self._wanted), len(self._wire),
                              self._attempts, max(self._sessions - 1, 0), self._auth_failures, self._messages,
                              self._last_message_at, self._connected_since, self._last_error)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread and close the socket; waits up to ``timeout`` seconds for the thread."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            self._abort_socket()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("feed %s: thread did not stop within %.1fs", self.name, timeout)
        self._set_state(FeedState.CLOSED)

    # --- connection thread ------------------------------------------------------------------------
    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self._wake.clear()
            with self._lock:
                if self._kick:  # a new source starts with a fresh backoff
                    failures = 0
                self._kick = False
                url, key = self._url, self._key
            started, sessions_before = time.monotonic(), self._sessions
            refused = False
            try:
                self._session(url, key)
            except _Kicked:
                logger.info("feed %s: switching source", self.name)
                continue
            except AuthRefused as exc:
                refused = True
                with self._lock:
                    self._auth_failures += 1
                    self._last_error = f"authentication refused: {exc}"
                # The first failure after a good session is the event; repeats while backing off are DEBUG.
                logger.log(logging.WARNING if failures == 0 else logging.DEBUG,
                           "feed %s: authentication refused: %s", self.name, exc)
            except (OSError, websocket.WebSocketException, TimeoutError, ValueError) as exc:
                with self._lock:
                    self._last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if not (self._stop.is_set() or self._kick):
                    logger.log(logging.WARNING if failures == 0 else logging.DEBUG,
                               "feed %s: connection lost: %s", self.name, self._last_error)
            except Exception as exc:  # a bug must not kill the thread and leave the feed silently dead
                with self._lock:
                    self._last_error = f"internal error: {type(exc).__name__}"
                logger.exception("feed %s: unexpected error", self.name)
            finally:
                self._drop_socket()
            if self._stop.is_set():
                break
            if self._kick:
                continue
            if self._sessions > sessions_before and time.monotonic() - started >= self._stable_after:
                failures = 0
            delay = self._backoff[min(failures, len(self._backoff) - 1)]
            failures += 1
            self._set_state(FeedState.AUTH_FAILED if refused else FeedState.BACKOFF)
            logger.debug("feed %s: reconnecting in %.1fs", self.name, delay)
            self._wake.wait(delay)
        self._set_state(FeedState.CLOSED)

    def _session(self, url: str, key: str) -> None:
        """One connection: connect, authenticate, subscribe, then read until it ends (always by raising)."""
        self._set_state(FeedState.CONNECTING)
        with self._lock:
            self._attempts += 1
        ws = connect(url, self._connect_timeout)
        with self._lock:
            self._ws, self._wire = ws, {}
            self._last_rx = time.monotonic()
            if self._stop.is_set() or self._kick:
                raise _Kicked if self._kick else OSError("closing")
        ws.settimeout(self._poll)
        self._set_state(FeedState.AUTHENTICATING)
        self._send(ws, {"action": "authenticate", "api_key": key})
        self._await_auth(ws)
        with self._lock:
            self._sessions += 1
            self._connected_since = _utcnow()
            self._last_error = None
            self._state = FeedState.CONNECTED
            self._sync()
        if self._on_order is not None:
            self._send(ws, {"action": "subscribe_orders"})
        self._notify_state(FeedState.CONNECTED)
        logger.info("feed %s: connected, %d instruments subscribed", self.name, len(self._wire))
        self._read_loop(ws)

    def _await_auth(self, ws: websocket.WebSocket) -> None:
        deadline = time.monotonic() + self._auth_timeout
        while time.monotonic() < deadline:
            frame = self._recv(ws)
            if frame is None:
                continue
            if frame.get("type") in ("auth", "authenticate") or frame.get("code") == "AUTHENTICATION_ERROR":
                if frame.get("status") == "success":
                    return
                raise AuthRefused(str(frame.get("message") or frame.get("code") or "refused"))
        raise TimeoutError("no authentication reply")

    def _read_loop(self, ws: websocket.WebSocket) -> None:
        last_ping = time.monotonic()
        while True:
            now = time.monotonic()
            with self._lock:
                quiet = now - self._last_rx
            if quiet > self._idle_timeout:
                raise TimeoutError(f"no message for {quiet:.0f}s")
            if now - last_ping >= self._ping_interval and quiet >= self._ping_interval:
                self._send(ws, {"action": "ping", "timestamp": int(time.time() * 1000)})
                last_ping = now
            frame = self._recv(ws)
            if frame is None:
                continue
            kind = frame.get("type")
            tick = parse_market_data(frame, _utcnow()) if kind == "market_data" else None
            if tick is not None:
                try:
                    self._on_tick(tick)
                except Exception:
                    logger.exception("feed %s: tick handler failed", self.name)
            elif kind == "order_update":
                self._order_update(frame)
            elif kind == "subscribe_orders":
                if frame.get("status") == "success":
                    with self._lock:
                        self._orders_live_since = time.monotonic()
                else:
                    logger.warning("feed %s: order updates refused: %s", self.name, frame.get("message"))
            elif frame.get("type") == "subscribe" and frame.get("status") != "success":
                bad = [f"{s.get('exchange')}:{s.get('symbol')}" for s in frame.get("subscriptions") or []
                       if isinstance(s, Mapping) and s.get("status") != "success"]
                logger.warning("feed %s: subscription refused for %s", self.name, ", ".join(bad) or "?")
            elif frame.get("status") == "error":
                logger.warning("feed %s: server error %s: %s", self.name, frame.get("code"), frame.get("message"))

    def _order_update(self, frame: dict[str, Any]) -> None:
        if self._on_order is None:
            return
        try:
            order = parse_order_update(frame)
        except (ValueError, ArithmeticError, TypeError):
            logger.warning("feed %s: ignored an unreadable order update", self.name)
            return
        if order is not None:
            try:
                self._on_order(order)
            except Exception:
                logger.exception("feed %s: order handler failed", self.name)

    def _recv(self, ws: websocket.WebSocket) -> dict[str, Any] | None:
        """The next JSON object, or None on a poll timeout or a non-JSON frame; raises when closed."""
        if self._stop.is_set():
            raise OSError("closing")
        if self._kick:
            raise _Kicked
        try:
            opcode, frame = ws.recv_data_frame(True)
        except websocket.WebSocketTimeoutException:
            return None
        now = _utcnow()
        with self._lock:
            self._last_rx = time.monotonic()
            self._last_message_at = now
            self._messages += 1
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            code = int.from_bytes(frame.data[:2], "big") if len(frame.data) >= 2 else None
            reason = frame.data[2:].decode("utf-8", "replace")
            raise websocket.WebSocketConnectionClosedException(f"closed by server ({code} {reason})".strip())
        if opcode != websocket.ABNF.OPCODE_TEXT:
            return None
        try:
            msg = json.loads(frame.data.decode("utf-8"))  # (strict: no lone surrogates either)
        except ValueError:
            logger.debug("feed %s: ignored a non-JSON frame", self.name)
            return None
        return msg if isinstance(msg, dict) else None

    # --- wire helpers (call with the lock held where noted) -----------------------------------------
    def _sync(self) -> None:
        """Send the difference between wanted and on-wire subscriptions. Lock held."""
        ws = self._ws
        if ws is None or self._state is not FeedState.CONNECTED:
            return
        adds: dict[int, list[Instrument]] = {}
        for inst, mode in self._wanted.items():
            if self._wire.get(inst) != mode:
                adds.setdefault(mode, []).append(inst)
        drops = [(inst, mode) for inst, mode in self._wire.items() if self._wanted.get(inst) != mode]
        try:
            for mode, insts in adds.items():
                for i in range(0, len(insts), SUBSCRIBE_CHUNK):
                    chunk = insts[i:i + SUBSCRIBE_CHUNK]
                    self._send(ws, {"action": "subscribe", "mode": mode, "symbols": [
                        {"symbol": x.symbol, "exchange": x.exchange} for x in chunk]})
                    self._wire.update(dict.fromkeys(chunk, mode))
            for i in range(0, len(drops), SUBSCRIBE_CHUNK):
                chunk_drops = drops[i:i + SUBSCRIBE_CHUNK]
                self._send(ws, {"action": "unsubscribe", "symbols": [
                    {"symbol": x.symbol, "exchange": x.exchange, "mode": m} for x, m in chunk_drops]})
                for inst, m in chunk_drops:
                    if self._wire.get(inst) == m:
                        del self._wire[inst]
        except (OSError, websocket.WebSocketException) as exc:
            # The reader thread sees the broken socket too and reconnects, which resends everything.
            logger.warning("feed %s: send failed: %s", self.name, exc)
            self._abort_socket()

    def _send(self, ws: websocket.WebSocket, message: dict[str, Any]) -> None:
        with self._lock:
            ws.send(json.dumps(message))

    def _abort_socket(self) -> None:
        """Wake a blocked reader by shutting the socket down. Lock held."""
        ws = self._ws
        if ws is not None:
            try:
                ws.abort()
            except (OSError, websocket.WebSocketException):
                logger.debug("feed %s: abort failed", self.name)

    def _drop_socket(self) -> None:
        with self._lock:
            ws, self._ws = self._ws, None
            self._wire = {}
            self._connected_since = None
            self._orders_live_since = None
        if ws is not None:
            try:
                ws.close(timeout=0.5)
            except (OSError, websocket.WebSocketException):
                logger.debug("feed %s: close failed", self.name)

    def _set_state(self, state: FeedState) -> None:
        with self._lock:
            if self._state is state or (self._state is FeedState.CLOSED and self._stop.is_set()):
                return
            self._state = state
        self._notify_state(state)

    def _notify_state(self, state: FeedState) -> None:
        if self._on_state is not None:
            try:
                self._on_state(state)
            except Exception:
                logger.exception("feed %s: state handler failed", self.name)
