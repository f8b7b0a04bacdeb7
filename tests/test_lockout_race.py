"""Lockout under concurrency: 30 parallel wrong passwords reach the password hash exactly
LOGIN_MAX_FAILURES times and write exactly one account_locked event.

Runs on the suite's database (SQLite by default, PostgreSQL with TEST_DATABASE_URL), with
real threads each driving its own test client against one app.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models.audit import ActivityLog
from app.models.users import User
from app.services import users
from tests.helpers import PASSWORD, Browserless, csrf_from

PARALLEL = 30
WRONG = "Wr0ng!password"
NEW_PASSWORD = "N3w!Secure-Pass"
DEADLINE_SECONDS = 120


@pytest.fixture
def hash_checks(monkeypatch) -> Counter:
    """Counts the real password-hash checks, per stored hash."""
    calls: Counter = Counter()
    lock = threading.Lock()
    real = users.verify_password

    def counting(password_hash: str, password: str) -> bool:
        with lock:
            calls[password_hash] += 1
        return real(password_hash, password)

    monkeypatch.setattr(users, "verify_password", counting)
    return calls


def _in_parallel(prepare, fire) -> list[int]:
    """Prepare PARALLEL clients one by one, then fire them all at once; returns the statuses."""
    prepared = [prepare() for _ in range(PARALLEL)]
    start = threading.Barrier(PARALLEL, timeout=DEADLINE_SECONDS)

    def run(item) -> int:
        start.wait()
        return fire(item)

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        futures = [pool.submit(run, item) for item in prepared]
        return [f.result(timeout=DEADLINE_SECONDS) for f in futures]


def _entries(action: str) -> list[ActivityLog]:
    db.session.expire_all()
    return list(db.session.scalars(select(ActivityLog).where(ActivityLog.action == action)))


def _stored_hash(username: str) -> str:
    return db.session.scalar(select(User.password_hash).where(User.username == username))


def test_parallel_wrong_passwords_check_the_hash_policy_times_and_lock_once(app, trader, hash_checks):
    policy = app.config["LOGIN_MAX_FAILURES"]
    bob_hash = _stored_hash("bob")

    def prepare():
        client = Browserless(app.test_client())
        return client, client.token()

    def fire(item) -> int:
        client, token = item
        return client.post("/auth/login", data={"identifier": "bob", "password": WRONG,
                                                "csrf_token": token}).status_code

    statuses = _in_parallel(prepare, fire)

    assert statuses == [401] * PARALLEL
    assert hash_checks[bob_hash] == policy == 5
    assert len(_entries("account_locked")) == 1
    reasons = Counter(e.details["reason"] for e in _entries("login"))
    assert reasons == {"bad_credentials": policy, "locked": PARALLEL - policy}
    failures = sorted(e.details["failures"] for e in _entries("login") if e.details["reason"] == "bad_credentials")
    assert failures == [1, 2, 3, 4, 5]
    # Locked: the right password is refused without reaching the hash.
    assert Browserless(app.test_client()).login("bob", PASSWORD).status_code == 401
    assert hash_checks[bob_hash] == policy


def test_parallel_wrong_current_passwords_on_change_password_lock_once(app, trader, hash_checks):
    policy = app.config["LOGIN_MAX_FAILURES"]
    bob_hash = _stored_hash("bob")
    signed_in = Browserless(app.test_client())
    signed_in.login("bob")
    session_cookie = signed_in.client.get_cookie("session").value

    def prepare():
        client = Browserless(app.test_client())
        client.client.set_cookie("session", session_cookie)
        return client, csrf_from(client.get("/auth/change-password").get_data(as_text=True))

    def fire(item) -> int:
        client, token = item
        return client.post("/auth/change-password", data={
            "current_password": WRONG, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD,
            "csrf_token": token}).status_code

    hash_checks.clear()  # the sign-in above checked once
    statuses = _in_parallel(prepare, fire)

    assert statuses == [400] * PARALLEL
    assert hash_checks[bob_hash] == policy
    [locked] = _entries("account_locked")
    assert locked.details == {"minutes": app.config["LOCKOUT_MINUTES"], "via": "password_change"}
    reasons = Counter(e.details["reason"] for e in _entries("password_change"))
    assert reasons == {"wrong_current_password": policy, "locked": PARALLEL - policy}
    assert _stored_hash("bob") == bob_hash
    assert Browserless(app.test_client()).login("bob", PASSWORD).status_code == 401
