"""Configuration rules, health probes, request ids, logging, migrations and init_db."""

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

import config
from config import ConfigError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("SECRET_KEY", "ENCRYPTION_KEY", "DATABASE_URL", "APP_ENV", "FLASK_ENV", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOG_TO_FILE", "false")
    return monkeypatch


@pytest.mark.parametrize("secret", [None, "changeme", "dev", "short-but-not-default"])
def test_production_refuses_missing_or_default_secret_key(clean_env, secret):
    if secret:
        clean_env.setenv("SECRET_KEY", secret)
    clean_env.setenv("ENCRYPTION_KEY", Fernet.generate_key().decode())
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        config.ProductionConfig.load()


@pytest.mark.parametrize("key", [None, "changeme"])
def test_production_refuses_missing_or_default_encryption_key(clean_env, key):
    clean_env.setenv("SECRET_KEY", "s" * 64)
    if key:
        clean_env.setenv("ENCRYPTION_KEY", key)
    with pytest.raises(ConfigError, match="ENCRYPTION_KEY"):
        config.ProductionConfig.load()


def test_development_generates_secrets_into_instance_with_mode_0600(clean_env, tmp_path):
    clean_env.setattr(config, "INSTANCE_DIR", tmp_path)
    settings = config.DevelopmentConfig.load()
    for name in ("secret_key", "encryption_key"):
        path = tmp_path / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert settings["SECRET_KEY"] == (tmp_path / "secret_key").read_text()
    Fernet(settings["ENCRYPTION_KEY"].encode())  # a valid key
    again = config.DevelopmentConfig.load()
    assert again["SECRET_KEY"] == settings["SECRET_KEY"]  # reused, not regenerated


def test_environment_variables_are_honoured(clean_env, tmp_path):
    clean_env.setattr(config, "INSTANCE_DIR", tmp_path)
    clean_env.setenv("DATABASE_URL", "postgres://u@db/algomirror")
    clean_env.setenv("LOG_LEVEL", "debug")
    clean_env.setenv("RATELIMIT_AUTH", "3 per minute")
    settings = config.DevelopmentConfig.load()
    assert settings["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg2://u@db/algomirror"
    assert settings["LOG_LEVEL"] == "DEBUG"
    assert settings["RATELIMIT_AUTH"] == "3 per minute"


def test_relative_sqlite_path_is_resolved_against_project():
    assert config.normalize_database_url("sqlite:///instance/x.db") == f"sqlite:///{ROOT / 'instance' / 'x.db'}"
    assert config.normalize_database_url("sqlite:////abs/x.db") == "sqlite:////abs/x.db"


@pytest.mark.parametrize(("name", "value"), [("LOG_LEVEL", "LOUD"), ("LOCKOUT_MINUTES", "ten"),
                                             ("LOG_TO_FILE", "maybe")])
def test_bad_values_fail_fast(clean_env, tmp_path, name, value):
    clean_env.setattr(config, "INSTANCE_DIR", tmp_path)
    clean_env.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        config.DevelopmentConfig.load()


def test_testing_config_never_uses_database_url(clean_env):
    clean_env.setenv("DATABASE_URL", "postgresql://prod/db")
    clean_env.delenv("TEST_DATABASE_URL", raising=False)
    assert config.TestingConfig.load()["SQLALCHEMY_DATABASE_URI"] == "sqlite://"


def test_unknown_app_env_is_refused(clean_env):
    clean_env.setenv("APP_ENV", "staging")
    with pytest.raises(ConfigError, match="APP_ENV"):
        config.config_name_from_env()


def test_healthz_and_readyz(app, client):
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").json == {"status": "ok", "database": "ok", "rate_limit_storage": "ok"}


def test_readyz_reports_database_down(app_factory, tmp_path):
    broken = app_factory(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/missing/dir/db.sqlite")
    response = broken.test_client().get("/readyz")
    assert response.status_code == 503 and response.json["database"] == "error"


def test_readyz_reports_pending_migration(app_factory, tmp_path):
    empty = app_factory(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/empty.db")
    with empty.app_context():
        from app.extensions import db

        with db.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
            conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('0001')")
    response = empty.test_client().get("/readyz")
    assert response.status_code == 503 and response.json["database"] == "migration pending"


def test_readyz_reports_redis_down(app_factory):
    unreachable = app_factory(REDIS_URL="redis://127.0.0.1:1/0")
    response = unreachable.test_client().get("/readyz")
    assert response.status_code == 503 and response.json["rate_limit_storage"] == "error"


def test_bad_rate_limit_string_fails_fast(clean_env, tmp_path):
    clean_env.setattr(config, "INSTANCE_DIR", tmp_path)
    clean_env.setenv("RATELIMIT_AUTH", "ten per minute")
    with pytest.raises(ConfigError, match="RATELIMIT_AUTH"):
        config.DevelopmentConfig.load()


def test_production_refuses_non_fernet_encryption_key(clean_env):
    clean_env.setenv("SECRET_KEY", "s" * 64)
    clean_env.setenv("ENCRYPTION_KEY", "x" * 40)
    with pytest.raises(ConfigError, match="ENCRYPTION_KEY is invalid"):
        config.ProductionConfig.load()


def test_csrf_failure_responses_carry_request_id(app, client):
    response = client.post("/auth/login", data={}, headers={"X-Request-ID": "csrf-trace"})
    assert response.status_code == 400 and response.headers["X-Request-ID"] == "csrf-trace"


def test_request_id_is_returned_and_logged(app, client, caplog):
    caplog.set_level(logging.INFO)
    response = client.get("/healthz", headers={"X-Request-ID": "req-abc123"})
    assert response.headers["X-Request-ID"] == "req-abc123"
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert len(generated) == 16
    bogus = client.get("/healthz", headers={"X-Request-ID": "bad id; drop"}).headers["X-Request-ID"]
    assert bogus != "bad id; drop" and len(bogus) == 16


def test_log_lines_carry_request_id_and_go_to_rotating_file(app_factory, tmp_path):
    application = app_factory(LOG_TO_FILE=True, LOG_DIR=str(tmp_path))
    from tests.helpers import Browserless

    client = Browserless(application.test_client())
    client.post_form("/auth/login", {"identifier": "nobody", "password": "Wr0ng!pass"},
                     headers={"X-Request-ID": "trace-42"})
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = (tmp_path / "algomirror.log").read_text()
    assert "[trace-42] app.services.audit: audit action=login" in text
    assert "Wr0ng!pass" not in text
    handlers = [h for h in logging.getLogger().handlers if getattr(h, "baseFilename", "").startswith(str(tmp_path))]
    assert handlers and handlers[0].maxBytes > 0 and handlers[0].backupCount > 0


def test_models_match_migrations(app):
    """Autogenerate finds nothing to add: the migrations describe the models exactly."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from app.extensions import db

    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata)
    assert diff == []


def _run(args, env_extra, tmp_path, input_text=None):
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "ENCRYPTION_KEY", "TEST_DATABASE_URL"}}
    env.update({"APP_ENV": "development", "LOG_TO_FILE": "false", "INSTANCE_PATH": str(tmp_path / "instance"),
                **env_extra})
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          input=input_text, timeout=120, check=False)


def test_init_db_upgrade_testdata_and_reset(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {"DATABASE_URL": db_url}
    assert _run(["init_db.py"], env, tmp_path).returncode == 0
    created = _run(["init_db.py", "testdata"], env, tmp_path)
    assert created.returncode == 0 and "created admin demo_admin with password" in created.stdout
    aborted = _run(["init_db.py", "reset"], env, tmp_path, input_text="no\n")
    assert aborted.returncode == 1 and "nothing was changed" in aborted.stdout
    import sqlite3

    def users() -> int:
        with sqlite3.connect(tmp_path / "cli.db") as conn:
            return conn.execute("select count(*) from users").fetchone()[0]

    assert users() == 2
    assert _run(["init_db.py", "reset", "--yes"], env, tmp_path).returncode == 0
    assert users() == 0
    production = _run(["init_db.py", "testdata"], {**env, "APP_ENV": "production", "SECRET_KEY": "k" * 40,
                                                   "ENCRYPTION_KEY": Fernet.generate_key().decode()}, tmp_path)
    assert production.returncode != 0 and "development only" in production.stderr


def test_gunicorn_entry_point_builds_app(tmp_path):
    code = "import app; print(type(app.app).__name__, app.app.config['ENV_NAME'])"
    result = _run(["-c", code], {"DATABASE_URL": f"sqlite:///{tmp_path / 'g.db'}", "BACKGROUND_SERVICES": "off"},
                  tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Flask development" in result.stdout.splitlines()


def test_production_app_does_not_start_without_secrets(tmp_path):
    result = _run(["-c", "import app; app.app"], {"APP_ENV": "production"}, tmp_path)
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr


@pytest.mark.parametrize(("name", "value", "match"), [
    ("BROKER_ORDERS_PER_SECOND", "0", "BROKER_ORDERS_PER_SECOND must be greater than 0"),
    ("SERVICE_LEASE_RENEW_SECONDS", "20", "shorter than SERVICE_LEASE_TTL_SECONDS"),
    ("BACKGROUND_SERVICES", "sometimes", "BACKGROUND_SERVICES must be one of"),
])
def test_service_and_broker_settings_fail_fast(clean_env, tmp_path, name, value, match):
    clean_env.setattr(config, "INSTANCE_DIR", tmp_path)
    clean_env.setenv(name, value)
    with pytest.raises(ConfigError, match=match):
        config.DevelopmentConfig.load()
