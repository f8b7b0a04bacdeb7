"""AlgoMirror: the application factory.

`gunicorn app:app` works through the module-level `__getattr__` below, which builds the
WSGI app on first access, so importing the package for tests or the CLI creates nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, g
from werkzeug.middleware.proxy_fix import ProxyFix

from config import CONFIGS, config_name_from_env

logger = logging.getLogger(__name__)


def create_app(config_name: str | None = None, overrides: dict[str, Any] | None = None) -> Flask:
    """Build a configured Flask app.

    Args:
        config_name: development, testing or production; defaults to APP_ENV / FLASK_ENV.
        overrides: settings applied after the environment is read (tests use this).

    Raises:
        config.ConfigError: a setting is missing or invalid (production secrets included).
    """
    name = config_name or config_name_from_env()
    settings = CONFIGS[name].load()
    if overrides:
        settings.update(overrides)

    app = Flask(__name__, instance_relative_config=False)
    app.config.from_mapping(settings)
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "algomirror")
    app.config.update(
        REMEMBER_COOKIE_DURATION=_days(app.config["REMEMBER_COOKIE_DURATION_DAYS"]),
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
    )
    if app.config["PROXY_FIX_HOPS"]:
        hops = app.config["PROXY_FIX_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    from app.logging_setup import configure_logging

    configure_logging(app)
    from app.security import headers

    headers.init_app(app)  # first: every later hook (CSRF, limiter, login) logs with the request id
    _init_extensions(app)
    from app import request_input

    request_input.install_converters(app)  # before the blueprints: `<int:id>` is bounded
    _register_blueprints(app)

    from app.extensions import init_limiter

    app.extensions["algomirror_limiter"] = init_limiter(app)
    request_input.init_app(app)  # after the limiter, before any view: a malformed JSON body is a 400

    from app import cli, cli_services, errors

    errors.init_app(app)
    cli.init_app(app)
    cli_services.init_app(app)
    _register_template_helpers(app)

    from app.services.monitors import register_monitors
    from app.services.runner import start_background_runner

    register_monitors(app)
    _register_engine(app)
    _register_scheduler(app)
    _register_risk_monitor(app)
    start_background_runner(app)  # no-op unless BACKGROUND_SERVICES allows it in this process
    logger.info("AlgoMirror app created (env=%s, db=%s)", name, app.config["SQLALCHEMY_DATABASE_URI"].split(":")[0])
    return app


def _register_engine(app: Flask) -> None:
    from app.services.execution.engine import ExecutionEngine
    from app.services.runner import register_service

    register_service(app, ExecutionEngine)


def _register_scheduler(app: Flask) -> None:
    from app.services.execution.scheduler import SchedulerService
    from app.services.runner import register_service

    register_service(app, SchedulerService)


def _register_risk_monitor(app: Flask) -> None:
    from app.services.runner import Service, register_service

    def risk_monitor() -> Service:
        # Imported when a leader starts it: the monitor loads numba and numpy (the Supertrend kernel),
        # which a web worker serving pages must not pay for at start-up (tests/test_startup.py).
        from app.services.risk.monitor import RiskMonitor

        return RiskMonitor()

    register_service(app, risk_monitor)


def _days(n: int):
    from datetime import timedelta

    return timedelta(days=n)


def _init_extensions(app: Flask) -> None:
    from app import models  # noqa: F401  (register every model on the metadata)
    from app.extensions import csrf, db, login_manager, migrate

    db.init_app(app)
    from app import sqlite_writes

    with app.app_context():
        sqlite_writes.install(db.engine)  # WAL and one writer queue per process (no-op on PostgreSQL)
    migrate.init_app(app, db, directory=str(_migrations_dir()))
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"

    from app.auth.session import load_user, unauthorized

    login_manager.user_loader(load_user)
    login_manager.unauthorized_handler(unauthorized)


def _migrations_dir():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "migrations"


def _register_blueprints(app: Flask) -> None:
    from app.accounts import bp as accounts_bp
    from app.admin import bp as admin_bp
    from app.api import bp as api_bp
    from app.audit import bp as audit_bp
    from app.auth import bp as auth_bp
    from app.main import bp as main_bp
    from app.margin import admin_bp as margin_admin_bp
    from app.margin import bp as margin_bp
    from app.strategy import bp as strategy_bp
    from app.trading import bp as trading_bp

    app.register_blueprint(main_bp)
    app.register_blueprint(auth_bp, url_prefix="/auth")
    app.register_blueprint(admin_bp, url_prefix="/admin")
    app.register_blueprint(audit_bp, url_prefix="/audit")
    app.register_blueprint(accounts_bp, url_prefix="/accounts")
    app.register_blueprint(api_bp, url_prefix="/api")
    app.register_blueprint(trading_bp, url_prefix="/trading")
    app.register_blueprint(margin_bp)
    app.register_blueprint(margin_admin_bp)
    app.register_blueprint(strategy_bp, url_prefix="/strategy")

    from app.services_health import bp as services_health_bp

    app.register_blueprint(services_health_bp, url_prefix="")

    from app.auth.session import enforce_password_change

    app.before_request(enforce_password_change)


def _register_template_helpers(app: Flask) -> None:
    from app.timeutil import format_ist

    app.jinja_env.filters["ist"] = format_ist
    app.jinja_env.globals["asset_url"] = _asset_url

    @app.context_processor
    def _inject() -> dict[str, Any]:
        return {"csp_nonce": lambda: g.get("csp_nonce", ""), "app_env": app.config["ENV_NAME"]}


def _asset_url(filename: str) -> str:
    """URL of a static file with a content version, so caches never serve a stale asset."""
    from flask import current_app, url_for

    return url_for("static", filename=filename, v=_asset_version(current_app.static_folder or "", filename))


def _asset_version(folder: str, filename: str) -> str:
    import hashlib
    import os

    path = os.path.join(folder, filename)
    try:
        stat = os.stat(path)
    except OSError:
        return "0"
    key = (path, stat.st_mtime_ns, stat.st_size)
    version = _ASSET_VERSIONS.get(key)
    if version is None:
        with open(path, "rb") as handle:
            version = hashlib.sha256(handle.read()).hexdigest()[:10]
        _ASSET_VERSIONS[key] = version
    return version


_ASSET_VERSIONS: dict[tuple[str, int, int], str] = {}


def __getattr__(name: str) -> Any:
    # PEP 562: `gunicorn app:app` imports this package and asks for `app`.
    if name == "app":
        from app.gc_tuning import settle_heap

        application = create_app()
        globals()["app"] = application
        settle_heap()  # once per worker process, after start-up (app/gc_tuning.py)
        return application
    raise AttributeError(name)
