"""Adapter tests run against a real paper broker over loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.broker.client import ClientSettings, OpenAlgoClient
from app.broker.transport import LeanHttpClient
from tests.support.paperbroker import BrokerProc


@pytest.fixture(params=["lean", "httpx"])
def make_client(request, broker: BrokerProc) -> Iterator:
    """Clients on both HTTP clients under the SDK (BROKER_HTTP_CLIENT): the contract is the same."""
    made: list[OpenAlgoClient] = []

    def build(key: str, **settings) -> OpenAlgoClient:
        settings.setdefault("http_client", request.param)
        client = OpenAlgoClient(broker.url, key, account_label="test", settings=ClientSettings(**settings))
        if settings["http_client"] == "lean":  # not silently httpx (a proxy set in the environment)
            assert isinstance(client._api.client, LeanHttpClient)
        made.append(client)
        return client

    yield build
    for client in made:
        client.close()


@pytest.fixture
def client(make_client, apikey: str) -> OpenAlgoClient:
    return make_client(apikey)
