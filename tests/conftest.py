"""Shared fixtures for the app's tests.

The database is SQLite (a temporary file) unless TEST_DATABASE_URL names another one,
e.g. PostgreSQL in CI. The schema is built once per session by the Alembic migrations,
exactly as in production, and every test starts with empty tables.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import MetaData, create_engine, delete, text

from tests.helpers import WAIT_SECONDS, Browserless, make_user
from tests.support.paperbroker import ADMIN_TOKEN, Admin, BrokerProc, start_broker

# In-process service runners log their shutdown from atexit, after pytest has closed the
# captured streams; don't print "--- Logging error ---" noise for those last lines.
logging.raiseExceptions = False


def _database_url(tmp_path_factory) -> str:
    from config import normalize_database_url

    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return normalize_database_url(url)
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


def _drop_everything(url: str) -> None:
    engine = create_engine(url)
    meta = MetaData()
    meta.reflect(bind=engine)
    meta.drop_all(bind=engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    """A database migrated from empty to head by Alembic, once per test session."""
    from flask_migrate import upgrade

    from app import create_app

    url = _database_url(tmp_path_factory)
    _drop_everything(url)
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        from app.extensions import db

        db.engine.dispose()
    return url


@pytest.fixture(scope="session")
def seed_rows(database_url) -> dict:
    """Rows the migrations seed (e.g. the trading calendar), restored after every test."""
    from app.extensions import db

    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = {table.name: [dict(r._mapping) for r in conn.execute(table.select())]
                for table in db.metadata.sorted_tables}
    engine.dispose()
    return {name: data for name, data in rows.items() if data}


@pytest.fixture
def app_factory(database_url, seed_rows) -> Iterator:
    """Build apps on the test database; overrides per call. Tables are emptied afterwards."""
    from app import create_app

    created = []

    def build(**overrides):
        settings = {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "RATELIMIT_KEY_PREFIX": f"algomirror-test-{uuid.uuid4().hex[:8]}",
            # Pages wait for account refreshes until they complete, so what a test asserts never
            # depends on a 0.25 s page deadline that a loaded machine misses. A test about the
            # deadline itself (a hanging account served from cache) passes its own short value.
            "DASHBOARD_WAIT_SECONDS": WAIT_SECONDS,
        }
        settings.update(overrides)
        application = create_app("testing", settings)
        created.append(application)
        return application

    yield build

    from app.extensions import db

    for application in created:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()
    engine = create_engine(database_url)
    with engine.begin() as conn:
        for table in reversed(db.metadata.sorted_tables):
            conn.execute(delete(table))
        for table in db.metadata.sorted_tables:
            if table.name in seed_rows:
                conn.execute(table.insert(), seed_rows[table.name])
    engine.dispose()


@pytest.fixture
def app(app_factory):
    application = app_factory()
    with application.app_context():
        yield application


@pytest.fixture
def client(app) -> Browserless:
    return Browserless(app.test_client())


@pytest.fixture
def admin(app):
    return make_user(app, "alice", role="admin")


@pytest.fixture
def trader(app):
    return make_user(app, "bob", role="trader")


@pytest.fixture
def admin_client(app, admin) -> Browserless:
    c = Browserless(app.test_client())
    c.login("alice")
    return c


@pytest.fixture
def trader_client(app, trader) -> Browserless:
    c = Browserless(app.test_client())
    c.login("bob")
    return c


# --- the paper broker, for everything that talks to OpenAlgo -------------------------------------

@pytest.fixture(scope="session")
def broker() -> Iterator[BrokerProc]:
    """One deterministic paper broker per test session, on free loopback ports."""
    bp = start_broker("--no-rate-limit", "--ws-auth-timeout", "1.0")
    yield bp
    bp.stop()


@pytest.fixture(scope="session")
def sim(broker: BrokerProc) -> Iterator[Admin]:
    admin = Admin(broker.url)
    yield admin
    admin.http.close()


@pytest.fixture
def apikey(sim: Admin) -> Iterator[str]:
    """A fresh paper account with default funds; prices reset; faults cleared afterwards."""
    sim.set_spot(NIFTY=26000, BANKNIFTY=59000, SENSEX=85000, SBIN=800, RELIANCE=1400)
    key = sim.new_account()
    yield key
    sim.call("DELETE", "/sim/faults")
    sim.call("DELETE", f"/sim/accounts/{key}")


@pytest.fixture
def paper_app(app_factory, broker):
    """An app whose "Add paper account" provisions on the session's paper broker (3 s read timeout)."""
    application = app_factory(PAPER_BROKER_URL=broker.url, PAPER_BROKER_WS_URL=broker.ws_url,
                              PAPERBROKER_ADMIN_TOKEN=ADMIN_TOKEN, BROKER_READ_TIMEOUT=3.0)
    with application.app_context():
        yield application


@pytest.fixture
def alice(paper_app) -> Browserless:
    """A trader signed in on paper_app."""
    make_user(paper_app, "alice")
    client = Browserless(paper_app.test_client())
    client.login("alice")
    return client
