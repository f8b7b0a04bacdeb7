"""The payoff chart of /strategy/<id> in a real browser: an iron condor from the built-in
template on three paper accounts draws its expiry and T+0 curves with lightweight-charts (served
from app/static/vendor/), marks the spot and the breakevens the preview JSON gives, logs no CSP
violation or page error, and is cleared once the market-data account fails."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from app.services.strategy import preview as preview_service
from tests.browser.conftest import TIMEOUT_MS, LiveServer, sign_in
from tests.helpers import Browserless, make_user
from tests.support.paperbroker import START
from tests.support.strategies import send

pytestmark = pytest.mark.browser

# Recorded in the page before any of its scripts run: CSP violations (inline script or style,
# a foreign origin) as the browser reports them to the document.
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""

# Pixels of the chart's canvases close to a colour (the lines are antialiased).
COUNT_COLOUR = """([el, rgb]) => {
  let n = 0;
  for (const c of el.querySelectorAll("canvas")) {
    if (!c.width || !c.height) continue;
    const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < px.length; i += 4) {
      const off = Math.abs(px[i] - rgb[0]) + Math.abs(px[i + 1] - rgb[1]) + Math.abs(px[i + 2] - rgb[2]);
      if (px[i + 3] > 200 && off < 60) n++;
    }
  }
  return n;
}"""
EXPIRY_RGB = [0x25, 0x63, 0xEB]  # payoff_chart.js COLORS.expiry
TODAY_RGB = [0xF5, 0x9E, 0x0B]  # COLORS.today


@pytest.fixture
def condor_page(browser, app_factory, broker, sim, monkeypatch):
    monkeypatch.setattr(preview_service, "utcnow", lambda: datetime.fromisoformat(START))
    sim.set_spot(NIFTY=26000, BANKNIFTY=59000, SENSEX=85000)
    keys = [sim.new_account() for _ in range(3)]
    application = app_factory()
    make_user(application, "alice")
    with application.app_context():
        setup = Browserless(application.test_client())
        setup.login("alice")
        for name, key in zip(("Alpha", "Beta", "Gamma"), keys, strict=True):
            added = setup.post_form("/accounts/add", {"account_name": name, "host_url": broker.url,
                                                      "websocket_url": broker.ws_url, "api_key": key},
                                    page="/accounts/add")
            assert added.status_code == 302
        accounts = [{"account_id": a["id"]} for a in setup.get("/api/accounts").get_json()["accounts"]]
        assert len(accounts) == 3
        [condor] = [t for t in setup.get("/api/templates").get_json()["templates"]
                    if t["builtin"] and t["name"] == "Iron condor"]
        created = send(setup, "POST", f"/api/templates/{condor['id']}/instantiate",
                       {"name": "Condor chart", "accounts": accounts})
        assert created.status_code == 201, created.get_json()
        strategy_id = created.get_json()["id"]
    with LiveServer(application) as server:
        context = browser.new_context(base_url=server.url, viewport={"width": 1400, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        context.add_init_script(WATCH_CSP)
        page = context.new_page()
        problems: list[str] = []
        # Errors, and anything about the CSP whatever its level (not the test's own canvas readback warning).
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                if m.type == "error" or "Content Security Policy" in m.text or "Refused" in m.text else None)
        page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        sign_in(page)
        with page.expect_response(lambda r: r.url.endswith(f"/api/strategies/{strategy_id}/preview"),
                                  timeout=TIMEOUT_MS) as answer:
            page.goto(f"/strategy/{strategy_id}")
        yield page, answer.value.json(), problems, keys
        context.close()
    sim.call("DELETE", "/sim/faults")
    for key in keys:
        sim.call("DELETE", f"/sim/accounts/{key}")


def test_iron_condor_chart_draws_both_curves_marks_spot_and_breakevens_under_the_csp(condor_page, sim):
    page, data, problems, keys = condor_page
    assert data["status"] == "ok", data
    payoff = data["payoff"]
    points = payoff["points"]
    assert len(points) == preview_service.CHART_POINTS
    assert all(p["today"] is not None for p in points)
    assert len(payoff["breakevens"]) == 2
    assert len(data["sizing"]["accounts"]) == 3

    chart = page.get_by_test_id("payoff-chart")
    expect(chart).to_have_attribute("data-chart-state", "drawn")
    expect(chart).to_have_attribute("data-expiry-points", str(len(points)))
    expect(chart).to_have_attribute("data-today-points", str(len(points)))
    expect(chart).to_have_attribute("data-spot", payoff["spot"])
    expect(chart).to_have_attribute("data-breakevens", "2")
    # The spot is marked on the grid point nearest it: within half a step of the JSON's spot.
    prices = [Decimal(p["price"]) for p in points]
    spot_at = Decimal(chart.get_attribute("data-spot-at"))
    assert min(prices, key=lambda p: abs(p - spot_at)) == spot_at
    assert abs(spot_at - Decimal(payoff["spot"])) <= (prices[1] - prices[0]) / 2

    canvas = chart.locator("canvas").first
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 200
    # Both curves are on the canvas (their own colours), not only in the attributes.
    page.wait_for_function(f"(el) => ({COUNT_COLOUR})([el, {EXPIRY_RGB}]) > 100 && "
                           f"({COUNT_COLOUR})([el, {TODAY_RGB}]) > 100", arg=chart.element_handle(),
                           timeout=TIMEOUT_MS)
    # No attribution <style> element and no TradingView link inside the chart (logo is off).
    assert chart.locator("a#tv-attr-logo").count() == 0

    assert page.evaluate("window.__cspViolations") == []
    assert problems == []

    # The market-data accounts fail: the chart goes with the payoff, nothing stale stays drawn.
    for key in keys:
        sim.post("/sim/faults", {"apikey": key, "error_rate": 1.0})
    page.get_by_test_id("preview-refresh").click()
    expect(page.get_by_test_id("preview-error")).to_contain_text("failed")
    expect(chart).to_have_attribute("data-chart-state", "empty")
    expect(chart).to_have_attribute("data-expiry-points", "")
    expect(chart.locator("canvas")).to_have_count(0)
    assert page.evaluate("window.__cspViolations") == []
    assert [p for p in problems if not p.startswith("console error: Failed to load resource")] == []
