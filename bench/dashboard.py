"""Benchmark the unified dashboard with 50 paper accounts, each answering with 100 ms of latency.

Prints, in one run:
- the sequential baseline: one funds call per account, one after another (what a naive page does);
- a full parallel refresh of all 50 accounts (funds + positions + holdings each);
- the dashboard data endpoint (GET /api/dashboard over real HTTP): p50 / p95 / max;
- the same endpoint while one account's calls hang for 10 s (served from cache);
and the ratios against the baseline. Targets (issue 4): p95 <= 300 ms in both endpoint phases.

Usage: uv run python bench/dashboard.py [--requests 40]
Bounded: about a minute. Loopback only. Uses a temporary SQLite database.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.paperbroker import Admin, start_broker  # noqa: E402

ACCOUNTS = 50
LATENCY_MS = 100
PASSWORD = "Bench!Passw0rd-x"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=40, help="endpoint requests per phase")
    args = parser.parse_args()
    logging.disable(logging.INFO)

    broker = start_broker("--no-rate-limit", accounts=ACCOUNTS)
    sim = Admin(broker.url)
    workdir = tempfile.mkdtemp(prefix="algomirror-bench-")
    os.environ.update({"TEST_DATABASE_URL": f"sqlite:///{workdir}/bench.db", "LOG_TO_FILE": "false"})
    try:
        from flask_migrate import upgrade

        from app import create_app
        from app.broker.client import OpenAlgoClient
        from app.extensions import db
        from app.models.users import User
        from app.services.account_data import load_accounts, refresh_stale
        from app.services.accounts import AccountInput, create_account
        from app.services.users import hash_password

        app = create_app("testing", {"WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False,
                                     "DASHBOARD_WAIT_SECONDS": 0.25, "ACCOUNT_DATA_FRESH_SECONDS": 5.0})
        with app.app_context():
            upgrade()
            user = User(username="bench", email="bench@example.com", password_hash=hash_password(PASSWORD),
                        role="admin")
            db.session.add(user)
            db.session.commit()
            for i, key in enumerate(broker.keys):
                create_account(user, AccountInput(f"Paper {i + 1:02d}", broker.url, broker.ws_url, key))
            sim.post("/sim/faults", {"latency_ms": LATENCY_MS})  # global: every call of every account

            clients = [OpenAlgoClient(broker.url, key) for key in broker.keys]
            started = time.perf_counter()
            for client in clients:
                client.funds()
            sequential = time.perf_counter() - started
            for client in clients:
                client.close()

            accounts = load_accounts(user.id)
            started = time.perf_counter()
            refresh_stale(accounts, wait_seconds=60, force=True)
            parallel_cold = time.perf_counter() - started  # includes building 50 pooled HTTP clients
            started = time.perf_counter()
            refresh_stale(accounts, wait_seconds=60, force=True)
            parallel_full = time.perf_counter() - started
            user_id = user.id

        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        http = httpx.Client(base_url=base, timeout=30)
        http.post("/auth/login", data={"identifier": "bench", "password": PASSWORD})

        def endpoint_phase(n: int) -> list[float]:
            samples = []
            for _ in range(n):
                t0 = time.perf_counter()
                response = http.get("/api/dashboard")
                samples.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200 and len(response.json()["accounts"]) == ACCOUNTS
                time.sleep(0.15)  # a browser polls; caches age past the freshness window over the phase
            return samples

        normal = endpoint_phase(args.requests)
        sim.post("/sim/faults", {"apikey": broker.keys[0], "latency_ms": 10_000})  # one account hangs
        with app.app_context():
            hanging = load_accounts(user_id, ids=None)[0]
            hanging.last_checked_at = None  # force its refresh on the next request
            db.session.commit()
        hung = endpoint_phase(args.requests)
        server.shutdown()
    finally:
        sim.call("DELETE", "/sim/faults")
        broker.stop()

    def describe(samples: list[float]) -> str:
        return (f"p50 {statistics.median(samples):7.1f} ms   p95 {percentile(samples, 95):7.1f} ms   "
                f"max {max(samples):7.1f} ms")

    print(f"dashboard bench: {ACCOUNTS} paper accounts, {LATENCY_MS} ms injected latency per call")
    print(f"  sequential baseline (1 funds call per account) : {sequential * 1000:8.1f} ms")
    print(f"  parallel full refresh, cold (new HTTP pools)   : {parallel_cold * 1000:8.1f} ms")
    print(f"  parallel full refresh (3 calls per account)    : {parallel_full * 1000:8.1f} ms   "
          f"({sequential / parallel_full:5.1f}x faster than the baseline while doing 3x the calls)")
    print(f"  GET /api/dashboard                             : {describe(normal)}")
    print(f"  GET /api/dashboard, one account hanging 10 s   : {describe(hung)}")
    p95 = max(percentile(normal, 95), percentile(hung, 95))
    print(f"  baseline / endpoint p95 ratio                  : {sequential * 1000 / p95:8.1f}x")
    print(f"  target p95 <= 300 ms                           : {'met' if p95 <= 300 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
