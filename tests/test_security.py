"""CSRF, security headers, cookies, error pages, rate limits and encryption."""

import os
import re
import uuid

import pytest
from cryptography.fernet import Fernet

from app.errors import MESSAGES
from app.security.encryption import EncryptionError, Encryptor, mask_secret
from tests.helpers import Browserless


def test_post_without_csrf_token_is_refused_with_form_error(app, client, trader):
    response = client.post("/auth/login", data={"identifier": "bob", "password": "x"})
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)


def test_json_post_without_csrf_header_gets_json_400(app, trader_client):
    response = trader_client.post("/auth/logout", json={})
    assert response.status_code == 400
    assert response.is_json
    assert response.json["status"] == "error"
    assert "security token" in response.json["message"]


def test_json_post_with_csrf_header_is_accepted(app, trader_client):
    response = trader_client.post_json("/auth/logout", page="/dashboard")
    assert response.status_code == 302
    assert trader_client.get("/dashboard").status_code == 302


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_other_unsafe_methods_need_csrf_too(app_factory, method):
    application = app_factory()

    @application.route("/probe", methods=["PUT", "PATCH", "DELETE"])
    def probe():
        return {"status": "success"}

    client = Browserless(application.test_client())
    assert client.open("/probe", method=method, json={}).status_code == 400
    token = client.token()
    assert client.open("/probe", method=method, json={}, headers={"X-CSRFToken": token}).status_code == 200


def test_security_headers_on_every_page(app, client):
    response = client.get("/auth/login")
    csp = response.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert "script-src 'self' 'nonce-" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert f'nonce="{nonce}"' in response.get_data(as_text=True)
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "Strict-Transport-Security" not in response.headers


def test_csp_nonce_changes_per_request(app, client):
    first = client.get("/auth/login").headers["Content-Security-Policy"]
    second = client.get("/auth/login").headers["Content-Security-Policy"]
    assert first != second


