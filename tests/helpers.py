"""Test helpers: user factory, a test client that handles CSRF like a browser, and condition waits."""

from __future__ import annotations

import contextvars
import re
import time
from collections.abc import Callable

from flask import has_app_context

from app.extensions import db
from app.models.users import User
from app.services.users import hash_password

PASSWORD = "Str0ng!Passw0rd"
_CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')
_META_RE = re.compile(r'<meta name="csrf-token" content="([^"]+)"')

# How long a test waits for something that should happen "soon". Generous on purpose: CI shares
# its machine, and a condition that holds in 50 ms when idle can take seconds under load. A wait
# returns as soon as the condition holds, so a generous deadline costs nothing when things work.
WAIT_SECONDS = 60.0


def wait_until[T](predicate: Callable[[], T], timeout: float = WAIT_SECONDS, interval: float = 0.05,
               message: str | None = None) -> T:
    """Call ``predicate`` until it returns a truthy value and return that value.

    Raises AssertionError (with ``message``, or the predicate's name) if ``timeout`` seconds pass
    first. The predicate is always tried once more at the deadline, so a slow last poll still counts.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", "condition")
            raise AssertionError(f"{what}: not met within {timeout:g} s")
        time.sleep(interval)


def make_user(app, username: str, *, role: str = "trader", password: str = PASSWORD, active: bool = True,
              must_change_password: bool = False, email: str | None = None) -> User:
    with app.app_context():
        user = User(username=username, email=email or f"{username}@example.com", role=role,
                    password_hash=hash_password(password), active=active,
                    must_change_password=must_change_password)
        db.session.add(user)
        db.session.commit()
        db.session.refresh(user)
        db.session.expunge(user)
        return user


def csrf_from(html: str) -> str:
    match = _META_RE.search(html) or _CSRF_RE.search(html)
    assert match, "no CSRF token in page"
    return next(g for g in match.groups() if g)


def _end_test_session() -> None:
    if has_app_context():
        db.session.remove()


class Browserless:
    """Wraps Flask's test client: fetches a page for its CSRF token before posting.

    Each request runs in a fresh context, as in a real server: otherwise Flask reuses the
    test's pushed app context, and `g` (Flask-Login's cached user) leaks between clients.
    The test's own database session is closed around each request so it never holds a
    lock or a stale identity map across one.
    """

    def __init__(self, client):
        self.client = client

    def __getattr__(self, name):
        return getattr(self.client, name)

    def open(self, *args, **kwargs):
        _end_test_session()
        try:
            return contextvars.Context().run(self.client.open, *args, **kwargs)
        finally:
            _end_test_session()

    def get(self, *args, **kwargs):
        return self.open(*args, method="GET", **kwargs)

    def post(self, *args, **kwargs):
        return self.open(*args, method="POST", **kwargs)

    def put(self, *args, **kwargs):
        return self.open(*args, method="PUT", **kwargs)

    def delete(self, *args, **kwargs):
        return self.open(*args, method="DELETE", **kwargs)

    def token(self, page: str = "/auth/login") -> str:
        return csrf_from(self.get(page).get_data(as_text=True))

    def post_form(self, url: str, data: dict | None = None, *, page: str | None = None, **kwargs):
        payload = dict(data or {})
        payload.setdefault("csrf_token", self.token(page or "/auth/login"))
        return self.post(url, data=payload, **kwargs)

    def post_json(self, url: str, body: dict | None = None, *, page: str = "/auth/login", **kwargs):
        headers = {"X-CSRFToken": self.token(page)}
        return self.post(url, json=body or {}, headers=headers, **kwargs)

    def login(self, identifier: str, password: str = PASSWORD, remember: bool = False, follow: bool = False):
        data = {"identifier": identifier, "password": password}
        if remember:
            data["remember"] = "y"
        return self.post_form("/auth/login", data, follow_redirects=follow)
