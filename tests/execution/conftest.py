"""Fixtures shared by the engine tests: an app tuned for the session paper broker, and one account
with its own engine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.broker.client import OpenAlgoClient
from app.services.execution.engine import ExecutionEngine
from tests.helpers import make_user
from tests.support.execution import SKEW, add_paper_account


@pytest.fixture
def engine_app(app_factory, broker) -> Iterator[Any]:
    """An app with a 1 s read timeout, the clock-skew allowance widened and fast reconcile reads."""
    app = app_factory(BROKER_READ_TIMEOUT=1.0, EXECUTION_CLOCK_SKEW_SECONDS=SKEW,
                      EXECUTION_RECONCILE_INTERVAL_SECONDS=0.3)
    with app.app_context():
        yield app


@pytest.fixture
def one(app_factory, broker, sim, apikey) -> Iterator[dict[str, Any]]:
    """alice with one paper account, a direct client of it and an engine (3 s read timeout)."""
    app = app_factory(BROKER_READ_TIMEOUT=3.0, EXECUTION_CLOCK_SKEW_SECONDS=SKEW,
                      EXECUTION_RECONCILE_INTERVAL_SECONDS=0.3)
    with app.app_context():
        user = make_user(app, "alice")
        account_id = add_paper_account(app, user.id, "One", broker.url, apikey)
        client = OpenAlgoClient(broker.url, apikey)
        engine = ExecutionEngine(app, holder="test-engine")
        yield {"app": app, "user": user, "account": account_id, "key": apikey, "client": client, "engine": engine}
        engine.on_stop()
        client.close()
        sim.partial_fills(apikey, None)
