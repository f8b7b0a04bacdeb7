"""The dashboard shows an account whose entries a daily limit blocked today, and only for today."""

from __future__ import annotations

from datetime import timedelta

from app.domain.expiries import ist_today
from app.models.types import utcnow
from app.services.risk.events import block_account_entries
from tests.support.exits import add_paper_accounts


def test_dashboard_card_says_entries_are_blocked_today_only(alice, broker, sim):
    [(blocked_id, key_one), (other_id, key_two)] = add_paper_accounts(alice, broker, sim, ["One", "Two"])
    today = ist_today(utcnow())
    block_account_entries(blocked_id, today, "daily loss limit: today's P&L -₹600.00 ≤ -₹500.00", commit=True)
    block_account_entries(other_id, today - timedelta(days=1), "yesterday's breach", commit=True)

    cards = {c["name"]: c for c in alice.get("/api/dashboard").get_json()["accounts"]}
    assert cards["One"]["entries_blocked"] == "daily loss limit: today's P&L -₹600.00 ≤ -₹500.00"
    assert cards["Two"]["entries_blocked"] is None
    page = alice.get("/dashboard").get_data(as_text=True)
    assert "Entries blocked for today: daily loss limit" in page and "yesterday&#39;s breach" not in page
    for key in (key_one, key_two):
        sim.call("DELETE", f"/sim/accounts/{key}")
