"""End-to-end flows in a real browser: registration, login, passwords, admin, logout."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

ADMIN_PASSWORD = "Adm1n!Secure-pass"
NEW_PASSWORD = "Fr3sh!Secure-pass"


def register_first_admin(page):
    page.goto("/")
    page.get_by_test_id("get-started").click()
    page.fill("#username", "chief")
    page.fill("#email", "chief@example.com")
    page.fill("#password", ADMIN_PASSWORD)
    page.fill("#confirm", ADMIN_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))


def login(page, identifier, password):
    page.goto("/auth/login")
    page.fill("#identifier", identifier)
    page.fill("#password", password)
    page.get_by_role("button", name="Sign in").click()


def logout(page):
    page.get_by_test_id("user-menu").click()
    page.get_by_test_id("logout").click()
    expect(page).to_have_url(re.compile(r"/auth/login"))


def test_first_user_registers_and_lands_on_dashboard_as_admin(new_page):
    page = new_page()
    register_first_admin(page)
    expect(page.get_by_test_id("dashboard-title")).to_be_visible()
    expect(page.get_by_test_id("role-badge")).to_have_text("admin")
    expect(page.locator("nav").get_by_test_id("nav-admin-users")).to_be_visible()


def test_second_visitor_cannot_register(new_page):
    register_first_admin(new_page())
    visitor = new_page()
    visitor.goto("/auth/register")
    expect(visitor.get_by_test_id("registration-closed")).to_be_visible()
    expect(visitor.locator("#password")).to_have_count(0)


def test_failed_login_shows_error(new_page):
    register_first_admin(new_page())
    page = new_page()
    login(page, "chief", "Wr0ng!password")
    expect(page.get_by_test_id("login-error")).to_contain_text("Invalid username or password")
    expect(page).to_have_url(re.compile(r"/auth/login"))


def test_registration_shows_field_errors(new_page):
    page = new_page()
    page.goto("/auth/register")
    page.fill("#username", "ab")
    page.fill("#email", "chief@example.com")
    page.fill("#password", "weakpass")
    page.fill("#confirm", "weakpass")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator('[data-field-error="username"]')).to_contain_text("Use 3 to 32 characters.")
    expect(page.locator('[data-field-error="password"]')).to_contain_text("Add an upper-case letter.")


def test_change_password_then_sign_in_with_new_one(new_page):
    page = new_page()
    register_first_admin(page)
    page.get_by_test_id("user-menu").click()
    page.get_by_role("link", name="Change password").click()
    page.fill("#current_password", ADMIN_PASSWORD)
    page.fill("#password", NEW_PASSWORD)
    page.fill("#confirm", NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_test_id("flashes")).to_contain_text("Password changed")
    logout(page)
    login(page, "chief", ADMIN_PASSWORD)
    expect(page.get_by_test_id("login-error")).to_be_visible()
    login(page, "chief", NEW_PASSWORD)
    expect(page).to_have_url(re.compile(r"/dashboard$"))


def test_admin_creates_then_deactivates_user_who_can_no_longer_log_in(new_page):
    admin = new_page()
    register_first_admin(admin)
    admin.locator("nav").get_by_test_id("nav-admin-users").click()
    admin.get_by_test_id("create-user").click()
    admin.fill("#username", "member")
    admin.fill("#email", "member@example.com")
    admin.select_option("#role", "trader")
    admin.get_by_role("button", name="Create user").click()
    one_time_password = admin.get_by_test_id("one-time-password").inner_text().strip()
    assert len(one_time_password) == 16

    member = new_page()
    login(member, "member", one_time_password)
    expect(member).to_have_url(re.compile(r"/auth/change-password$"))
    member.fill("#current_password", one_time_password)
    member.fill("#password", NEW_PASSWORD)
    member.fill("#confirm", NEW_PASSWORD)
    member.get_by_role("button", name="Change password").click()
    expect(member).to_have_url(re.compile(r"/dashboard$"))

    admin.get_by_test_id("back-to-users").click()
    admin.once("dialog", lambda dialog: dialog.accept())
    admin.get_by_test_id("deactivate-member").click()
    expect(admin.get_by_test_id("flashes")).to_contain_text("member is deactivated")
    expect(admin.locator('tr[data-user="member"]')).to_contain_text("inactive")

    member.reload()
    expect(member).to_have_url(re.compile(r"/auth/login"))  # the open session ended
    login(member, "member", NEW_PASSWORD)
    expect(member.get_by_test_id("login-error")).to_be_visible()


def test_logout(new_page):
    page = new_page()
    register_first_admin(page)
    logout(page)
    expect(page.get_by_test_id("flashes")).to_contain_text("signed out")
    page.goto("/dashboard")
    expect(page).to_have_url(re.compile(r"/auth/login"))


def test_theme_toggle_is_remembered(new_page):
    page = new_page()
    page.goto("/")
    html = page.locator("html")
    expect(html).to_have_attribute("data-theme", "light")
    page.get_by_role("button", name="Toggle light or dark theme").click()
    expect(html).to_have_attribute("data-theme", "dark")
    page.reload()
    expect(html).to_have_attribute("data-theme", "dark")


def test_phone_layout_has_menu_and_no_horizontal_scroll(new_page):
    page = new_page(viewport={"width": 375, "height": 740})
    register_first_admin(page)
    page.get_by_test_id("mobile-menu").click()
    expect(page.locator(".dropdown-content").get_by_text("Users")).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0


def test_no_csp_violations_or_script_errors(new_page):
    page = new_page()
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    register_first_admin(page)
    page.goto("/audit/")
    assert errors == []
