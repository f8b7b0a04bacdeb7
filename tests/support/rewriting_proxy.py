"""A loopback HTTP proxy that changes what the paper broker answers, on demand.

Two things real brokers do that the paper broker does not do everywhere:
- numbers written as strings (`"ltp": "26000.0"`) in every answer, not only in the books;
- no margin API at all (`/margin` answers 501 or 404).

Point an account's host URL at `proxy.url`: with `stringify` on, every number in every JSON
answer (at any depth) becomes its string form; `answer(endpoint, status, body)` replaces the
broker's answer for one endpoint (the last path segment) with a canned one; `rewrite(endpoint,
fn)` passes the broker's JSON answer for one endpoint through `fn` first.
"""

from __future__ import annotations

import json
import threading
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


class RewritingProxy:
    def __init__(self, upstream: str, *, stringify: bool = False) -> None:
        self.upstream = upstream.rstrip("/")
        self.stringify = stringify
        self._canned: dict[str, tuple[int, dict[str, Any]]] = {}
        self._rewrites: dict[str, Callable[[Any], Any]] = {}
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=30)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self._forward("POST")

            def do_GET(self) -> None:
                self._forward("GET")

            def _forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, content = proxy._answer(method, self.path, body, dict(self.headers.items()))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def answer(self, endpoint: str, status: int, body: dict[str, Any]) -> None:
        """Answer every call to `endpoint` with `status` and `body` instead of asking the broker."""
        with self._lock:
            self._canned[endpoint] = (status, body)

    def rewrite(self, endpoint: str, fn: Callable[[Any], Any]) -> None:
        """Pass every JSON answer of `endpoint` through `fn` (before any stringifying)."""
        with self._lock:
            self._rewrites[endpoint] = fn

    def _answer(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        endpoint = path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        with self._lock:
            canned = self._canned.get(endpoint)
            rewrite = self._rewrites.get(endpoint)
        if canned is not None:
            return canned[0], json.dumps(canned[1]).encode()
        forwarded = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")}
        answer = self._http.request(method, self.upstream + path, content=body, headers=forwarded)
        if not self.stringify and rewrite is None:
            return answer.status_code, answer.content
        try:
            payload = answer.json()
        except ValueError:
            return answer.status_code, answer.content
        if rewrite is not None:
            payload = rewrite(payload)
        if self.stringify:
            payload = stringify_numbers(payload)
        return answer.status_code, json.dumps(payload).encode()

    def __enter__(self) -> RewritingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._http.close()
