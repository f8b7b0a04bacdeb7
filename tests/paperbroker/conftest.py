"""Fixtures: a real paper-broker process on free loopback ports, an admin client and fresh accounts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openalgo
import pytest

from tests.support.paperbroker import ADMIN_TOKEN, START, Admin, BrokerProc, start_broker

__all__ = ["ADMIN_TOKEN", "START", "Admin", "BrokerProc", "start_broker"]


# `broker`, `sim` and `apikey` come from tests/conftest.py; these tests call the admin client `admin`.
@pytest.fixture(scope="session")
def admin(sim: Admin) -> Admin:
    return sim


@pytest.fixture
def client(broker: BrokerProc, apikey: str) -> Iterator[openalgo.api]:
    c = openalgo.api(api_key=apikey, host=broker.url, ws_port=broker.ws_port, timeout=20.0)
    yield c
    c.close()


@pytest.fixture
def launch() -> Iterator[Any]:
    """A factory for extra broker processes (own flags); all are stopped at teardown."""
    started: list[BrokerProc] = []

    def _launch(*extra: str, **kw: Any) -> BrokerProc:
        bp = start_broker(*extra, **kw)
        started.append(bp)
        return bp

    yield _launch
    for bp in started:
        if bp.proc.poll() is None:
            bp.proc.kill()
            bp.proc.wait(timeout=60)


@pytest.fixture
def admin_for() -> Iterator[Any]:
    """Admin clients for extra broker processes."""
    made: list[Admin] = []

    def _make(bp: BrokerProc) -> Admin:
        a = Admin(bp.url)
        made.append(a)
        return a

    yield _make
    for a in made:
        a.http.close()


@pytest.fixture
def http(broker: BrokerProc) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{broker.url}/api/v1", timeout=20.0) as c:
        yield c
