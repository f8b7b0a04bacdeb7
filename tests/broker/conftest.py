"""Adapter tests run against a real paper broker over loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.broker.client import ClientSettings, OpenAlgoClient
from tests.support.paperbroker import Admin, BrokerProc, start_broker


@pytest.fixture(scope="session")
def broker() -> Iterator[BrokerProc]:
    bp = start_broker("--no-rate-limit")
    yield bp
    bp.stop()


@pytest.fixture(scope="session")
def sim(broker: BrokerProc) -> Iterator[Admin]:
    admin = Admin(broker.url)
    yield admin
    admin.http.close()


@pytest.fixture
def apikey(sim: Admin) -> Iterator[str]:
    sim.set_spot(NIFTY=26000, BANKNIFTY=59000, SENSEX=85000, SBIN=800, RELIANCE=1400)
    key = sim.new_account()
    yield key
    sim.call("DELETE", "/sim/faults")
    sim.call("DELETE", f"/sim/accounts/{key}")


@pytest.fixture
def make_client(broker: BrokerProc) -> Iterator:
    made: list[OpenAlgoClient] = []

    def build(key: str, **settings) -> OpenAlgoClient:
        client = OpenAlgoClient(broker.url, key, account_label="test", settings=ClientSettings(**settings))
        made.append(client)
        return client

    yield build
    for client in made:
        client.close()


@pytest.fixture
def client(make_client, apikey: str) -> OpenAlgoClient:
    return make_client(apikey)
