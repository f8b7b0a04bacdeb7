"""The "Signed-in devices" page in a real browser: one browser ends another's sign-in."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_flows import ADMIN_PASSWORD, login, register_first_admin

pytestmark = pytest.mark.browser


def test_devices_page_ends_the_other_browser_sign_in(new_page):
    laptop = new_page()
    register_first_admin(laptop)
    phone = new_page({"width": 390, "height": 844})
    login(phone, "chief", ADMIN_PASSWORD)
    expect(phone).to_have_url(re.compile(r"/dashboard$"))

    laptop.locator("nav").get_by_test_id("nav-devices").click()
    expect(laptop).to_have_url(re.compile(r"/auth/sessions$"))
    rows = laptop.locator("tr[data-session]")
    expect(rows).to_have_count(2)
    expect(laptop.get_by_test_id("this-device")).to_have_count(1)
    other = laptop.locator("tr[data-session]", has_not=laptop.get_by_test_id("this-device"))
    other.get_by_role("button", name="Sign out").click()
    expect(laptop.get_by_test_id("flashes")).to_contain_text("Signed out")
    expect(rows).to_have_count(1)

    phone.reload()
    expect(phone).to_have_url(re.compile(r"/auth/login"))
    laptop.goto("/dashboard")
    expect(laptop).to_have_url(re.compile(r"/dashboard$"))
