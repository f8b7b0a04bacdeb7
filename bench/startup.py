"""Benchmark start-up cost and memory: how long a new app process takes, and what a worker weighs.

Prints the machine first (bench/_common.py), whether the installed modules have bytecode, then
in several rounds (median and spread):

- process start: from spawning ``python`` to ``import app`` done, to ``create_app()`` done, and to
  the answer of the first request (GET /auth/login through Flask's test client; it renders a
  template and reads the database); once with the installed bytecode and once without any
  (``PYTHONPYCACHEPREFIX`` pointed at an empty folder and ``PYTHONDONTWRITEBYTECODE=1``: every
  module compiled from source, as in a process nothing has written bytecode for), alternating;
- a gunicorn gthread worker (``-c deploy/gunicorn.conf.py``, one worker, 4 threads) on a free
  loopback port against a temporary SQLite database: time until /healthz answers, then its RSS
  (VmRSS from /proc/<worker pid>/status) after signing in and opening the dashboard, accounts and
  audit pages of a user without accounts (idle worker: target <= 150 MB), and again after opening
  the dashboard of a user with one paper-broker account (the first broker client loads the
  openalgo SDK and pandas), and whether pandas is mapped into the worker at each point.

Usage: uv run python bench/startup.py [--rounds 3] [--no-gunicorn]
Bounded: one to two minutes on an idle machine. Loopback only; temporary files only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from importlib.util import cache_from_source
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import print_machine, rounds, summarize  # noqa: E402

TARGET_IDLE_RSS_MB = 150.0
PASSWORD = "Bench!Passw0rd-x"
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|<meta name="csrf-token" content="([^"]+)"')

PROBE = """
import json, time
t_child = time.time()
import app
t_import = time.time()
application = app.create_app()
t_create = time.time()
status = application.test_client().get("/auth/login").status_code
t_request = time.time()
print(json.dumps({"child": t_child, "import": t_import, "create": t_create, "request": t_request,
                  "status": status}))
