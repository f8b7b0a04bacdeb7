"""How fast does the log grow while AlgoMirror sits idle with 10 accounts? Target: < 200 KB per hour.

Prints the machine (CPU, cores, load average), starts a paper broker with 10 accounts, then in
each round runs a fresh app process (temporary SQLite database and log directory, LOG_LEVEL=INFO,
the file log of a deployment) with those 10 accounts added and the background services running:
connection monitor, account data refresher and market feed. Their intervals are compressed
(30 s and 15 s divided by --speedup) and the bytes written to logs/algomirror.log during the
measuring window are scaled back to one hour of normal intervals, using the number of cycles
each service really ran; the service that ran the fewest normal-interval seconds sets the scale,
so the figure is an upper bound. Start-up lines (app creation, account adds, lease, first feed
connection) fall in a warm-up before the window and are not counted.

Two scenarios: market open (a special session covers today, so the feed runs too) and market
closed (a holiday today). Each figure is the median of the rounds, with its spread.

Usage: uv run python bench/log_volume.py [--rounds 3] [--seconds 30] [--speedup 20] [--strict]
Bounded: about (seconds + 15) x rounds x 2 seconds. Loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import print_machine, summarize  # noqa: E402

ACCOUNTS = 10
TARGET_KB_PER_HOUR = 200.0
NORMAL_INTERVALS = {"connection_monitor": 30.0, "account_refresher": 15.0}
WARM_UP_SECONDS = 6.0
PASSWORD = "Bench!Passw0rd-x"


def _child(args: argparse.Namespace) -> int:
    """One round in a process of its own: set up the app, run the services, report what was logged."""
    import logging
    from datetime import UTC, datetime
    from datetime import time as clock

    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db
    from app.models.users import User
    from app.services import calendar as calendar_service
    from app.services.accounts import AccountInput, create_account
    from app.services.monitors import AccountDataRefresher, ConnectionMonitor
    from app.services.runner import ensure_runner
    from app.services.users import hash_password
    from app.timeutil import IST

    workdir = Path(args.workdir)
    cycles: Counter[str] = Counter()
    for cls in (ConnectionMonitor, AccountDataRefresher):
        original = cls.run_once

        def counted(self, _original=original, _name=cls.name):
            cycles[_name] += 1
            return _original(self)

        cls.run_once = counted  # type: ignore[method-assign]

    app = create_app("testing", {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / 'bench.db'}",
        "LOG_TO_FILE": True, "LOG_DIR": str(workdir), "LOG_LEVEL": "INFO",
        "CONNECTION_MONITOR_INTERVAL": NORMAL_INTERVALS["connection_monitor"] / args.speedup,
        "ACCOUNT_REFRESH_INTERVAL": NORMAL_INTERVALS["account_refresher"] / args.speedup,
        "PRICE_MAX_TICK_AGE_SECONDS": 0, "CALENDAR_CACHE_SECONDS": 1.0,
    })
    keys = args.keys.split(",")
    with app.app_context():
        upgrade()
        admin = User(username="bench", email="bench@example.com", password_hash=hash_password(PASSWORD),
                     role="admin")
        db.session.add(admin)
        db.session.commit()
        today = datetime.now(UTC).astimezone(IST).date()
        exchanges = calendar_service.known_exchanges()
        if args.scenario == "open":
            calendar_service.add_special_session(admin, today, exchanges, clock(0, 0), clock(23, 59),
                                                 "bench: market open all day")
        else:
            calendar_service.add_holidays(admin, today, exchanges, "bench: market closed")
        for i, key in enumerate(keys):
            create_account(admin, AccountInput(f"Paper {i + 1:02d}", args.broker_url, args.ws_url, key,
                                               i == 0))
        market_open = calendar_service.market_is_open("NSE")
    runner = ensure_runner(app)
    log_file = workdir / "algomirror.log"
    time.sleep(WARM_UP_SECONDS)  # the services' first cycles, lease and feed connection: not counted
    start_offset, start_cycles, started = log_file.stat().st_size, Counter(cycles), time.monotonic()
    time.sleep(args.seconds)  # the measuring window: the services run on their own meanwhile
    for handler in logging.getLogger().handlers:
        handler.flush()
    end_offset, end_cycles, elapsed = log_file.stat().st_size, Counter(cycles), time.monotonic() - started
    runner.stop(timeout=15)
    with log_file.open("rb") as fh:
        fh.seek(start_offset)
        window = fh.read(end_offset - start_offset).decode("utf-8", "replace")
    sources: Counter[str] = Counter()
    for line in window.splitlines():
        # "<date> <time> LEVEL [rid] logger: message"
        parts = line.split(" ", 5)
        if len(parts) > 4:
            sources[f"{parts[2]} {parts[4].rstrip(':')}"] += len(line) + 1
    ran = {name: end_cycles[name] - start_cycles[name] for name in NORMAL_INTERVALS}
    print(json.dumps({"bytes": end_offset - start_offset, "warm_up_bytes": start_offset, "elapsed": elapsed,
                      "cycles": ran,
                      "market_open": market_open, "sources": sources.most_common(8)}), flush=True)
    return 0


def _round(args: argparse.Namespace, scenario: str, broker, workroot: Path, number: int) -> dict:
    workdir = workroot / f"{scenario}{number}"
    workdir.mkdir()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--scenario", scenario,
           "--workdir", str(workdir), "--broker-url", broker.url, "--ws-url", broker.ws_url,
           "--keys", ",".join(broker.keys), "--seconds", str(args.seconds), "--speedup", str(args.speedup)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LOG_TO_FILE": "true"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=args.seconds + 300)
    result_lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not result_lines:
        raise SystemExit(f"round failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    result = json.loads(result_lines[-1])
    simulated = min(result["cycles"][name] * NORMAL_INTERVALS[name] for name in NORMAL_INTERVALS)
    if simulated <= 0:
        raise SystemExit(f"a service never ran in the window: {result['cycles']}")
    result["simulated_seconds"] = simulated
    result["kb_per_hour"] = result["bytes"] / 1024 * 3600 / simulated
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per scenario (>= 3 for a judged figure)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measuring window per round, real seconds")
    parser.add_argument("--speedup", type=float, default=20.0, help="service intervals divided by this")
    parser.add_argument("--scenario", choices=("open", "closed", "both"), default="both")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("--workdir", "--broker-url", "--ws-url", "--keys"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args)

    from tests.support.paperbroker import start_broker

    print_machine()
    print(f"Accounts: {ACCOUNTS}; intervals / {args.speedup:g} (monitor {30 / args.speedup:.2f} s, "
          f"refresher {15 / args.speedup:.2f} s); window {args.seconds:g} s per round; {args.rounds} rounds")
    broker = start_broker("--no-rate-limit", accounts=ACCOUNTS, deterministic=False)
    missed = False
    try:
        with tempfile.TemporaryDirectory(prefix="algomirror-logbench-") as tmp:
            scenarios = ("open", "closed") if args.scenario == "both" else (args.scenario,)
            for scenario in scenarios:
                results = []
                for number in range(args.rounds):
                    result = _round(args, scenario, broker, Path(tmp), number)
                    results.append(result)
                    print(f"  market {scenario} round {number + 1}: {result['bytes']} bytes in "
                          f"{result['elapsed']:.1f} s = {result['simulated_seconds']:.0f} s of normal intervals "
                          f"(cycles {result['cycles']}, calendar open={result['market_open']}, "
                          f"{result['warm_up_bytes']} bytes of start-up before the window) "
                          f"-> {result['kb_per_hour']:.1f} KB/hour", flush=True)
                figure = summarize([r["kb_per_hour"] for r in results], unit="KB/hour")
                verdict = "meets" if figure.median < TARGET_KB_PER_HOUR else "MISSES"
                missed |= figure.median >= TARGET_KB_PER_HOUR
                print(f"Market {scenario}, idle, {ACCOUNTS} accounts: {figure}; {verdict} the target "
                      f"(< {TARGET_KB_PER_HOUR:.0f} KB/hour)")
                top = results[-1]["sources"]
                if top:
                    print("  largest sources in the last round (level logger: bytes): "
                          + ", ".join(f"{name}: {size}" for name, size in top))
    finally:
        broker.stop()
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
