"""Gunicorn configuration for AlgoMirror in production.

    gunicorn -c deploy/gunicorn.conf.py app:app

Every value can be changed through the environment (see docs/configuration.md):
HOST, PORT, WEB_CONCURRENCY, GUNICORN_THREADS, GUNICORN_TIMEOUT,
GUNICORN_GRACEFUL_TIMEOUT, GUNICORN_KEEPALIVE, GUNICORN_LOG_LEVEL and
FORWARDED_ALLOW_IPS. The application itself reads its own settings (APP_ENV,
DATABASE_URL, ...) when each worker builds it.
"""

import os
from pathlib import Path

from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parent.parent
# Like config.py: the project's .env fills in what the environment (e.g. systemd's
# EnvironmentFile) does not set, so HOST, PORT and WEB_CONCURRENCY there apply here too.
load_dotenv(ROOT / ".env", override=False)


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None


# Import `app:app` from the project root, wherever gunicorn was started from.
chdir = str(ROOT)

# Loopback only: nginx (deploy/nginx.conf.example) is the public entry point.
bind = f"{os.environ.get('HOST', '127.0.0.1').strip() or '127.0.0.1'}:{_int('PORT', 8000)}"

# gthread: each worker process serves requests on a pool of threads, so a request that waits
# on a slow broker call (parallel account calls, margin refreshes) does not stall its worker.
worker_class = "gthread"
workers = _int("WEB_CONCURRENCY", 2)
threads = _int("GUNICORN_THREADS", 4)

# For gthread workers `timeout` is a liveness check of the worker's main loop: a worker that
# stops reporting for this long is killed and replaced. Request threads do not block it, so
# a long-ish broker call is never cut off by gunicorn; nginx's proxy_read_timeout (75 s)
# bounds how long a browser waits. On SIGTERM/SIGHUP a worker gets graceful_timeout
# seconds to finish the requests it is serving.
timeout = _int("GUNICORN_TIMEOUT", 60)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Idle keep-alive connections from nginx are closed after this many seconds.
keepalive = _int("GUNICORN_KEEPALIVE", 5)

# Each worker builds its own app after the fork (preload_app = False):
# - the SQLAlchemy engine and its connection pool (PostgreSQL sockets) and the Redis client
#   must not be shared between processes; created before the fork they would be inherited
#   by every worker and corrupt each other's connections;
# - the background runner (BACKGROUND_SERVICES=auto) starts inside every worker and takes a
#   lease in the database so that exactly one process runs the services; it must never start
#   in the master, and its threads would not survive a fork.
# The cost is that each worker imports the app itself (a second or two at start).
preload_app = False

# Workers are not recycled after N requests: with the background runner a recycled worker
# would hand its lease over for no reason. Set max_requests here if a leak ever needs it.
max_requests = 0

# Heartbeat files in memory, not on a possibly slow disk (gunicorn creates them with mkstemp).
_SHM = "/dev/shm"  # noqa: S108
worker_tmp_dir = _SHM if os.path.isdir(_SHM) else None

# Trust X-Forwarded-Proto (and friends) only from the local nginx. The app applies
# X-Forwarded-For / -Proto / -Host itself through Werkzeug's ProxyFix when PROXY_FIX_HOPS=1.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Access log to stdout (systemd's journal collects it); gunicorn's own messages to stderr.
# The app writes its own log lines (stdout and logs/algomirror.log) with the request id.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Peer address (nginx), the client address nginx forwarded, the request id the app answered
# with (X-Request-ID, also on the app's own log lines) and the time taken in microseconds.
access_log_format = (
    '%(h)s fwd=%({x-forwarded-for}i)s %(t)s "%(r)s" %(s)s %(B)s "%(f)s" "%(a)s" '
    "rid=%({x-request-id}o)s %(D)sus"
)

proc_name = "algomirror"
