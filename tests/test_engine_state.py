"""The engine's state as the services lease row shows it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, update

from app.extensions import db
from app.models.services import ServiceLease
from app.services.execution.engine_state import EngineStatus, engine_status, require_engine_online
from app.services.execution.errors import EngineOffline
from app.services.lease import DEFAULT_LEASE_NAME

NOW = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # 09:30 IST
HOLDER = "web-1:4242:abcd1234"
ACQUIRED = NOW - timedelta(hours=1)


def _lease(expires_at: datetime, name: str = DEFAULT_LEASE_NAME) -> None:
    db.session.add(ServiceLease(name=name, holder=HOLDER, acquired_at=ACQUIRED, renewed_at=NOW - timedelta(seconds=2),
                                expires_at=expires_at, generation=3))
    db.session.commit()


def test_engine_status_without_lease_row_is_offline(app):
    assert engine_status(NOW) == EngineStatus(
        online=False, holder=None, since=None, detail="No background process has ever held the services lease.")


def test_engine_status_with_only_another_lease_name_is_offline(app):
    _lease(NOW + timedelta(seconds=8), name="some-other-lease")

    assert engine_status(NOW).online is False


@pytest.mark.parametrize("expires_in", [timedelta(seconds=-5), timedelta(0)])
def test_engine_status_with_expired_lease_is_offline(app, expires_in):
    _lease(NOW + expires_in)

    status = engine_status(NOW)

    assert (status.online, status.holder, status.since) == (False, HOLDER, ACQUIRED)
    assert status.detail.startswith(f"The services lease of {HOLDER} expired at ")


def test_engine_status_with_valid_lease_is_online(app):
    _lease(NOW + timedelta(seconds=8))

    status = engine_status(NOW)

    assert status == EngineStatus(online=True, holder=HOLDER, since=ACQUIRED,
                                  detail=f"Running in {HOLDER} since 2026-03-02 08:30:00 IST.")


def test_require_engine_online_with_valid_lease_returns_status(app):
    _lease(NOW + timedelta(seconds=8))

    assert require_engine_online(NOW).holder == HOLDER


def test_require_engine_online_with_expired_lease_raises_engine_offline(app):
    _lease(NOW - timedelta(seconds=1))

    with pytest.raises(EngineOffline) as caught:
        require_engine_online(NOW)

    assert caught.value.user_message == ("The order engine is offline: no background process holds the "
                                         "services lease; nothing was queued.")
    assert str(caught.value) == caught.value.user_message


def test_engine_status_after_lease_renewed_elsewhere_reads_the_new_expiry(app, database_url):
    # A long-lived session (the dashboard's, the leader's) must not judge from a cached row.
    _lease(NOW - timedelta(seconds=1))
    assert engine_status(NOW).online is False
    db.session.commit()  # end the read transaction, as a new request would
    other = create_engine(database_url)
    try:
        with other.begin() as conn:  # the holder's renewal, on its own connection
            conn.execute(update(ServiceLease).values(expires_at=NOW + timedelta(seconds=9)))
    finally:
        other.dispose()

    assert engine_status(NOW).online is True
