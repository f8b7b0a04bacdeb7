"""Loopback servers that record everything they receive: proof of what the app sent, and where.

`CaptureHTTP` answers every request with one configurable response (by default OpenAlgo's
``/ping`` "pong"), `RawTCP` accepts connections, records their first bytes, optionally
answers with non-HTTP bytes, and closes. Both run until `close()`.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PONG = json.dumps({"status": "success", "data": {"broker": "capture", "message": "pong"}}).encode()


@dataclass(frozen=True)
class Captured:
    method: str
    path: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class CaptureHTTP:
    """An HTTP server on 127.0.0.1 that records each request and answers `status` / `body`."""

    def __init__(self, status: int = 200, body: bytes = PONG, content_type: str = "application/json"):
        self.requests: list[Captured] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                owner.requests.append(Captured(self.command, self.path, self.rfile.read(length) if length else b""))
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class RawTCP:
    """A TCP server on 127.0.0.1 that is not HTTP: records each connection's first bytes,
    sends `reply` (if any) and closes."""

    def __init__(self, reply: bytes = b""):
        self.received: list[bytes] = []
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                sock.settimeout(2.0)
                if reply:
                    sock.sendall(reply)
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                owner.received.append(data)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, timeout: float = 30.0, interval: float = 0.05) -> bool:
    """Poll `condition` until it is true or `timeout` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return bool(condition())
        time.sleep(interval)
