"""Rate limits counted per API key (an option) instead of per client address (OpenAlgo's default)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

LABEL = {"message": "10 per 1 second"}


def hits(http: httpx.Client, route: str, body: dict[str, Any], n: int) -> list[int]:
    """``n`` requests as fast as one client sends them; their status codes."""
    return [http.post(route, json=body).status_code for _ in range(n)]


@pytest.fixture
def limited(admin: Any) -> Iterator[Any]:
    """The session broker with rate limits on (10 orders/s); back to off and per-IP afterwards."""
    yield admin
    assert admin.rate_limits(enabled=False, by="ip", order=10, api=50)["by"] == "ip"


def test_by_apikey_from_the_command_line_gives_each_key_its_own_10(launch: Any) -> None:
    bp = launch("--rate-limit-by", "apikey")
    a, b = bp.keys
    with httpx.Client(base_url=f"{bp.url}/api/v1", timeout=20) as http:
        # Requests refused by validation (no strategy) still count, as in OpenAlgo; they are fast.
        first_a = hits(http, "/placeorder", {"apikey": a}, 10)
        first_b = hits(http, "/placeorder", {"apikey": b}, 10)
        eleventh_a = http.post("/placeorder", json={"apikey": a})
        eleventh_b = http.post("/placeorder", json={"apikey": b})
    assert first_a == first_b == [400] * 10
    assert (eleventh_a.status_code, eleventh_a.json()) == (429, LABEL)
    assert (eleventh_b.status_code, eleventh_b.json()) == (429, LABEL)


def test_by_ip_two_keys_share_10_per_second(http: httpx.Client, limited: Any, apikey: str) -> None:
    other = limited.new_account()
    try:
        assert limited.rate_limits(enabled=True, by="ip", order=10)["by"] == "ip"
        codes = hits(http, "/placeorder", {"apikey": apikey}, 5) + hits(http, "/placeorder", {"apikey": other}, 5)
        over_a = http.post("/placeorder", json={"apikey": apikey})
        over_b = http.post("/placeorder", json={"apikey": other})
    finally:
        limited.rate_limits(enabled=False)
        limited.call("DELETE", f"/sim/accounts/{other}")
    assert codes == [400] * 10
    assert [(r.status_code, r.json()) for r in (over_a, over_b)] == [(429, LABEL), (429, LABEL)]


def test_by_apikey_set_at_run_time_separates_keys_and_keyless_requests_share_the_address(
        http: httpx.Client, limited: Any, apikey: str) -> None:
    other = limited.new_account()
    try:
        shown = limited.call("POST", "/sim/rate-limits", {"enabled": True, "by": "apikey", "order": 10})
        assert (shown["enabled"], shown["by"], shown["limits"]["order"]) == (True, "apikey", "10 per 1 second")
        mine = hits(http, "/placeorder", {"apikey": apikey}, 11)
        theirs = hits(http, "/placeorder", {"apikey": other}, 11)
        keyless = hits(http, "/placeorder", {"strategy": "t"}, 11)  # falls back to the client address
        status = limited.call("GET", "/sim/status")["rate_limits"]
    finally:
        limited.rate_limits(enabled=False, by="ip")
        limited.call("DELETE", f"/sim/accounts/{other}")
    assert mine == theirs == keyless == [400] * 10 + [429]
    assert (status["enabled"], status["by"]) == (True, "apikey")


def test_by_apikey_reads_the_key_of_a_get_route_from_the_query(http: httpx.Client, limited: Any,
                                                               apikey: str) -> None:
    other = limited.new_account()
    try:
        limited.rate_limits(enabled=True, by="apikey", api=3)
        mine = [http.get("/instruments", params={"apikey": apikey, "exchange": "NSE"}).status_code
                for _ in range(4)]
        theirs = http.get("/instruments", params={"apikey": other, "exchange": "NSE"})
    finally:
        limited.rate_limits(enabled=False, by="ip", api=50)
        limited.call("DELETE", f"/sim/accounts/{other}")
    assert mine == [200] * 3 + [429]
    assert theirs.status_code == 200


@pytest.mark.parametrize("body", [{"by": "account"}, {"by": 1}, {"bogus": 3}])
def test_bad_rate_limit_settings_are_a_400_and_change_nothing(admin: Any, body: dict[str, Any]) -> None:
    resp = admin.http.post("/sim/ratelimits", json=body)
    assert resp.status_code == 400 and resp.json()["status"] == "error"
    assert admin.call("GET", "/sim/ratelimits")["by"] == "ip"


def test_bad_rate_limit_by_option_stops_the_process(tmp_path: Path) -> None:
    cli = subprocess.run([sys.executable, "-m", "paperbroker", "--rate-limit-by", "account"],
                         capture_output=True, text=True, timeout=120)
    config = tmp_path / "paper.json"
    config.write_text(json.dumps({"rate_limit_by": "account"}))
    from_file = subprocess.run([sys.executable, "-m", "paperbroker", "--config", str(config)],
                               capture_output=True, text=True, timeout=120)
    assert cli.returncode == 2 and "--rate-limit-by" in cli.stderr
    assert from_file.returncode == 2 and "rate_limit_by must be 'ip' or 'apikey'" in from_file.stderr
