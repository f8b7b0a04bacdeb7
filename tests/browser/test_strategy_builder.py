"""The strategy builder in a real browser: an iron condor from the built-in template, legs
added, removed and reordered by the page's script without losing other fields, saved; and
invalid times and an empty leg list answered with field errors."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_flows import register_first_admin

pytestmark = pytest.mark.browser


def _legs(page):
    return page.locator("[data-legs] [data-leg]")


def test_iron_condor_from_template_edit_legs_and_save(new_page):
    page = new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    register_first_admin(page)

    page.locator("nav").get_by_test_id("nav-strategies").click()
    expect(page).to_have_url(re.compile(r"/strategy$"))
    page.get_by_test_id("use-template-Iron condor").click()
    expect(page).to_have_url(re.compile(r"/strategy/builder\?template=\d+$"))
    expect(_legs(page)).to_have_count(4)
    expect(page.locator("#name")).to_have_value("Iron condor")

    page.fill("#name", "My condor")
    page.fill("#max_loss", "6000")
    page.fill("#legs-1-strike_offset", "8")  # change a leg: the CE hedge moves further out
    expect(page.locator("#legs-0-target_premium")).to_be_hidden()  # OTM uses an offset, not a premium

    page.locator("[data-add-leg]").click()
    expect(_legs(page)).to_have_count(5)
    new_leg = _legs(page).nth(4)
    expect(new_leg.locator("[data-leg-title]")).to_have_text("Leg 5")
    page.select_option("#legs-4-strike_method", "premium_near")
    expect(page.locator("#legs-4-target_premium")).to_be_visible()
    expect(page.locator("#legs-4-strike_offset")).to_be_hidden()
    page.fill("#legs-4-target_premium", "45")
    page.select_option("#legs-4-option_type", "PE")
    page.fill("#legs-4-lots", "3")

    new_leg.locator('[data-leg-action="up"]').click()  # the new leg becomes leg 4
    expect(page.locator("#legs-3-target_premium")).to_have_value("45")
    expect(page.locator("#legs-4-strike_offset")).to_have_value("6")  # the PE hedge moved down
    _legs(page).nth(0).locator('[data-leg-action="remove"]').click()  # drop the CE sell
    expect(_legs(page)).to_have_count(4)
    expect(page.locator("#legs-0-strike_offset")).to_have_value("8")  # the changed CE hedge is now first
    expect(page.locator("#legs-2-target_premium")).to_have_value("45")
    expect(page.locator("#legs-2-lots")).to_have_value("3")
    expect(page.locator("#name")).to_have_value("My condor")  # the rest of the form is untouched
    expect(page.locator("#max_loss")).to_have_value("6000")

    page.get_by_test_id("save-strategy").click()
    expect(page.get_by_test_id("flashes")).to_contain_text("Strategy My condor saved.")
    expect(page).to_have_url(re.compile(r"/strategy/\d+$"))
    strategy_id = int(page.url.rsplit("/", 1)[1])
    saved = page.request.get(f"/api/strategies/{strategy_id}").json()
    assert saved["name"] == "My condor" and saved["max_loss"] == "6000"
    assert [(x["action"], x["option_type"], x["strike_method"], x["strike_offset"], x["target_premium"], x["lots"])
            for x in saved["legs"]] == [
        ("BUY", "CE", "otm", 8, None, 1), ("SELL", "PE", "otm", 2, None, 1),
        ("SELL", "PE", "premium_near", None, "45", 3), ("BUY", "PE", "otm", 6, None, 1)]
    assert errors == []


def test_invalid_times_and_no_legs_show_field_errors(new_page):
    page = new_page()
    register_first_admin(page)
    page.goto("/strategy/builder")
    expect(_legs(page)).to_have_count(1)

    page.fill("#name", "Broken")
    page.fill("#entry_time", "08:30")
    page.fill("#exit_time", "15:10")
    page.fill("#square_off_time", "15:00")
    _legs(page).nth(0).locator('[data-leg-action="remove"]').click()
    expect(_legs(page)).to_have_count(0)
    page.get_by_test_id("save-strategy").click()

    expect(page.locator('[data-field-error="legs"]')).to_have_text("Add at least one leg.")
    expect(page.locator('[data-field-error="entry_time"]')).to_contain_text("within market hours (09:15–15:30 IST)")
    expect(page.locator('[data-field-error="square_off_time"]')).to_have_text(
        "The square-off time must be at or after the exit time.")
    expect(page.locator("#name")).to_have_value("Broken")
    assert page.request.get("/api/strategies").json() == {"strategies": []}
