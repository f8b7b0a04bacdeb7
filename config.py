"""Deployment settings, read once from the environment into typed config classes.

Trading settings that users edit live in database tables; this module only holds
what an operator sets before starting a process.
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent
# A .env file in the project directory fills in variables that the environment does not set.
load_dotenv(BASE_DIR / ".env", override=False)
INSTANCE_DIR = Path(os.environ.get("INSTANCE_PATH", BASE_DIR / "instance"))

# Values that must never be accepted as real secrets.
INSECURE_SECRETS = frozenset({"", "dev", "changeme", "change-me", "secret", "your-secret-key", "replace-me"})

logger = logging.getLogger(__name__)


class ConfigError(RuntimeError):
    """A deployment setting is missing or invalid; the process must not start."""


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def _env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _env_str(name, default).lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _instance_file(name: str) -> str | None:
    path = INSTANCE_DIR / name
    if not path.exists():
        return None
    return path.read_text().strip() or None


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be a boolean (true/false), got {raw!r}")


def _env_str(name: str, default: str) -> str:
    raw = os.environ.get(name)
    return default if raw is None or raw.strip() == "" else raw.strip()


def default_database_url() -> str:
    return f"sqlite:///{INSTANCE_DIR / 'algomirror.db'}"


def normalize_database_url(url: str) -> str:
    """Resolve a relative SQLite path against the project directory, not the process's cwd,
    and give PostgreSQL URLs an explicit driver."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
        path = url[len(prefix):]
        if path and not path.startswith(":memory:"):
            return prefix + str((BASE_DIR / path).resolve())
    # A bare postgres:// or postgresql:// URL uses psycopg2, the driver this project installs
    # (SQLAlchemy 2.1 would otherwise pick psycopg 3).
    for bare in ("postgres://", "postgresql://"):
        if url.startswith(bare):
            return "postgresql+psycopg2://" + url[len(bare):]
    return url


def read_or_create_instance_secret(name: str, factory: Callable[[], str], directory: Path | None = None) -> str:
    """Return the secret stored in <instance>/<name>, creating it (mode 0600) when absent.

    Safe when several processes start at once (gunicorn workers on an empty instance/):
    each candidate is written completely to a temporary file and hard-linked into place,
    which fails if the name exists, so exactly one writer wins, a reader never sees a
    partial file, and every process returns what the winner wrote.

    Raises:
        ConfigError: the file exists but stays empty (e.g. truncated by hand).
    """
    folder = directory if directory is not None else INSTANCE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if not path.exists():
        _publish_secret(path, factory())
    return _read_secret(path)


def _publish_secret(path: Path, value: str) -> None:
    # mkstemp creates the file with mode 0600 in the same directory, so the link is on one filesystem.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp_name, path)
        except FileExistsError:
            return  # another process won the race; everyone reads its value
        except OSError:
            # A filesystem without hard links: exclusive create, readers wait for the content.
            _publish_exclusive(path, value)
            return
        logger.info("Generated %s into %s", path.name, path)
    finally:
        os.unlink(tmp_name)


