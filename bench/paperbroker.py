"""Benchmark the paper broker: order and read throughput, and p99 added latency under 200 clients.

Starts ``python -m paperbroker`` on loopback with 50 accounts and no rate limits, then runs three timed
phases with an aiohttp client and prints the figures against the targets of issue 3:

- orders/s  >= 1000 (MARKET orders, 50 accounts, no injected latency)
- reads/s   >= 3000 (quotes, funds, positionbook, orderbook)
- p99 added latency < 5 ms on top of an injected latency, with 200 concurrent clients

Usage: uv run python bench/paperbroker.py [--seconds 5] [--latency-ms 200] [--strict]
The whole run is bounded to well under 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.paperbroker import ADMIN_TOKEN
from tests.support.paperbroker import start_broker as start_harness_broker

TOKEN = ADMIN_TOKEN
ACCOUNTS = 50


def start_broker() -> tuple[subprocess.Popen[str], int, list[str]]:
    """The shared harness (tests/support/paperbroker.py): 50 accounts, live clock, no rate limits."""
    bp = start_harness_broker("--no-rate-limit", accounts=ACCOUNTS, deterministic=False)
    return bp.proc, bp.http_port, bp.keys


async def timed_phase(session: aiohttp.ClientSession, url: str, bodies: list[tuple[str, bytes]],
                      workers: int, seconds: float, stagger: float = 0.0) -> tuple[int, int, list[float]]:
    """Closed-loop workers replay ``bodies`` for ``seconds``; returns (ok, errors, latencies).

    ``stagger`` spreads the workers' first requests over that many seconds, so 200 clients behave like
    independent users instead of one synchronized burst.
    """
    deadline = time.perf_counter() + seconds + stagger
    ok = errors = 0
    latencies: list[float] = []
    feed = itertools.cycle(bodies)
    headers = {"Content-Type": "application/json"}

    async def worker(n: int) -> None:
        nonlocal ok, errors
        await asyncio.sleep(stagger * n / workers)
        while time.perf_counter() < deadline:
            path, body = next(feed)
            t0 = time.perf_counter()
            async with session.post(url + path, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status == 200:
                    ok += 1
                else:
                    errors += 1
            latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(worker(n) for n in range(workers)))
    return ok, errors, latencies


def dump(**body: Any) -> bytes:
    return json.dumps(body).encode()


async def run(seconds: float, latency_ms: float, port: int, keys: list[str]) -> dict[str, float]:
    base = f"http://127.0.0.1:{port}"
    api = f"{base}/api/v1/"
    admin = {"X-Admin-Token": TOKEN}
    results: dict[str, float] = {}
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:
        orders = []
        for key in keys:
            for action in ("BUY", "SELL"):
                orders.append(("placeorder", dump(apikey=key, strategy="bench", symbol="SBIN", exchange="NSE",
                                                  action=action, quantity=1, pricetype="MARKET", product="MIS")))
        ok, err, _ = await timed_phase(session, api, orders, 64, seconds)
        results["orders_per_s"] = ok / seconds
        results["order_errors"] = err

        async with session.post(f"{base}/sim/reset", json={}, headers=admin) as resp:
            assert resp.status == 200
        async with session.post(api + "expiry", data=dump(apikey=keys[0], symbol="NIFTY", exchange="NFO",
                                                          instrumenttype="futures"),
                                headers={"Content-Type": "application/json"}) as resp:
            future = "NIFTY" + (await resp.json())["data"][0].replace("-", "") + "FUT"
        reads = []
        for key in keys:
            reads += [("quotes", dump(apikey=key, symbol="SBIN", exchange="NSE")),
                      ("quotes", dump(apikey=key, symbol=future, exchange="NFO")),
                      ("funds", dump(apikey=key)), ("positionbook", dump(apikey=key)), ("orderbook", dump(apikey=key))]
        ok, err, _ = await timed_phase(session, api, reads, 64, seconds)
        results["reads_per_s"] = ok / seconds
        results["read_errors"] = err

        async with session.post(f"{base}/sim/faults", json={"latency_ms": latency_ms}, headers=admin) as resp:
            assert resp.status == 200
        quotes = [("quotes", dump(apikey=key, symbol="SBIN", exchange="NSE")) for key in keys]
        spread = latency_ms / 1000.0
        await timed_phase(session, api, quotes, 200, 0.5, stagger=spread)  # warm up 200 connections
        ok, err, lat = await timed_phase(session, api, quotes, 200, seconds, stagger=spread)
        lat.sort()
        p99 = lat[int(len(lat) * 0.99) - 1] * 1000
        results["latency_injected_ms"] = latency_ms
        results["latency_p50_ms"] = statistics.median(lat) * 1000
        results["latency_p99_ms"] = p99
        results["latency_added_p99_ms"] = p99 - latency_ms
        results["latency_requests_per_s"] = ok / seconds
        results["latency_errors"] = err
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each phase (default 5)")
    parser.add_argument("--latency-ms", type=float, default=200.0, help="injected latency for the p99 phase")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    started = time.perf_counter()
    proc, port, keys = start_broker()
    gc.collect()
    gc.freeze()
    try:
        r = asyncio.run(run(min(args.seconds, 12.0), args.latency_ms, port, keys))
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    checks = [
        ("orders/s", r["orders_per_s"], ">=", 1000.0),
        ("reads/s", r["reads_per_s"], ">=", 3000.0),
        ("p99 added latency ms", r["latency_added_p99_ms"], "<", 5.0),
    ]
    sys.stdout.write(f"paperbroker bench: {ACCOUNTS} accounts, loopback, rate limits off\n")
    sys.stdout.write(f"  orders/s            {r['orders_per_s']:9.0f}   (errors {r['order_errors']:.0f})\n")
    sys.stdout.write(f"  reads/s             {r['reads_per_s']:9.0f}   (errors {r['read_errors']:.0f})\n")
    sys.stdout.write(f"  200 clients, {r['latency_injected_ms']:.0f} ms injected: p50 {r['latency_p50_ms']:.2f} ms, "
                     f"p99 {r['latency_p99_ms']:.2f} ms, added p99 {r['latency_added_p99_ms']:.2f} ms, "
                     f"{r['latency_requests_per_s']:.0f} req/s (errors {r['latency_errors']:.0f})\n")
    missed = 0
    for name, value, op, target in checks:
        good = value >= target if op == ">=" else value < target
        missed += not good
        sys.stdout.write(f"  {'PASS' if good else 'MISS'} {name} {value:.2f} {op} {target:g}\n")
    sys.stdout.write(f"  total time {time.perf_counter() - started:.1f} s\n")
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
