"""Market data comes from the primary, fails over to the next healthy account, and fails back."""

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models.accounts import TradingAccount
from app.models.audit import ActivityLog
from app.services.market_source import choose_source, update_sources
from tests.helpers import make_user


def _account(name, *, primary=False, status="connected", order=10, active=True, id_=None):
    return TradingAccount(id=id_, account_name=name, is_primary=primary, connection_status=status,
                          failover_order=order, is_active=active, deleted_at=None)


@pytest.mark.parametrize(("statuses", "expected"), [
    (("connected", "connected", "connected"), "P"),
    (("unknown", "connected", "connected"), "P"),  # not known to be down: keep the primary
    (("disconnected", "connected", "connected"), "B1"),
    (("auth_error", "disconnected", "connected"), "B2"),
    (("disconnected", "disconnected", "disconnected"), "P"),  # nobody healthy: stay on the primary
])
def test_choose_source_decision_table(statuses, expected):
    accounts = [_account("P", primary=True, status=statuses[0], id_=1),
                _account("B2", status=statuses[2], order=30, id_=3),
                _account("B1", status=statuses[1], order=20, id_=2)]
    assert choose_source(accounts).account_name == expected


def test_inactive_backup_is_skipped():
    accounts = [_account("P", primary=True, status="disconnected", id_=1),
                _account("B1", order=20, active=False, id_=2), _account("B2", order=30, id_=3)]
    assert choose_source(accounts).account_name == "B2"


def test_failover_and_failback_are_audited(app):
    owner = make_user(app, "alice")
    rows = [TradingAccount(user_id=owner.id, account_name=n, host_url="http://h", api_key_encrypted="x",
                           api_key_last4="abcd", is_primary=(n == "P"), failover_order=o,
                           connection_status="connected") for n, o in (("P", 10), ("B", 20))]
    db.session.add_all(rows)
    db.session.commit()
    assert update_sources() == []  # first look only records the current source
    rows[0].connection_status = "disconnected"
    db.session.commit()
    assert update_sources() == [(owner.id, rows[0].id, rows[1].id)]
    rows[0].connection_status = "connected"
    db.session.commit()
    assert update_sources() == [(owner.id, rows[1].id, rows[0].id)]
    entries = db.session.scalars(select(ActivityLog).where(ActivityLog.category == "monitor")
                                 .order_by(ActivityLog.id)).all()
    assert [(e.action, e.details) for e in entries] == [
        ("market_data_failover", {"from": "P", "to": "B"}), ("market_data_failback", {"from": "B", "to": "P"})]
