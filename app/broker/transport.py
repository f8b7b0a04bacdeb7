"""The HTTP client under the openalgo SDK: keep-alive HTTP/1.1 on `http.client`.

The SDK (2.x) sends every call through one `httpx.Client`. On the order path that client is the
largest cost in this process: about 600 µs of CPU per call here, against 200–250 µs for the same
request on `http.client` (docs/benchmarks.md, execution, session 16), and the leader's threads
share one GIL, so every order of a 50-account run waits for the others' HTTP bookkeeping.
`LeanHttpClient` answers the three calls the SDK makes (`post`, `get`, `close`) with the three
attributes it reads (`status_code`, `text`, `json()`), and fails with httpx's own exception types,
so the SDK's error answers and `client.raise_for_error`'s classification are unchanged:

- connecting fails (refused, unreachable, TLS handshake) → `httpx.ConnectError`: nothing was
  sent (an order is "not placed"); a connect timeout → `httpx.ConnectTimeout`, which the SDK
  reports as a timeout (an order's outcome unknown), as with httpx;
- anything after the request started going out (a read timeout, a reset, a closed or garbled
  answer) → `httpx.ReadTimeout` / `httpx.ReadError` / `httpx.RemoteProtocolError`: it may have
  been received (an order's outcome is unknown: reconciliation decides). Nothing is ever retried.
- an informational answer (1xx, e.g. a proxy's 103 Early Hints) is not skipped as httpx skips it:
  the connection is closed and the call fails as a protocol error (outcome unknown), never
  leaving the final answer on a pooled connection for the next call to read as its own. A host
  behind such a proxy needs BROKER_HTTP_CLIENT=httpx.

Idle connections are kept per host (at most MAX_IDLE_PER_HOST, for KEEPALIVE_SECONDS, as the SDK
configures httpx) and checked before reuse: one the server has closed is dropped, not written to.
TLS verifies against the same CA bundle httpx uses (SSL_CERT_FILE / SSL_CERT_DIR, else certifi).
httpx also honours proxy settings in the environment; this client does not, so `wants_httpx`
keeps the SDK's own client wherever a proxy is configured for the host.
"""

from __future__ import annotations

import http.client
import json as jsonlib
import os
import select
import ssl
import threading
import time
import urllib.request
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

MAX_IDLE_PER_HOST = 20
KEEPALIVE_SECONDS = 120.0
USER_AGENT = "algomirror"

_ssl_lock = threading.Lock()
_ssl_context: ssl.SSLContext | None = None


def _tls() -> ssl.SSLContext:
    """One verifying TLS context per process, with the CA bundle httpx would use."""
    global _ssl_context
    with _ssl_lock:
        if _ssl_context is None:
            if os.environ.get("SSL_CERT_FILE"):
                _ssl_context = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
            elif os.environ.get("SSL_CERT_DIR"):
                _ssl_context = ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
            else:
                import certifi

                _ssl_context = ssl.create_default_context(cafile=certifi.where())
        return _ssl_context


def wants_httpx(url: str) -> bool:
    """Is a proxy configured in the environment for this URL? (Only httpx follows it.)"""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")


class LeanResponse:
    """What the SDK reads of an answer."""

    __slots__ = ("content", "status_code")

    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code = status_code
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


def _seconds(timeout: Any, default: httpx.Timeout) -> tuple[float | None, float | None]:
    """(connect, read) seconds from an httpx.Timeout, a number, or None (the client's own)."""
    if timeout is None:
        timeout = default
    if isinstance(timeout, httpx.Timeout):
        return timeout.connect, timeout.read
    return float(timeout), float(timeout)


def _stale(connection: http.client.HTTPConnection) -> bool:
    """Has the server closed this idle connection (or sent something unasked)? Readable = yes."""
    sock = connection.sock
    if sock is None:
        return True
    poller = select.poll()  # poll, not select: no limit on the descriptor's number
    poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


class LeanHttpClient:
    """A thread-safe stand-in for the SDK's `httpx.Client` (see the module docstring)."""

    def __init__(self, timeout: httpx.Timeout) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, str, int], list[tuple[float, http.client.HTTPConnection]]] = {}
        self._closed = False

    # -- what the SDK calls --
    def post(self, url: str, json: Any = None, headers: dict[str, str] | None = None,
             timeout: Any = None) -> LeanResponse:
        body = jsonlib.dumps(json).encode() if json is not None else b""
        sent = {"Content-Type": "application/json", **(headers or {})}
        return self._request("POST", url, body, sent, timeout)

    def get(self, url: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
            timeout: Any = None) -> LeanResponse:
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
        return self._request("GET", url, None, dict(headers or {}), timeout)

    @property
    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close the idle connections. A call still running (a retired client's grace period)
        finishes, and its connection is closed after it rather than kept."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for _, connection in connections:
                connection.close()

    # -- the work --
    def _request(self, method: str, url: str, body: bytes | None, headers: dict[str, str],
                 timeout: Any) -> LeanResponse:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise httpx.UnsupportedProtocol(f"not an http(s) URL (scheme {scheme!r})")  # the URL may hold a key
        port = parts.port or (443 if scheme == "https" else 80)
        key = (scheme, parts.hostname, port)
        connect_s, read_s = _seconds(timeout, self.timeout)
        connection = self._checkout(key) or self._connect(key, connect_s)
        connection.sock.settimeout(read_s)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request(method, target, body=body, headers={"User-Agent": USER_AGENT, **headers})
            answer = connection.getresponse()
            content = answer.read()
        except TimeoutError as exc:
            connection.close()
            raise httpx.ReadTimeout(f"no answer within {read_s} s: {exc}") from exc
        except http.client.HTTPException as exc:  # a status line or body that is not HTTP
            connection.close()
            raise httpx.RemoteProtocolError(f"{type(exc).__name__}: {exc}") from exc
        except OSError as exc:  # reset, broken pipe, closed before the answer
            connection.close()
            raise httpx.ReadError(f"{type(exc).__name__}: {exc}") from exc
        if answer.status < 200:  # the final answer may follow on this connection: never pool it
            connection.close()
            raise httpx.RemoteProtocolError(f"an informational answer (HTTP {answer.status}) instead of the final one")
        if answer.will_close:
            connection.close()
        else:
            self._checkin(key, connection)
        return LeanResponse(answer.status, content)

    def _checkout(self, key: tuple[str, str, int]) -> http.client.HTTPConnection | None:
        now = time.monotonic()
        with self._lock:
            idle = self._idle.get(key, [])
            while idle:
                since, connection = idle.pop()
                if now - since < KEEPALIVE_SECONDS and not _stale(connection):
                    return connection
                connection.close()
        return None

    def _checkin(self, key: tuple[str, str, int], connection: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if not self._closed and len(idle) < MAX_IDLE_PER_HOST:
                idle.append((time.monotonic(), connection))
                return
        connection.close()

    def _connect(self, key: tuple[str, str, int], connect_s: float | None) -> http.client.HTTPConnection:
        scheme, host, port = key
        connection: http.client.HTTPConnection
        if scheme == "https":
            connection = http.client.HTTPSConnection(host, port, timeout=connect_s, context=_tls())
        else:
            connection = http.client.HTTPConnection(host, port, timeout=connect_s)
        try:
            connection.connect()
        except TimeoutError as exc:
            connection.close()
            raise httpx.ConnectTimeout(f"could not connect to {host}:{port} within {connect_s} s") from exc
        except OSError as exc:  # refused, unreachable, unknown host, TLS handshake (ssl.SSLError)
            connection.close()
            raise httpx.ConnectError(f"could not connect to {host}:{port}: {exc}") from exc
        return connection
