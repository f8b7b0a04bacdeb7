"""A loopback HTTP proxy that counts the calls reaching the broker behind it.

Point an account's host URL at `proxy.url` and every REST call it makes is forwarded to the
real paper broker and counted by endpoint (the last path segment, e.g. "optionchain") and by
API key, which is how a test proves what the broker was actually asked.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


class CountingProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.calls: Counter[tuple[str, str]] = Counter()  # (endpoint, apikey) -> calls
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
                proxy._count(self.path, body)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                answer = proxy._http.request(method, proxy.upstream + self.path, content=body, headers=headers)
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _count(self, path: str, body: bytes) -> None:
        try:
            apikey = str(json.loads(body or b"{}").get("apikey", ""))
        except (ValueError, AttributeError):
            apikey = ""
        with self._lock:
            self.calls[(path.rstrip("/").rsplit("/", 1)[-1], apikey)] += 1

    def count(self, endpoint: str, apikey: str | None = None) -> int:
        with self._lock:
            return sum(n for (name, key), n in self.calls.items()
                       if name == endpoint and (apikey is None or key == apikey))

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._http.close()