def _publish_exclusive(path: Path, value: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
        handle.flush()
        os.fsync(handle.fileno())
    logger.info("Generated %s into %s", path.name, path)


def _read_secret(path: Path, wait_seconds: float = 5.0) -> str:
    # An empty file is one being written by the exclusive-create fallback (or an older
    # version of this code): wait briefly for its content instead of using an empty secret.
    deadline = time.monotonic() + wait_seconds
    while True:
        value = path.read_text().strip()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise ConfigError(f"{path} is empty; delete it to generate a new secret, or set the variable")
        time.sleep(0.05)


def new_fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _check_rate_limit(name: str, value: str) -> None:
    # A typo must not silently switch a limit off (Flask-Limiter skips strings it cannot parse).
    from limits import parse_many

    try:
        if not parse_many(value):
            raise ValueError(value)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a rate limit like '10 per minute', got {value!r}") from exc


class Config:
    """Settings shared by every environment."""

    ENV_NAME = "base"
    DEBUG = False
    TESTING = False

    SECRET_KEY: str | None = None
    ENCRYPTION_KEY: str | None = None  # comma-separated Fernet keys, newest first
    SQLALCHEMY_DATABASE_URI = ""
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}

    REDIS_URL = "memory://"
    LOG_LEVEL = "INFO"
    LOG_DIR = str(BASE_DIR / "logs")
    LOG_TO_FILE = True
    PAPER_BROKER_URL = "http://127.0.0.1:5100"
    PAPER_BROKER_WS_URL = "ws://127.0.0.1:8770"
    # Admin token of the paper broker's /sim/ API (for "Add paper account"); make run writes
    # instance/paperbroker_admin_token and exports it.
    PAPERBROKER_ADMIN_TOKEN: str | None = None

    # OpenAlgo client: timeouts in seconds and per-account pacing (OpenAlgo: orders 10/s, other 50/s).
    BROKER_CONNECT_TIMEOUT = 3.0
    BROKER_READ_TIMEOUT = 10.0
    BROKER_ORDERS_PER_SECOND = 10
    BROKER_READS_PER_SECOND = 50
    # With REDIS_URL redis://… that pacing is counted in Redis under this prefix, shared by all processes.
    BROKER_PACING_KEY_PREFIX = "algomirror:pacing"
    BROKER_PACING_MAX_WAIT_SECONDS = 30.0  # a call waiting longer for a slot fails with RateLimited
    # The HTTP client under the openalgo SDK: "lean" (app/broker/transport.py, a third of httpx's
    # CPU per call; httpx is still used for a host behind a proxy set in the environment) or
    # "httpx" (the SDK's own client everywhere).
    BROKER_HTTP_CLIENT = "lean"
    # Dashboard: how long cached account data counts as fresh, and how long a page waits for refreshes.
    ACCOUNT_DATA_FRESH_SECONDS = 5.0
    # Background services: ping every 30 s (re-pinging a failing host 1 s apart within a cycle,
    # so 3 strikes land in one cycle), refresh account data every 15 s.
    BACKGROUND_SERVICES = "auto"
    CONNECTION_MONITOR_INTERVAL = 30.0
    PING_RETRY_SECONDS = 1.0
    ACCOUNT_REFRESH_INTERVAL = 15.0
    # Ticks whose exchange time is older than this are refused by the last-price cache (0 = no limit).
    PRICE_MAX_TICK_AGE_SECONDS = 300.0
    # Risk monitor: a price older than this makes the rules hold (and a prices_unreliable event);
    # the books are re-read (and every run re-evaluated) this often.
    RISK_PRICE_MAX_AGE_SECONDS = 15.0
    RISK_REFRESH_SECONDS = 1.0
    RISK_FIRST_PRICE_GRACE_SECONDS = 10.0
    # A held leg without a confirmed price for this long is read by /multiquotes while the market
    # trades (a quiet hedge must not hold every rule of its run); 0 = never.
    RISK_QUOTE_REFRESH_SECONDS = 5.0
    # A risk exit that failed (or could not be asked for) is asked for again after this.
    RISK_FAILED_EXIT_RETRY_SECONDS = 30.0
    # Leader lease: another process takes over within TTL + retry seconds of the holder dying.
    SERVICE_LEASE_TTL_SECONDS = 10.0
    SERVICE_LEASE_RENEW_SECONDS = 3.0
    SERVICE_LEASE_RETRY_SECONDS = 3.0
    CALENDAR_CACHE_SECONDS = 30.0
    DASHBOARD_WAIT_SECONDS = 0.25
    # Order engine wake-up: the leader's poll when no LISTEN/pub-sub wakes it (SQLite, or while that
    # connection is down), and the Redis pub/sub channel prefix ("<prefix>:engine").
    ENGINE_POLL_SECONDS = 0.25
    ENGINE_CHANNEL_PREFIX = "algomirror"
    # Order engine: reconciliation of unknown outcomes (order-book reads, their spacing, and how far
    # a broker's order time may lie before our send time), status polling, and worker threads.
    EXECUTION_CLOCK_SKEW_SECONDS = 120.0
    EXECUTION_RECONCILE_READS = 3
    EXECUTION_RECONCILE_INTERVAL_SECONDS = 1.0
    EXECUTION_STATUS_POLL_SECONDS = 0.1
    # A send job holds its thread for two round trips (the order, its first status) and touches no
    # database: the pool must cover every order of one phase at once (50 accounts x 2 legs measured
    # 0.2 s slower at 64 threads, docs/benchmarks.md). Threads start only as jobs need them.
    EXECUTION_MAX_WORKERS = 128
    # Each account's order updates over its WebSocket (subscribe_orders): an order's first status
    # without a status read when a report is pushed within the wait; the stream closes after the idle time.
    EXECUTION_ORDER_UPDATES = True
    EXECUTION_ORDER_UPDATE_WAIT_SECONDS = 0.25
    EXECUTION_ORDER_FEED_IDLE_SECONDS = 1800.0

    # Rate limits (Flask-Limiter strings), DOMAIN.md security defaults.
    RATELIMIT_ENABLED = True
    RATELIMIT_GLOBAL = "1000 per minute"
    RATELIMIT_AUTH = "10 per minute"
    # The live pages poll it: a run page every 1.5 s (40 a minute per tab), the dashboard every
    # 5 s, the option chain every 3 s. A trader watching two runs, the dashboard and the chain
    # (112 a minute) must never see a page go stale on a 429 during a breach.
    RATELIMIT_API = "300 per minute"
    RATELIMIT_HEAVY = "20 per minute"

    # Login lockout: this many failures within the window lock the username for LOCKOUT_MINUTES.
    LOGIN_MAX_FAILURES = 5
    LOGIN_FAILURE_WINDOW_MINUTES = 15
    LOCKOUT_MINUTES = 15

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = False
    REMEMBER_COOKIE_DURATION_DAYS = 14
    PREFERRED_URL_SCHEME = "http"

    WTF_CSRF_ENABLED = True
    WTF_CSRF_TIME_LIMIT: int | None = None  # token lives as long as the session
    WTF_CSRF_SSL_STRICT = True

    AUDIT_PAGE_SIZE = 50
    # Werkzeug method string; scrypt with its default cost (N=2^15, r=8, p=1).
    PASSWORD_HASH_METHOD = "scrypt"
    # Hosts trusted in X-Forwarded-For (number of proxies in front, e.g. nginx = 1).
    PROXY_FIX_HOPS = 0

    @classmethod
    def load(cls) -> dict:
        """Read the environment into a settings dict for app.config.from_mapping."""
        settings = {k: getattr(cls, k) for k in dir(cls) if k.isupper()}
        settings.update(
            SECRET_KEY=os.environ.get("SECRET_KEY") or None,
            ENCRYPTION_KEY=os.environ.get("ENCRYPTION_KEY") or None,
            SQLALCHEMY_DATABASE_URI=normalize_database_url(cls.database_url()),
            REDIS_URL=_env_str("REDIS_URL", cls.REDIS_URL),
            LOG_LEVEL=_env_str("LOG_LEVEL", cls.LOG_LEVEL).upper(),
            LOG_DIR=_env_str("LOG_DIR", cls.LOG_DIR),
            LOG_TO_FILE=_env_bool("LOG_TO_FILE", cls.LOG_TO_FILE),
            PAPER_BROKER_URL=_env_str("PAPER_BROKER_URL", cls.PAPER_BROKER_URL),
            PAPER_BROKER_WS_URL=_env_str("PAPER_BROKER_WS_URL", cls.PAPER_BROKER_WS_URL),
            PAPERBROKER_ADMIN_TOKEN=(
                os.environ.get("PAPERBROKER_ADMIN_TOKEN") or _instance_file("paperbroker_admin_token")
            ),
            BROKER_CONNECT_TIMEOUT=_env_float("BROKER_CONNECT_TIMEOUT", cls.BROKER_CONNECT_TIMEOUT),
            BROKER_READ_TIMEOUT=_env_float("BROKER_READ_TIMEOUT", cls.BROKER_READ_TIMEOUT),
            BROKER_ORDERS_PER_SECOND=_env_int("BROKER_ORDERS_PER_SECOND", cls.BROKER_ORDERS_PER_SECOND),
            BROKER_READS_PER_SECOND=_env_int("BROKER_READS_PER_SECOND", cls.BROKER_READS_PER_SECOND),
            BROKER_PACING_KEY_PREFIX=_env_str("BROKER_PACING_KEY_PREFIX", cls.BROKER_PACING_KEY_PREFIX),
            BROKER_PACING_MAX_WAIT_SECONDS=_env_float("BROKER_PACING_MAX_WAIT_SECONDS",
                                                      cls.BROKER_PACING_MAX_WAIT_SECONDS),
            BROKER_HTTP_CLIENT=_env_choice("BROKER_HTTP_CLIENT", cls.BROKER_HTTP_CLIENT, ("lean", "httpx")),
            ACCOUNT_DATA_FRESH_SECONDS=_env_float("ACCOUNT_DATA_FRESH_SECONDS", cls.ACCOUNT_DATA_FRESH_SECONDS),
            DASHBOARD_WAIT_SECONDS=_env_float("DASHBOARD_WAIT_SECONDS", cls.DASHBOARD_WAIT_SECONDS),
            BACKGROUND_SERVICES=_env_choice("BACKGROUND_SERVICES", cls.BACKGROUND_SERVICES, ("auto", "on", "off")),
            CONNECTION_MONITOR_INTERVAL=_env_float("CONNECTION_MONITOR_INTERVAL", cls.CONNECTION_MONITOR_INTERVAL),
            PING_RETRY_SECONDS=_env_float("PING_RETRY_SECONDS", cls.PING_RETRY_SECONDS),
            ACCOUNT_REFRESH_INTERVAL=_env_float("ACCOUNT_REFRESH_INTERVAL", cls.ACCOUNT_REFRESH_INTERVAL),
            PRICE_MAX_TICK_AGE_SECONDS=_env_float("PRICE_MAX_TICK_AGE_SECONDS", cls.PRICE_MAX_TICK_AGE_SECONDS),
            RISK_PRICE_MAX_AGE_SECONDS=_env_float("RISK_PRICE_MAX_AGE_SECONDS", cls.RISK_PRICE_MAX_AGE_SECONDS),
            RISK_REFRESH_SECONDS=_env_float("RISK_REFRESH_SECONDS", cls.RISK_REFRESH_SECONDS),
            RISK_FIRST_PRICE_GRACE_SECONDS=_env_float("RISK_FIRST_PRICE_GRACE_SECONDS",
                                                      cls.RISK_FIRST_PRICE_GRACE_SECONDS),
            RISK_QUOTE_REFRESH_SECONDS=_env_float("RISK_QUOTE_REFRESH_SECONDS", cls.RISK_QUOTE_REFRESH_SECONDS),
            RISK_FAILED_EXIT_RETRY_SECONDS=_env_float("RISK_FAILED_EXIT_RETRY_SECONDS",
                                                      cls.RISK_FAILED_EXIT_RETRY_SECONDS),
            SERVICE_LEASE_TTL_SECONDS=_env_float("SERVICE_LEASE_TTL_SECONDS", cls.SERVICE_LEASE_TTL_SECONDS),
            SERVICE_LEASE_RENEW_SECONDS=_env_float("SERVICE_LEASE_RENEW_SECONDS", cls.SERVICE_LEASE_RENEW_SECONDS),
            SERVICE_LEASE_RETRY_SECONDS=_env_float("SERVICE_LEASE_RETRY_SECONDS", cls.SERVICE_LEASE_RETRY_SECONDS),
            CALENDAR_CACHE_SECONDS=_env_float("CALENDAR_CACHE_SECONDS", cls.CALENDAR_CACHE_SECONDS),
            ENGINE_POLL_SECONDS=_env_float("ENGINE_POLL_SECONDS", cls.ENGINE_POLL_SECONDS),
            ENGINE_CHANNEL_PREFIX=_env_str("ENGINE_CHANNEL_PREFIX", cls.ENGINE_CHANNEL_PREFIX),
            EXECUTION_CLOCK_SKEW_SECONDS=_env_float("EXECUTION_CLOCK_SKEW_SECONDS", cls.EXECUTION_CLOCK_SKEW_SECONDS),
            EXECUTION_RECONCILE_READS=_env_int("EXECUTION_RECONCILE_READS", cls.EXECUTION_RECONCILE_READS),
            EXECUTION_RECONCILE_INTERVAL_SECONDS=_env_float("EXECUTION_RECONCILE_INTERVAL_SECONDS",
                                                            cls.EXECUTION_RECONCILE_INTERVAL_SECONDS),
            EXECUTION_STATUS_POLL_SECONDS=_env_float("EXECUTION_STATUS_POLL_SECONDS",
                                                     cls.EXECUTION_STATUS_POLL_SECONDS),
            EXECUTION_MAX_WORKERS=_env_int("EXECUTION_MAX_WORKERS", cls.EXECUTION_MAX_WORKERS),
            EXECUTION_ORDER_UPDATES=_env_bool("EXECUTION_ORDER_UPDATES", cls.EXECUTION_ORDER_UPDATES),
            EXECUTION_ORDER_UPDATE_WAIT_SECONDS=_env_float("EXECUTION_ORDER_UPDATE_WAIT_SECONDS",
                                                           cls.EXECUTION_ORDER_UPDATE_WAIT_SECONDS),
            EXECUTION_ORDER_FEED_IDLE_SECONDS=_env_float("EXECUTION_ORDER_FEED_IDLE_SECONDS",
                                                         cls.EXECUTION_ORDER_FEED_IDLE_SECONDS),
            RATELIMIT_ENABLED=_env_bool("RATELIMIT_ENABLED", cls.RATELIMIT_ENABLED),
            RATELIMIT_GLOBAL=_env_str("RATELIMIT_GLOBAL", cls.RATELIMIT_GLOBAL),
            RATELIMIT_AUTH=_env_str("RATELIMIT_AUTH", cls.RATELIMIT_AUTH),
            RATELIMIT_API=_env_str("RATELIMIT_API", cls.RATELIMIT_API),
            RATELIMIT_HEAVY=_env_str("RATELIMIT_HEAVY", cls.RATELIMIT_HEAVY),
            LOGIN_MAX_FAILURES=_env_int("LOGIN_MAX_FAILURES", cls.LOGIN_MAX_FAILURES),
            LOGIN_FAILURE_WINDOW_MINUTES=_env_int(
                "LOGIN_FAILURE_WINDOW_MINUTES", cls.LOGIN_FAILURE_WINDOW_MINUTES
            ),
            LOCKOUT_MINUTES=_env_int("LOCKOUT_MINUTES", cls.LOCKOUT_MINUTES),
            PROXY_FIX_HOPS=_env_int("PROXY_FIX_HOPS", cls.PROXY_FIX_HOPS),
        )
        if settings["LOG_LEVEL"] not in logging.getLevelNamesMapping():
            raise ConfigError(f"LOG_LEVEL {settings['LOG_LEVEL']!r} is not a logging level")
        for name in ("RATELIMIT_GLOBAL", "RATELIMIT_AUTH", "RATELIMIT_API", "RATELIMIT_HEAVY"):
            _check_rate_limit(name, settings[name])
        for name in ("BROKER_ORDERS_PER_SECOND", "BROKER_READS_PER_SECOND", "BROKER_PACING_MAX_WAIT_SECONDS",
                     "BROKER_CONNECT_TIMEOUT",
                     "BROKER_READ_TIMEOUT", "CONNECTION_MONITOR_INTERVAL", "ACCOUNT_REFRESH_INTERVAL",
                     "SERVICE_LEASE_TTL_SECONDS", "SERVICE_LEASE_RENEW_SECONDS", "SERVICE_LEASE_RETRY_SECONDS",
                     "ENGINE_POLL_SECONDS", "EXECUTION_RECONCILE_READS", "EXECUTION_RECONCILE_INTERVAL_SECONDS",
                     "EXECUTION_STATUS_POLL_SECONDS", "EXECUTION_MAX_WORKERS", "EXECUTION_ORDER_UPDATE_WAIT_SECONDS",
                     "EXECUTION_ORDER_FEED_IDLE_SECONDS"):
            if settings[name] <= 0:
                raise ConfigError(f"{name} must be greater than 0, got {settings[name]!r}")
        if settings["SERVICE_LEASE_RENEW_SECONDS"] >= settings["SERVICE_LEASE_TTL_SECONDS"]:
            raise ConfigError("SERVICE_LEASE_RENEW_SECONDS must be shorter than SERVICE_LEASE_TTL_SECONDS")
        cls.finalize(settings)
        return settings

    @classmethod
    def database_url(cls) -> str:
        return _env_str("DATABASE_URL", default_database_url())

    @classmethod
    def finalize(cls, settings: dict) -> None:
        """Environment-specific checks and defaults; development generates missing secrets."""
        if not settings["SECRET_KEY"]:
            settings["SECRET_KEY"] = read_or_create_instance_secret("secret_key", lambda: secrets.token_hex(32))
        if not settings["ENCRYPTION_KEY"]:
            settings["ENCRYPTION_KEY"] = read_or_create_instance_secret("encryption_key", new_fernet_key)


