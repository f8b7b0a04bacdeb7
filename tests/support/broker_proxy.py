"""A loopback HTTP proxy in front of the paper broker: counts calls and changes answers on demand.

Point an account's host URL at `proxy.url` and every REST call it makes is forwarded to the
broker behind it and counted by endpoint (the last path segment, e.g. "optionchain") and by
API key, which is how a test proves what the broker was actually asked.

It can also make the broker behave like real ones in ways the paper broker does not everywhere:
- `stringify=True`: every number in every JSON answer (at any depth) becomes its string form
  (`"ltp": "26000.0"`);
- `answer(endpoint, status, body)`: a canned answer instead of the broker's (e.g. `/margin`
  answering 501, "no margin API");
- `rewrite(endpoint, fn)`: the broker's JSON answer passed through `fn` first.

`gather(endpoint, n)` holds each call to `endpoint` until `n` of them are waiting together (or a
few seconds pass); `peak(endpoint)` is the most that were ever in flight at once: how a test proves
that calls overlap without timing them.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


def stringify_numbers(value: Any) -> Any:
    """Every int and float inside `value` as a string (booleans and None stay as they are)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return {k: stringify_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [stringify_numbers(v) for v in value]
    return value


def _endpoint(path: str) -> str:
    return path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


class BrokerProxy:
    def __init__(self, upstream: str, *, stringify: bool = False) -> None:
        self.upstream = upstream.rstrip("/")
        self.stringify = stringify
        self.calls: Counter[tuple[str, str]] = Counter()  # (endpoint, apikey) -> calls
        self.bodies: list[tuple[str, dict[str, Any]]] = []  # (endpoint, JSON body without the apikey)
        self._canned: dict[str, tuple[int, dict[str, Any]]] = {}
        self._rewrites: dict[str, Callable[[Any], Any]] = {}
        self._lock = threading.Lock()
        self._gathered = threading.Condition(self._lock)
        self._gathers: dict[str, tuple[int, float]] = {}  # endpoint -> (calls to hold for, most seconds)
        self._in_flight: Counter[str] = Counter()
        self._peaks: Counter[str] = Counter()
        self._http = httpx.Client(timeout=30)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self._forward("POST")

            def do_GET(self) -> None:
                self._forward("GET")

            def _forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy._count(self.path, body)
                proxy._enter(self.path)
                try:
                    status, content_type, content = proxy._answer(method, self.path, body,
                                                                  dict(self.headers.items()))
                finally:
                    proxy._leave(self.path)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # --- counting ---------------------------------------------------------------------------------

    def _count(self, path: str, body: bytes) -> None:
        try:
            payload = json.loads(body or b"{}")
            apikey = str(payload.get("apikey", ""))
        except (ValueError, AttributeError):
            payload, apikey = {}, ""
        with self._lock:
            self.calls[(_endpoint(path), apikey)] += 1
            self.bodies.append((_endpoint(path), {k: v for k, v in payload.items() if k != "apikey"}))

    def asked(self, endpoint: str) -> list[dict[str, Any]]:
        """The JSON bodies (without the API key) of every call to `endpoint`, in order."""
        with self._lock:
            return [body for name, body in self.bodies if name == endpoint]

    def count(self, endpoint: str, apikey: str | None = None) -> int:
        with self._lock:
            return sum(n for (name, key), n in self.calls.items()
                       if name == endpoint and (apikey is None or key == apikey))

    def peak(self, endpoint: str) -> int:
        """The most calls to `endpoint` that were in flight at the same time."""
        with self._lock:
            return self._peaks[endpoint]

    def gather(self, endpoint: str, calls: int, *, most_seconds: float = 5.0) -> None:
        """Hold each call to `endpoint` until `calls` of them are in flight together, or for at most
        `most_seconds` (calls made one after another each wait that long, then go on)."""
        with self._lock:
            self._gathers[endpoint] = (calls, most_seconds)

    def _enter(self, path: str) -> None:
        endpoint = _endpoint(path)
        with self._gathered:
            self._in_flight[endpoint] += 1
            self._peaks[endpoint] = max(self._peaks[endpoint], self._in_flight[endpoint])
            self._gathered.notify_all()
            held = self._gathers.get(endpoint)
            if held is not None:
                self._gathered.wait_for(lambda: self._peaks[endpoint] >= held[0], timeout=held[1])

    def _leave(self, path: str) -> None:
        with self._lock:
            self._in_flight[_endpoint(path)] -= 1

    # --- changing answers -------------------------------------------------------------------------

    def answer(self, endpoint: str, status: int, body: dict[str, Any]) -> None:
        """Answer every call to `endpoint` with `status` and `body` instead of asking the broker."""
        with self._lock:
            self._canned[endpoint] = (status, body)

    def rewrite(self, endpoint: str, fn: Callable[[Any], Any]) -> None:
        """Pass every JSON answer of `endpoint` through `fn` (before any stringifying)."""
        with self._lock:
            self._rewrites[endpoint] = fn

    def _answer(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        endpoint = _endpoint(path)
        with self._lock:
            canned = self._canned.get(endpoint)
            rewrite = self._rewrites.get(endpoint)
        if canned is not None:
            return canned[0], "application/json", json.dumps(canned[1]).encode()
        forwarded = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")}
        answer = self._http.request(method, self.upstream + path, content=body, headers=forwarded)
        content_type = answer.headers.get("Content-Type", "application/json")
        if not self.stringify and rewrite is None:
            return answer.status_code, content_type, answer.content
        try:
            payload = answer.json()
        except ValueError:
            return answer.status_code, content_type, answer.content
        if rewrite is not None:
            payload = rewrite(payload)
        if self.stringify:
            payload = stringify_numbers(payload)
        return answer.status_code, "application/json", json.dumps(payload).encode()

    def __enter__(self) -> BrokerProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._http.close()