def test_hsts_when_served_over_https(app, client):
    response = client.get("/auth/login", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_templates_have_no_inline_scripts_or_handlers(app):
    from pathlib import Path

    for path in Path("app/templates").rglob("*.html"):
        text = path.read_text()
        for tag in re.findall(r"<script[^>]*>", text):
            assert "src=" in tag or "csp_nonce()" in tag, (path, tag)
        assert not re.search(r"\son(click|submit|load|change)=", text), path


def test_session_cookie_flags(app, client, trader):
    response = client.login("bob")
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # development/testing over plain http


def test_production_cookies_are_secure(monkeypatch):
    from app import create_app

    monkeypatch.setenv("SECRET_KEY", "x" * 48)
    monkeypatch.setenv("ENCRYPTION_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    monkeypatch.setenv("LOG_TO_FILE", "false")
    production = create_app("production")
    assert production.config["SESSION_COOKIE_SECURE"] is True
    assert production.config["REMEMBER_COOKIE_SECURE"] is True
    assert production.config["SESSION_COOKIE_HTTPONLY"] is True
    assert production.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_404_html_and_json(app, client):
    page = client.get("/no-such-page")
    assert page.status_code == 404
    assert 'data-testid="error-page"' in page.get_data(as_text=True)
    api = client.get("/no-such-page", headers={"Accept": "application/json"})
    assert api.status_code == 404 and api.json == {"status": "error", "message": "There is nothing at this address.",
                                                   "code": 404}


def test_unexpected_error_shows_no_stack_trace(app_factory):
    application = app_factory()

    @application.route("/boom")
    def boom():
        raise RuntimeError("secret internals")

    client = Browserless(application.test_client())
    page = client.get("/boom")
    assert page.status_code == 500
    text = page.get_data(as_text=True)
    assert "secret internals" not in text and "Traceback" not in text
    assert "Something went wrong" in text
    api = client.get("/boom", headers={"Accept": "application/json"})
    assert api.status_code == 500 and api.json["status"] == "error"
    assert "secret internals" not in api.get_data(as_text=True)


def test_unexpected_error_whose_page_cannot_render_is_plain_500(app_factory, monkeypatch):
    application = app_factory()

    @application.route("/boom")
    def boom():
        raise RuntimeError("secret internals")

    def broken_template(*args, **kwargs):
        raise RuntimeError("template internals")

    monkeypatch.setattr("app.errors.render_template", broken_template)
    page = Browserless(application.test_client()).get("/boom")
    assert page.status_code == 500 and page.mimetype == "text/plain"
    assert page.get_data(as_text=True) == "Something went wrong: " + MESSAGES[500] + "\n"


def test_403_page_for_non_admin(app, trader_client):
    page = trader_client.get("/admin/users")
    assert page.status_code == 403
    assert "You do not have access" in page.get_data(as_text=True)


def test_auth_tier_limits_login_posts(app_factory, trader):
    application = app_factory(RATELIMIT_AUTH="3 per minute")
    client = Browserless(application.test_client())
    token = client.token()
    codes = [client.post("/auth/login", data={"identifier": "bob", "password": "Wr0ng!pass",
                                              "csrf_token": token}).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    page = client.post("/auth/login", data={"identifier": "bob", "password": "x", "csrf_token": token})
    assert page.status_code == 429 and "too fast" in page.get_data(as_text=True)
    api = client.post("/auth/login", json={}, headers={"X-CSRFToken": token})
    assert api.status_code == 429 and api.is_json
    # GET of the login page is not counted against the auth tier.
    assert client.get("/auth/login").status_code == 200


def test_global_tier_limits_everything(app_factory):
    application = app_factory(RATELIMIT_GLOBAL="5 per minute")
    client = Browserless(application.test_client())
    codes = [client.get("/auth/login").status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    assert client.get("/healthz").status_code == 200  # probes are exempt


@pytest.mark.redis
def test_redis_limiter_is_shared_between_processes(app_factory, trader):
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not redis_url:
        pytest.skip("TEST_REDIS_URL not set")
    prefix = f"algomirror-test-{uuid.uuid4().hex}"
    settings = {"REDIS_URL": redis_url, "RATELIMIT_AUTH": "4 per minute", "RATELIMIT_KEY_PREFIX": prefix}
    worker_one = app_factory(**settings)
    client_one = Browserless(worker_one.test_client())
    token = client_one.token()
    for _ in range(3):
        client_one.post("/auth/login", data={"identifier": "bob", "password": "Wr0ng!pass", "csrf_token": token})
    # A second app instance builds its own storage connection, as another gunicorn worker would.
    worker_two = app_factory(**settings)
    assert type(worker_two.extensions["algomirror_limiter"].storage).__name__ == "RedisStorage"
    client_two = Browserless(worker_two.test_client())
    token_two = client_two.token()
    form = {"identifier": "bob", "password": "Wr0ng!pass", "csrf_token": token_two}
    assert client_two.post("/auth/login", data=form).status_code == 401
    assert client_two.post("/auth/login", data=form).status_code == 429
    worker_two.extensions["algomirror_limiter"].storage.reset()


def test_memory_limiter_is_per_process(app_factory, trader):
    """The contrast to the Redis test: memory storage forgets counts across app instances."""
    settings = {"RATELIMIT_AUTH": "2 per minute"}
    first = Browserless(app_factory(**settings).test_client())
    token = first.token()
    for _ in range(2):
        first.post("/auth/login", data={"identifier": "bob", "password": "Wr0ng!pass", "csrf_token": token})
    second_app = app_factory(**settings)
    second = Browserless(second_app.test_client())
    assert type(second_app.extensions["algomirror_limiter"].storage).__name__ == "MemoryStorage"
    token = second.token()
    assert second.post("/auth/login", data={"identifier": "bob", "password": "Wr0ng!pass",
                                            "csrf_token": token}).status_code == 401


def test_encryptor_round_trip_and_rotation():
    old = Encryptor.from_config(Fernet.generate_key().decode())
    token = old.encrypt("api-key-123456")
    assert "api-key" not in token
    assert old.decrypt(token) == "api-key-123456"
    rotated = old.with_new_primary(Fernet.generate_key().decode())
    new_token = rotated.rotate(token)
    assert rotated.decrypt(new_token) == "api-key-123456"
    only_new = Encryptor((rotated.keys[0],))
    assert only_new.decrypt(new_token) == "api-key-123456"
    with pytest.raises(EncryptionError):
        only_new.decrypt(token)


def test_encryptor_rejects_bad_keys():
    with pytest.raises(EncryptionError):
        Encryptor.from_config("not-a-fernet-key")
    with pytest.raises(EncryptionError):
        Encryptor.from_config(" , ")


def test_mask_secret_shows_last_four_only():
    assert mask_secret("abcdef123456") == "••••••••3456"
    assert mask_secret("abc") == "••••••••"
    assert mask_secret("") == ""


def test_api_tier_is_one_bucket_across_data_routes(app_factory):
    from tests.helpers import make_user

    application = app_factory(RATELIMIT_API="3 per minute")
    make_user(application, "zed")
    client = Browserless(application.test_client())
    client.login("zed")
    assert [client.get("/trading/funds").status_code for _ in range(3)] == [200, 200, 200]
    assert client.get("/trading/positions").status_code == 429
    assert client.get("/api/accounts").status_code == 429
    assert client.get("/dashboard").status_code == 200  # pages outside the tier still answer


def test_the_default_api_tier_holds_a_trader_watching_two_runs_the_dashboard_and_the_chain(app_factory):
    """A minute of the live pages' polls (two run pages at 1.5 s, the dashboard at 5 s, the option
    chain at 3 s: 112 requests) stays inside the default budget, which still ends at 300."""
    from tests.helpers import make_user

    application = app_factory()
    assert application.config["RATELIMIT_API"] == "300 per minute"
    make_user(application, "tara")
    client = Browserless(application.test_client())
    client.login("tara")
    minute = ["/api/runs/999999"] * 80 + ["/api/dashboard"] * 12 + ["/api/accounts"] * 20
    assert {client.get(url).status_code for url in minute} == {404, 200}
    rest = [client.get("/api/accounts").status_code for _ in range(300 - len(minute))]
    assert set(rest) == {200}
    assert client.get("/api/runs/999999").status_code == 429


def test_api_tier_counts_per_user_not_per_ip(app_factory):
    from tests.helpers import make_user

    application = app_factory(RATELIMIT_API="2 per minute")
    clients = []
    for name in ("mum", "dad"):
        make_user(application, name)
        client = Browserless(application.test_client())
        client.login(name)
        clients.append(client)
    mum, dad = clients
    assert [mum.get("/api/accounts").status_code for _ in range(3)] == [200, 200, 429]
    assert dad.get("/api/accounts").status_code == 200  # same IP, own budget


def test_heavy_tier_does_not_count_opening_forms(app_factory):
    from tests.helpers import make_user

    application = app_factory(RATELIMIT_HEAVY="2 per minute")
    make_user(application, "zoe")
    client = Browserless(application.test_client())
    client.login("zoe")
    assert [client.get("/accounts/add").status_code for _ in range(4)] == [200] * 4
    codes = [client.post_form("/accounts/add", {"account_name": "x", "host_url": "ftp://x", "api_key": "k"},
                              page="/accounts/add").status_code for _ in range(3)]
    assert codes == [400, 400, 429]