"""


def bytecode_coverage(folder: Path) -> tuple[int, int]:
    """(modules with current bytecode, modules) under ``folder``."""
    have = total = 0
    for source in folder.rglob("*.py"):
        total += 1
        try:
            cached = Path(cache_from_source(str(source)))
            if cached.stat().st_mtime >= source.stat().st_mtime:
                have += 1
        except (OSError, ValueError, NotImplementedError):
            pass
    return have, total


def app_env(workdir: Path, db_url: str, keys: dict[str, str]) -> dict[str, str]:
    """Development settings (as `make run` uses), pointed at temporary files; secrets given, so
    nothing is written to instance/."""
    env = {**os.environ, "APP_ENV": "development", "DATABASE_URL": db_url, "LOG_TO_FILE": "false",
           "LOG_LEVEL": "WARNING", "BACKGROUND_SERVICES": "off", "LOG_DIR": str(workdir), **keys}
    env.pop("FLASK_ENV", None)
    return env


def prepare_database(db_url: str, keys: dict[str, str]) -> Any:
    """Migrate a fresh database and create two users: 'idle' (no accounts) and 'trader' (one paper
    account). Returns the paper broker process (stop it at the end)."""
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db
    from app.models.users import User
    from app.services.accounts import AccountInput, create_account
    from app.services.users import hash_password
    from tests.support.paperbroker import start_broker

    broker = start_broker("--no-rate-limit", accounts=1)
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": db_url, "LOG_LEVEL": "WARNING", **keys})
    with app.app_context():
        upgrade()
        users = {}
        for name, role in (("idle", "admin"), ("trader", "trader")):
            users[name] = User(username=name, email=f"{name}@example.com", role=role,
                               password_hash=hash_password(PASSWORD))
            db.session.add(users[name])
        db.session.commit()
        create_account(users["trader"], AccountInput("Paper", broker.url, broker.ws_url, broker.keys[0]))
        db.session.remove()
        db.engine.dispose()
    return broker


def process_round(env: dict[str, str]) -> dict[str, float]:
    started = time.time()
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    if done.returncode != 0:
        raise SystemExit(f"probe failed:\n{done.stderr[-3000:]}")
    marks = json.loads(done.stdout.strip().splitlines()[-1])
    assert marks["status"] == 200, marks
    return {"interpreter": (marks["child"] - started) * 1000, "import app": (marks["import"] - started) * 1000,
            "create_app()": (marks["create"] - marks["import"]) * 1000,
            "first request": (marks["request"] - marks["create"]) * 1000,
            "total": (marks["request"] - started) * 1000}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...; comm may contain spaces, so split after the last ')'.
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def maps_pandas(pid: int) -> bool:
    try:
        return "/pandas/" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def sign_in(http: httpx.Client, username: str) -> None:
    page = http.get("/auth/login").text
    match = _CSRF.search(page)
    assert match, "no CSRF token on the login page"
    token = next(g for g in match.groups() if g)
    response = http.post("/auth/login", data={"identifier": username, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, (response.status_code, response.text[:300])


def gunicorn_round(env: dict[str, str], workdir: Path) -> dict[str, float]:
    port = free_port()
    genv = {**env, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "4",
            "GUNICORN_LOG_LEVEL": "warning"}
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    log = open(workdir / f"gunicorn-{port}.log", "w")  # closed in finally
    started = time.monotonic()
    proc = subprocess.Popen([gunicorn, "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "app:create_app()"],
                            cwd=ROOT, env=genv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = started + 300
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise SystemExit(f"gunicorn did not start:\n{(workdir / f'gunicorn-{port}.log').read_text()[-3000:]}")
            time.sleep(0.05)
        ready_ms = (time.monotonic() - started) * 1000
        (worker,) = children_of(proc.pid)
        with httpx.Client(base_url=base, timeout=60) as http:
            sign_in(http, "idle")
            for path in ("/dashboard", "/api/dashboard", "/accounts/manage", "/audit/", "/healthz"):
                assert http.get(path).status_code == 200, path
        time.sleep(1.0)  # let the request threads go idle before reading memory
        idle, idle_pandas = rss_mb(worker), maps_pandas(worker)
        with httpx.Client(base_url=base, timeout=60) as http:
            sign_in(http, "trader")
            for path in ("/dashboard", "/api/dashboard"):
                assert http.get(path).status_code == 200, path
        time.sleep(1.0)
        with_sdk, sdk_pandas = rss_mb(worker), maps_pandas(worker)
        return {"ready": ready_ms, "idle": idle, "idle_pandas": float(idle_pandas), "sdk": with_sdk,
                "sdk_pandas": float(sdk_pandas), "master": rss_mb(proc.pid)}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per figure (at least 3 for a spread)")
    parser.add_argument("--no-gunicorn", action="store_true", help="only the process start figures")
    args = parser.parse_args()

    print_machine()
    site = Path(sysconfig.get_paths()["purelib"])
    have, total = bytecode_coverage(site)
    app_have, app_total = bytecode_coverage(ROOT / "app")
    print(f"Bytecode:     site-packages {have}/{total} modules, app/ {app_have}/{app_total}; "
          f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '(unset)')}")
    print(f"Rounds:       {args.rounds}\n", flush=True)

    from cryptography.fernet import Fernet

    workdir = Path(tempfile.mkdtemp(prefix="algomirror-startup-"))
    db_url = f"sqlite:///{workdir / 'startup.db'}"
    keys = {"SECRET_KEY": secrets.token_hex(32), "ENCRYPTION_KEY": Fernet.generate_key().decode()}
    broker = prepare_database(db_url, keys)
    env = app_env(workdir, db_url, keys)
    try:
        cold_env = {**env, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(workdir / "no-bytecode")}
        pairs = rounds(lambda: (process_round(cold_env), process_round(env)), n=args.rounds)
        for title, results in (("without bytecode", [cold for cold, _ in pairs]),
                               ("with bytecode", [warm for _, warm in pairs])):
            print(f"Process start, {title} (python -c; ms from spawn unless noted)")
            for name in ("interpreter", "import app", "create_app()", "first request", "total"):
                label = {"create_app()": "create_app() (after import)",
                         "first request": "first request (after create_app)"}.get(name, name)
                print(f"  {label:34s} {summarize([r[name] for r in results], unit='ms', digits=0)}")
        if args.no_gunicorn:
            return 0
        print("\ngunicorn -w 1 -k gthread --threads 4 (deploy/gunicorn.conf.py), SQLite")
        runs = rounds(lambda: gunicorn_round(env, workdir), n=args.rounds)
        print(f"  {'start to /healthz 200':34s} {summarize([r['ready'] for r in runs], unit='ms', digits=0)}")
        idle = summarize([r["idle"] for r in runs], unit="MB")
        print(f"  {'idle worker RSS (no accounts)':34s} {idle}"
              f"  pandas mapped: {'yes' if any(r['idle_pandas'] for r in runs) else 'no'}")
        print(f"  {'worker RSS after one account':34s} {summarize([r['sdk'] for r in runs], unit='MB')}"
              f"  pandas mapped: {'yes' if all(r['sdk_pandas'] for r in runs) else 'no'}")
        print(f"  {'master RSS':34s} {summarize([r['master'] for r in runs], unit='MB')}")
        verdict = "met" if idle.median <= TARGET_IDLE_RSS_MB else "MISSED"
        print(f"\nTarget: idle gthread worker <= {TARGET_IDLE_RSS_MB:.0f} MB RSS (median): {verdict}")
        return 0 if verdict == "met" else 1
    finally:
        broker.stop()


if __name__ == "__main__":
    sys.exit(main())
