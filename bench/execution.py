"""Benchmark execution: one 4-leg iron condor on 50 paper accounts, each with 100 ms injected latency
and its own rate limit (the paper broker counts order routes per API key, 10/s, as each real account
is its own OpenAlgo server).

Prints the machine (CPU, cores, load average), then per round:
- the engine: the Execute POST (test client, in process) → every order acknowledged, and → every
  order filled, measured from the click to the last intent's acknowledged_at / filled_at; the CPU
  time of this process (web request + engine threads) per order sent;
- baseline A: accounts one after another (BUY legs, wait for their fills, SELL legs), straight
  through the broker adapter;
- baseline B, how the original product schedules it: batches of 5 accounts in threads with a 0.3 s
  pause per batch, BUY legs then SELL legs one order at a time;
- baseline C, the floor: the same four round trips (quote, BUY legs, their status, SELL legs) for
  every account at once straight through the adapter, recording nothing: what this machine's
  Python HTTP path and the paper broker allow before any bookkeeping (also with --engine-only);
then medians and spreads over the rounds, the ratios, and the targets (issue 9, p50 over the rounds):
click → all acknowledged ≤ 0.6 s, click → all filled ≤ 1.0 s.

The strategy uses fixed lots, so no funds call is on the path. The broker round trips between the
click and the last acknowledgement: the option chain (prices ATM; the expiry lists and contract
figures come from the per-host caches, warmed by a preview as a trader's page does), the BUY
legs, their order status reads (fills), the SELL legs.

Usage: uv run python bench/execution.py [--rounds 5] [--accounts 50] [--strict] [--engine-only]
                                        [--postgres postgresql://postgres@127.0.0.1/algomirror_bench]
Environment knobs for diagnosis: BENCH_TIMELINE=1 prints, per phase (BUY 0, SELL 1), when the
intents were created, claimed (sent_at), acknowledged and filled relative to the click;
BENCH_WORKERS (engine threads, default: the app's EXECUTION_MAX_WORKERS) and BENCH_POOL (database
pool size, default 15).
Bounded: about 15 s per round. Loopback only. Uses a temporary SQLite database.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import Summary, fresh_postgres, print_machine, summarize  # noqa: E402
from tests.support.paperbroker import Admin, start_broker  # noqa: E402

LATENCY_MS = 100
PASSWORD = "Bench!Passw0rd-x"
ACK_TARGET_S, FILL_TARGET_S = 0.6, 1.0
CONDOR = [("SELL", "CE", 2), ("BUY", "CE", 4), ("SELL", "PE", 2), ("BUY", "PE", 4)]


def _strategy_body(account_ids: list[int]) -> dict:
    legs = [{"underlying": "NIFTY", "instrument": "option", "expiry_choice": "current_week", "strike_method": "otm",
             "strike_offset": offset, "option_type": kind, "action": action, "lots": 1, "order_type": "MARKET"}
            for action, kind, offset in CONDOR]
    return {"name": "Bench condor", "description": "", "market_condition": "any", "risk_profile": "fixed_lots",
            "product": "MIS", "entry_time": "09:20", "exit_time": "15:00", "square_off_time": "15:15",
            "legs": legs, "accounts": [{"account_id": i, "lot_multiplier": "1"} for i in account_ids]}


def _wait_filled(client, order_id: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        if client.order_status(order_id).status == "complete":
            return
    raise RuntimeError(f"order {order_id} not filled")


def _account_sequence(client, orders: list[dict], one_at_a_time_fills: bool) -> tuple[float, float]:
    """BUY legs, their fills, then SELL legs (and their fills); returns (last ack, last fill) perf times."""
    last_ack = last_fill = 0.0
    for side in ("BUY", "SELL"):
        ids = []
        for order in (o for o in orders if o["action"] == side):
            ids.append(client.place_order(**order).order_ids[0])
            last_ack = time.perf_counter()
        for order_id in ids:
            _wait_filled(client, order_id, time.monotonic() + 30)
            last_fill = time.perf_counter()
    return last_ack, last_fill


def _ideal_account(pool, client, orders: list[dict]) -> tuple[float, float]:
    """The transport's floor for one account: each phase's orders at once, then their status reads at
    once until filled; no database, no bookkeeping. Returns (last ack, last fill) perf times."""
    last_ack = last_fill = 0.0
    for side in ("BUY", "SELL"):
        sent = [pool.submit(client.place_order, **o) for o in orders if o["action"] == side]
        pending = {f.result().order_ids[0] for f in sent}
        last_ack = time.perf_counter()
        while pending:
            reads = {i: pool.submit(client.order_status, i) for i in pending}
            pending = {i for i, f in reads.items() if f.result().status != "complete"}
        last_fill = time.perf_counter()
    return last_ack, last_fill


def _drop(clients: list) -> None:
    """Close a baseline's own clients and collect them now, outside every measured window: 50 HTTP
    clients (each with its TLS context) left to the collector cost the next engine round's Execute
    about 50 ms, a cost of this benchmark that the app (one cached client per account) never has."""
    import gc

    for c in clients:
        c.close()
    clients.clear()
    gc.collect()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="rounds (>= 3 for a judged figure; default 5)")
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--engine-only", action="store_true", help="skip the baselines (profiling)")
    parser.add_argument("--postgres", metavar="URL", default=None,
                        help="run on a fresh PostgreSQL database instead of SQLite, e.g. "
                             "postgresql://postgres@127.0.0.1/algomirror_bench (dropped and created)")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    print_machine()

    # Real clock, 24x7 market: the app's "now" and the broker's expiry lists agree.
    broker = start_broker("--rate-limit-by", "apikey", accounts=args.accounts, deterministic=False)
    sim = Admin(broker.url)
    workdir = tempfile.mkdtemp(prefix="algomirror-bench-")
    database_url = fresh_postgres(args.postgres) if args.postgres else f"sqlite:///{workdir}/bench.db"
    os.environ.update({"TEST_DATABASE_URL": database_url, "LOG_TO_FILE": "false"})
    print(f"database: {database_url.split('://')[0]}")
    stop = threading.Event()
    engine_thread: threading.Thread | None = None
    try:
        from flask_migrate import upgrade
        from sqlalchemy import func, select

        from app import create_app
        from app.broker.client import OpenAlgoClient
        from app.extensions import db
        from app.models import OrderIntent, ServiceLease, StrategyRun, TradingAccount
        from app.models.users import User
        from app.services.accounts import AccountInput, create_account
        from app.services.execution.engine import ExecutionEngine
        from app.services.lease import DEFAULT_LEASE_NAME
        from app.services.users import hash_password

        app = create_app("testing", {"WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False,
                                     "SQLALCHEMY_DATABASE_URI": os.environ["TEST_DATABASE_URL"],
                                     "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "pool_size": int(
                                         os.environ.get("BENCH_POOL", "15")), "max_overflow": 20},
                                     **({"EXECUTION_MAX_WORKERS": int(os.environ["BENCH_WORKERS"])}
                                        if os.environ.get("BENCH_WORKERS") else {})})
        with app.app_context():
            upgrade()
            user = User(username="bench", email="bench@example.com", password_hash=hash_password(PASSWORD),
                        role="trader")
            db.session.add(user)
            db.session.commit()
            ids = []
            for i, key in enumerate(broker.keys):
                account = create_account(user, AccountInput(f"Paper {i + 1:02d}", broker.url, broker.ws_url, key))
                ids.append(account.id)
            db.session.execute(TradingAccount.__table__.update().values(is_paper=True))
            # The engine runs in this process (below); the lease row says so to the web side.
            now = datetime.now(UTC)
            db.session.add(ServiceLease(name=DEFAULT_LEASE_NAME, holder="bench:1:x", acquired_at=now,
                                        renewed_at=now, expires_at=now.replace(year=now.year + 1)))
            db.session.commit()

        web = app.test_client()
        assert web.post("/auth/login", data={"identifier": "bench", "password": PASSWORD}).status_code == 302
        answer = web.post("/api/strategies", json=_strategy_body(ids))
        assert answer.status_code == 201, answer.get_json()
        strategy_id = answer.get_json()["id"]
        for key in broker.keys:  # room for every round's positions (each round opens another condor)
            sim.post(f"/sim/accounts/{key}/funds", {"funds": 1e10})
        sim.post("/sim/faults", {"latency_ms": LATENCY_MS})  # every call of every account
        assert web.get(f"/api/strategies/{strategy_id}/preview").get_json()["status"] == "ok"  # warms the caches

        engine = ExecutionEngine(app)
        if not os.environ.get("BENCH_NO_SETTLE"):
            from app.gc_tuning import settle_heap
            settle_heap()  # as the services process does once it is up (app/gc_tuning.py)

        def engine_loop() -> None:
            with app.app_context():
                engine.on_start()
                while not stop.is_set():
                    engine.run_once()
                engine.on_stop()

        engine_thread = threading.Thread(target=engine_loop, name="bench-engine", daemon=True)
        engine_thread.start()

        def engine_round() -> dict[str, float]:
            with app.app_context():
                before = db.session.scalar(select(func.count()).select_from(OrderIntent)) or 0
            cpu0 = time.process_time()
            clicked = time.perf_counter()
            profiler = None
            if os.environ.get("BENCH_PROFILE_POST"):
                import cProfile
                profiler = cProfile.Profile()
                profiler.enable()
            response = web.post(f"/strategy/{strategy_id}/execute",
                                data={"idempotency_key": uuid.uuid4().hex, "account_ids": [str(i) for i in ids]})
            if profiler is not None:
                import pstats
                profiler.disable()
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
            post_s = time.perf_counter() - clicked
            assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]
            run_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
            deadline = time.monotonic() + 60
            with app.app_context():
                while time.monotonic() < deadline:
                    db.session.expire_all()
                    states = db.session.scalars(select(OrderIntent.state).where(OrderIntent.run_id == run_id)).all()
                    if states and all(s == "filled" for s in states):
                        break
                    if any(s in ("rejected", "not_placed", "cancelled") for s in states):
                        raise RuntimeError(f"run {run_id}: an order failed: {sorted(set(states))}")
                    # The figures are the intents' own timestamps: polling more often would only
                    # take CPU from the engine it measures.
                    time.sleep(0.1)
                else:
                    raise RuntimeError(f"run {run_id} did not fill in 60 s")
                cpu = time.process_time() - cpu0
                run = db.session.get(StrategyRun, run_id)
                rows = db.session.scalars(select(OrderIntent).where(OrderIntent.run_id == run_id)).all()
                acked = max(r.acknowledged_at for r in rows)
                filled = max(r.filled_at for r in rows)
                orders = len(rows)
                if os.environ.get("BENCH_TIMELINE"):
                    from collections import Counter

                    from app.models.execution import OrderIntentEvent
                    details = db.session.scalars(select(OrderIntentEvent.detail).where(
                        OrderIntentEvent.intent_id.in_([r.id for r in rows]), OrderIntentEvent.event == "fill")).all()
                    sources = Counter(d.rpartition("(via ")[2].rstrip(")") or "?" for d in details)
                    print(f"    first status of the fills: {dict(sources)}")
                    for phase in (0, 1):
                        part = [r for r in rows if r.phase == phase]
                        for name in ("created_at", "sent_at", "acknowledged_at", "filled_at"):
                            ts = sorted((getattr(r, name) - run.clicked_at).total_seconds() for r in part)
                            print(f"    phase {phase} {name:16}: first {ts[0]:6.3f}  median {ts[len(ts) // 2]:6.3f}  "
                                  f"last {ts[-1]:6.3f} s")
                total = (db.session.scalar(select(func.count()).select_from(OrderIntent)) or 0) - before
                assert total == orders == 4 * len(ids), (total, orders)
                return {"post_s": post_s, "ack_s": (acked - run.clicked_at).total_seconds(),
                        "fill_s": (filled - run.clicked_at).total_seconds(), "cpu_ms_per_order": cpu * 1000 / orders,
                        "load": os.getloadavg()[0]}

        with app.app_context():
            legs = db.session.scalars(select(OrderIntent).where(OrderIntent.account_id == ids[0])
                                      .order_by(OrderIntent.id)).all()[:4]
            template = [{"symbol": r.symbol, "exchange": r.exchange, "action": r.action, "quantity": r.quantity,
                         "product": r.product} for r in legs] if legs else None

        def baseline_round(batched: bool) -> dict[str, float]:
            orders = template
            assert orders, "run the engine round first: it resolves the symbols"
            clients = [OpenAlgoClient(broker.url, key) for key in broker.keys]
            started = time.perf_counter()
            results: list[tuple[float, float]] = []
            if not batched:
                results = [_account_sequence(c, orders, True) for c in clients]
            else:
                with ThreadPoolExecutor(max_workers=5) as pool:
                    for start in range(0, len(clients), 5):
                        batch = clients[start:start + 5]
                        results += list(pool.map(lambda c: _account_sequence(c, orders, True), batch))
                        time.sleep(0.3)  # the original product's stagger per batch
            _drop(clients)
            return {"ack_s": max(a for a, _ in results) - started, "fill_s": max(f for _, f in results) - started}

        def floor_round() -> dict[str, float]:
            """Baseline C, the floor: the click's four round trips (the underlying's quote, the BUY
            legs, their status reads, the SELL legs) for every account at once, straight through the
            adapter, nothing recorded."""
            orders = template
            assert orders, "run the engine round first: it resolves the symbols"
            clients = [OpenAlgoClient(broker.url, key) for key in broker.keys]
            with ThreadPoolExecutor(max_workers=4 * len(clients)) as pool, \
                    ThreadPoolExecutor(max_workers=len(clients)) as accounts:
                cpu0, started = time.process_time(), time.perf_counter()
                clients[0].quote("NIFTY", "NSE_INDEX")
                results = list(accounts.map(lambda c: _ideal_account(pool, c, orders), clients))
                cpu = time.process_time() - cpu0
            orders_sent = len(orders) * len(clients)
            _drop(clients)
            return {"ack_s": max(a for a, _ in results) - started, "fill_s": max(f for _, f in results) - started,
                    "cpu_ms_per_order": cpu * 1000 / orders_sent}

        print(f"execution bench: {len(ids)} paper accounts × 4-leg iron condor (fixed lots), {LATENCY_MS} ms "
              f"injected latency per call, order routes limited to 10/s per API key, {args.rounds} rounds")
        results = []
        for n in range(1, args.rounds + 1):
            r = engine_round()
            if template is None:
                with app.app_context():
                    legs = db.session.scalars(select(OrderIntent).where(OrderIntent.account_id == ids[0])
                                              .order_by(OrderIntent.id)).all()[:4]
                    template = [{"symbol": x.symbol, "exchange": x.exchange, "action": x.action,
                                 "quantity": x.quantity, "product": x.product} for x in legs]
            time.sleep(1.1)  # let the per-key order windows empty
            floor = floor_round()
            if args.engine_only:
                seq = batch = {"ack_s": float("nan"), "fill_s": float("nan")}
            else:
                time.sleep(1.1)  # let the per-key order windows empty before the baselines
                seq = baseline_round(batched=False)
                time.sleep(1.1)
                batch = baseline_round(batched=True)
            r.update({"floor_ack_s": floor["ack_s"], "floor_fill_s": floor["fill_s"],
                      "floor_cpu_ms_per_order": floor["cpu_ms_per_order"],
                      "seq_ack_s": seq["ack_s"], "seq_fill_s": seq["fill_s"], "batch_ack_s": batch["ack_s"],
                      "batch_fill_s": batch["fill_s"]})
            results.append(r)
            print(f"  round {n}: engine POST {r['post_s'] * 1000:5.0f} ms, all acked {r['ack_s'] * 1000:5.0f} ms, "
                  f"all filled {r['fill_s'] * 1000:5.0f} ms, CPU {r['cpu_ms_per_order']:.2f} ms/order | "
                  f"floor: acked {r['floor_ack_s'] * 1000:5.0f} ms, filled {r['floor_fill_s'] * 1000:5.0f} ms, "
                  f"CPU {r['floor_cpu_ms_per_order']:.2f} ms/order | "
                  f"one after another: acked {r['seq_ack_s']:5.1f} s, filled {r['seq_fill_s']:5.1f} s | "
                  f"batches of 5: acked {r['batch_ack_s']:5.1f} s, filled {r['batch_fill_s']:5.1f} s | "
                  f"load {r['load']:.2f}", flush=True)
            time.sleep(1.1)
    finally:
        stop.set()
        if engine_thread is not None:
            engine_thread.join(30)  # its streams close before the broker goes away
        try:
            sim.call("DELETE", "/sim/faults")
        finally:
            broker.stop()

    def s(key: str, unit: str = "s", digits: int = 3) -> Summary:
        return summarize([r[key] for r in results], unit=unit, digits=digits)

    ack, fill = s("ack_s").median, s("fill_s").median
    print("median over the rounds (spread):")
    print(f"  engine: the Execute POST                        : {s('post_s')}")
    print(f"  engine: click → every order acknowledged        : {s('ack_s')}")
    print(f"  engine: click → every order filled              : {s('fill_s')}")
    print(f"  engine: CPU per order (whole process)           : {s('cpu_ms_per_order', 'ms', 2)}")
    print(f"  floor, no database, 4 round trips at once: acked: {s('floor_ack_s')}")
    print(f"  floor, no database, 4 round trips at once: fill : {s('floor_fill_s')}")
    print(f"  floor: CPU per order (whole process)            : {s('floor_cpu_ms_per_order', 'ms', 2)}")
    print(f"  engine / floor (filled)                         : {fill / s('floor_fill_s').median:8.1f}x")
    print(f"  baseline, accounts one after another: acked     : {s('seq_ack_s', 's', 2)}")
    print(f"  baseline, accounts one after another: filled    : {s('seq_fill_s', 's', 2)}")
    print(f"  baseline, batches of 5 + 0.3 s, legs one by one : {s('batch_fill_s', 's', 2)} (filled)")
    print(f"  ratio one-after-another / engine (filled)       : {s('seq_fill_s').median / fill:8.1f}x")
    print(f"  ratio batches of 5 / engine (filled)            : {s('batch_fill_s').median / fill:8.1f}x")
    print(f"  target click → acknowledged ≤ {ACK_TARGET_S} s (p50)      : "
          f"{'met' if ack <= ACK_TARGET_S else 'MISSED'} ({ack:.3f} s)")
    print(f"  target click → filled ≤ {FILL_TARGET_S} s (p50)            : "
          f"{'met' if fill <= FILL_TARGET_S else 'MISSED'} ({fill:.3f} s)")
    print(f"  load average at the end {os.getloadavg()[0]:.2f}")
    missed = ack > ACK_TARGET_S or fill > FILL_TARGET_S
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