class DevelopmentConfig(Config):
    ENV_NAME = "development"
    DEBUG = False  # never the Werkzeug debugger: it would expose a console to anyone who reaches the port


class TestingConfig(Config):
    ENV_NAME = "testing"
    TESTING = True
    BACKGROUND_SERVICES = "off"  # tests start runners themselves
    LOG_TO_FILE = False
    RATELIMIT_AUTH = "1000 per minute"
    RATELIMIT_GLOBAL = "100000 per minute"
    LOGIN_MAX_FAILURES = 5
    # Same KDF at a lower cost so the suite stays fast; production keeps the default cost.
    PASSWORD_HASH_METHOD = "scrypt:4096:8:1"

    @classmethod
    def database_url(cls) -> str:
        # Never DATABASE_URL: a test run must not touch a development or production database.
        return _env_str("TEST_DATABASE_URL", "sqlite://")

    @classmethod
    def finalize(cls, settings: dict) -> None:
        # Tests never touch instance/: ephemeral secrets unless a test passes its own.
        settings["SECRET_KEY"] = settings["SECRET_KEY"] or secrets.token_hex(32)
        settings["ENCRYPTION_KEY"] = settings["ENCRYPTION_KEY"] or new_fernet_key()


class ProductionConfig(Config):
    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    PREFERRED_URL_SCHEME = "https"

    @classmethod
    def finalize(cls, settings: dict) -> None:
        secret = settings["SECRET_KEY"]
        if not secret or secret.lower() in INSECURE_SECRETS or len(secret) < 32:
            raise ConfigError("Production requires SECRET_KEY: at least 32 random characters, not a default")
        enc = settings["ENCRYPTION_KEY"]
        if not enc or enc.lower() in INSECURE_SECRETS:
            raise ConfigError("Production requires ENCRYPTION_KEY (a Fernet key; generate one, never reuse a sample)")
        from app.security.encryption import EncryptionError, parse_keys

        try:
            parse_keys(enc)
        except EncryptionError as exc:
            raise ConfigError(f"ENCRYPTION_KEY is invalid: {exc}") from exc
        if settings["REDIS_URL"].startswith("memory://"):
            logger.warning("REDIS_URL is memory://: rate limits are per worker process, not shared")
        settings["SESSION_COOKIE_SECURE"] = _env_bool("SESSION_COOKIE_SECURE", True)
        settings["REMEMBER_COOKIE_SECURE"] = settings["SESSION_COOKIE_SECURE"]


CONFIGS: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def config_name_from_env() -> str:
    name = (os.environ.get("APP_ENV") or os.environ.get("FLASK_ENV") or "development").strip().lower()
    if name not in CONFIGS:
        raise ConfigError(f"APP_ENV must be one of {', '.join(CONFIGS)}, got {name!r}")
    return name
