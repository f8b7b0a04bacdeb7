"""Adapter tests run against a real paper broker over loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.broker.client import ClientSettings, OpenAlgoClient
from tests.support.paperbroker import BrokerProc


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
