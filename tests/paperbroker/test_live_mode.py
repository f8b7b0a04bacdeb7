"""The issue's "done when" walk-through against a ticking (non-deterministic) broker on the real clock."""

from __future__ import annotations

from typing import Any

import openalgo

from tests.helpers import wait_until


def test_done_when_flow_on_a_ticking_market(launch: Any) -> None:
    bp = launch("--tick-ms", "20", "--no-rate-limit", accounts=3, deterministic=False)
    assert len(bp.keys) == 3
    c = openalgo.api(api_key=bp.keys[0], host=bp.url, timeout=20.0)
    try:
        assert c.funds()["data"]["availablecash"] == 1000000.0
        first = c.quotes(symbol="NIFTY", exchange="NSE_INDEX")["data"]["ltp"]
        expiry = c.expiry(symbol="NIFTY", exchange="NFO", instrumenttype="options")["data"][0]
        sym = c.optionsymbol(underlying="NIFTY", exchange="NSE_INDEX", expiry_date=expiry.replace("-", ""),
                             offset="ATM", option_type="CE")
        assert sym["status"] == "success" and sym["symbol"].endswith("CE")
        oid = c.placeorder(symbol=sym["symbol"], exchange="NFO", action="BUY", quantity=65, product="NRML")["orderid"]
        assert c.orderstatus(order_id=oid)["data"]["order_status"] == "complete"
        assert [t["orderid"] for t in c.tradebook()["data"]] == [oid]
        assert c.positionbook()["data"][0]["quantity"] == 65
        wait_until(lambda: c.quotes(symbol="NIFTY", exchange="NSE_INDEX")["data"]["ltp"] != first,
                   message="the random walk did not move")
    finally:
        c.close()
    assert bp.stop() == 0
