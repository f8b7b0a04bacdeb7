"""Start and drive a real paper-broker process on free loopback ports (shared by test packages)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx

ADMIN_TOKEN = "test-admin-token"
START = "2026-01-05T10:00:00+05:30"  # a Monday, 10:00 IST; NIFTY's weekly expiry is the next day


@dataclass
class BrokerProc:
    proc: subprocess.Popen[str]
    http_port: int
    ws_port: int
    keys: list[str]
    lines: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


def start_broker(*extra: str, accounts: int = 2, deterministic: bool = True, timeout: float = 120.0) -> BrokerProc:
    """Start ``python -m paperbroker`` on free ports and wait for its ready line."""
    args = [sys.executable, "-m", "paperbroker", "--port", "0", "--ws-port", "0", "--accounts", str(accounts),
            "--admin-token", ADMIN_TOKEN, *extra]
    if deterministic:
        args += ["--deterministic"]
        if "--start-time" not in extra:
            args += ["--start-time", START]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.strip())
            if line.startswith("paperbroker ready"):
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(timeout) or not lines or not lines[-1].startswith("paperbroker ready"):
        proc.kill()
        raise RuntimeError(f"paper broker did not start: {lines}")
    fields_ = dict(part.split("=", 1) for part in lines[-1].split() if "=" in part)
    keys = [ln.split("=", 1)[1] for ln in lines if ln.startswith("api_key=")]
    return BrokerProc(proc, int(fields_["http_port"]), int(fields_["ws_port"]), keys, lines)


class Admin:
    """A thin /sim/ client that raises on any non-200 answer."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, headers={"X-Admin-Token": ADMIN_TOKEN}, timeout=30)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        resp = self.http.request(method, path, json=body)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.call("POST", path, body or {})

    def set_spot(self, **prices: float) -> None:
        self.post("/sim/prices", {"prices": prices})

    def new_account(self, **body: Any) -> str:
        return str(self.post("/sim/accounts", body)["apikey"])
