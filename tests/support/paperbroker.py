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

    def set_faults(self, apikey: str | None = None, **spec: Any) -> dict[str, Any]:
        """Set one fault spec (per account when ``apikey`` is given, else global)."""
        return self.post("/sim/faults", {**({"apikey": apikey} if apikey else {}), **spec})

    def partial_fills(self, apikey: str | None = None, spec: dict[str, Any] | bool | None = None) -> dict[str, Any]:
        """Set an account's partial-fill option (spec, False = never, None = broker default), or the
        broker default when ``apikey`` is None (a None spec then clears it)."""
        if apikey is not None:
            return self.post(f"/sim/accounts/{apikey}/options", {"partial_fills": spec})
        if spec is None or spec is False:
            return self.call("DELETE", "/sim/partial-fills")
        assert isinstance(spec, dict)
        return self.post("/sim/partial-fills", spec)

    def rate_limits(self, **body: Any) -> dict[str, Any]:
        """Change rate limits: ``enabled``, ``by`` ("ip" or "apikey"), per-group counts."""
        return self.post("/sim/ratelimits", body)
