"""Margin settings (/margin/settings): seeded tables, admin edits audited with before/after,
field errors that save nothing, cached getters invalidated by a change, non-admins refused."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models.audit import ActivityLog
from app.models.trading_settings import MarginRequirement, TradeQuality, TradingSettings
from app.services.margin import tables

PAGE = "/margin/settings"


def _contract(name: str) -> TradingSettings:
    db.session.expire_all()
    return db.session.scalars(select(TradingSettings).where(TradingSettings.underlying == name)).one()


def _margin(name: str, trade_type: str) -> MarginRequirement:
    db.session.expire_all()
    return db.session.scalars(select(MarginRequirement).where(MarginRequirement.underlying == name,
                                                              MarginRequirement.trade_type == trade_type)).one()


def _grade(grade: str) -> TradeQuality:
    db.session.expire_all()
    return db.session.scalars(select(TradeQuality).where(TradeQuality.grade == grade)).one()


def _audits(action: str) -> list[ActivityLog]:
    db.session.expire_all()
    return list(db.session.scalars(select(ActivityLog).where(ActivityLog.action == action).order_by(ActivityLog.id)))


def _contract_form(**overrides) -> dict:
    return {"lot_size": "65", "next_month_lot_size": "65", "freeze_qty": "1755", "strike_step": "50", **overrides}


def test_migration_seeds_contract_margin_and_grade_defaults(app):
    snapshot = tables.tables()
    assert {k: (c.lot_size, c.freeze_qty, c.max_lots_per_order) for k, c in snapshot.contracts.items()} == {
        "NIFTY": (65, 1755, 27), "BANKNIFTY": (30, 600, 20), "SENSEX": (20, 1000, 50),
        "FINNIFTY": (60, 1200, 20), "MIDCPNIFTY": (120, 2800, 23)}
    nifty = snapshot.margins["NIFTY"]
    assert [(t.value, r.expiry, r.non_expiry) for t, r in nifty.items()] == [
        ("ce_or_pe_sell", Decimal("205000.00"), Decimal("250000.00")),
        ("ce_and_pe_sell", Decimal("250000.00"), Decimal("320000.00")),
        ("futures", Decimal("215000.00"), Decimal("215000.00")),
        ("option_buying", Decimal("20000.00"), Decimal("20000.00"))]
    assert snapshot.margins["SENSEX"]["ce_and_pe_sell"].non_expiry == Decimal("290000.00")
    assert dict(snapshot.grades) == {"A": Decimal("95.00"), "B": Decimal("65.00"), "C": Decimal("36.00")}


def test_settings_page_shows_stored_values_and_derived_max_lots(admin_client):
    response = admin_client.get(PAGE)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'data-testid="max-lots-NIFTY">27<' in html
    assert 'data-testid="contract:BANKNIFTY-lot_size"' in html and 'value="30"' in html
    assert "Add an account to compare" in html  # the admin has no market-data account


def test_admin_edits_contract_audited_with_before_and_after(admin_client, admin):
    response = admin_client.post_form(f"{PAGE}/contracts/NIFTY",
                                      _contract_form(lot_size="75", next_month_lot_size="65", freeze_qty="1800"),
                                      page=PAGE)
    assert response.status_code == 302
    row = _contract("NIFTY")
    assert (row.lot_size, row.next_month_lot_size, row.freeze_qty, row.strike_step) == (75, 65, 1800, 50)
    assert tables.contract_row("NIFTY").max_lots_per_order == 24  # the cached getter saw the change
    [entry] = _audits("contract_settings_updated")
    assert entry.user_id == admin.id and entry.category == "admin"
    assert entry.details == {"underlying": "NIFTY",
                             "before": {"lot_size": 65, "next_month_lot_size": 65, "freeze_qty": 1755,
                                        "strike_step": 50},
                             "after": {"lot_size": 75, "next_month_lot_size": 65, "freeze_qty": 1800,
                                       "strike_step": 50}}


def test_saving_unchanged_values_writes_no_audit_entry(admin_client):
    assert admin_client.post_form(f"{PAGE}/contracts/NIFTY", _contract_form(), page=PAGE).status_code == 302
    assert _audits("contract_settings_updated") == []


def test_admin_edits_margin_and_grade_audited_and_cache_invalidated(admin_client):
    assert tables.margin_rows("SENSEX")["ce_or_pe_sell"].non_expiry == Decimal("220000.00")  # warm the cache
    response = admin_client.post_form(f"{PAGE}/margins/SENSEX/ce_or_pe_sell",
                                      {"expiry_margin": "175000", "non_expiry_margin": "215000.50"}, page=PAGE)
    assert response.status_code == 302
    row = _margin("SENSEX", "ce_or_pe_sell")
    assert (row.expiry_margin, row.non_expiry_margin) == (Decimal("175000.00"), Decimal("215000.50"))
    assert tables.margin_rows("SENSEX")["ce_or_pe_sell"].non_expiry == Decimal("215000.50")
    [entry] = _audits("margin_requirement_updated")
    assert entry.details == {"underlying": "SENSEX", "trade_type": "ce_or_pe_sell",
                             "before": {"expiry_margin": "180000.00", "non_expiry_margin": "220000.00"},
                             "after": {"expiry_margin": "175000.00", "non_expiry_margin": "215000.50"}}

    assert admin_client.post_form(f"{PAGE}/grades/B", {"percent": "60"}, page=PAGE).status_code == 302
    assert _grade("B").percent == Decimal("60.00")
    assert tables.grade_percent("B") == Decimal("60.00")
    [grade_entry] = _audits("trade_quality_updated")
    assert grade_entry.details == {"grade": "B", "before": {"percent": "65.00"}, "after": {"percent": "60.00"}}


def test_a_change_in_another_process_is_seen_through_the_version(app, admin):
    """The cache is keyed by a version row: a write elsewhere (here: behind the cache's back,
    then the version bumped as another worker's update would) is seen on the next read."""
    assert tables.contract_row("BANKNIFTY").lot_size == 30
    row = _contract("BANKNIFTY")
    row.lot_size = 35
    tables._bump_version()
    db.session.commit()
    assert tables.contract_row("BANKNIFTY").lot_size == 35


@pytest.mark.parametrize("field,value,message", [
    ("lot_size", "-5", "from 1 to"),
    ("lot_size", "0", "from 1 to"),
    ("lot_size", "abc", "Not a valid integer"),
    ("lot_size", "6\x005", "Not a valid integer"),
    ("lot_size", "", "Enter a whole number"),
    ("freeze_qty", "50", "at least one lot (65)"),
    ("strike_step", "1.5", "Not a valid integer"),
    ("next_month_lot_size", "99999999999999999999", "from 1 to"),
])
def test_bad_contract_input_gives_field_error_and_saves_nothing(admin_client, field, value, message):
    response = admin_client.post_form(f"{PAGE}/contracts/NIFTY", _contract_form(**{field: value}), page=PAGE)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert f'data-field-error="{field}"' in html and message in html
    row = _contract("NIFTY")
    assert (row.lot_size, row.next_month_lot_size, row.freeze_qty, row.strike_step) == (65, 65, 1755, 50)
    assert _audits("contract_settings_updated") == []


@pytest.mark.parametrize("url,data,field", [
    ("margins/NIFTY/futures", {"expiry_margin": "-1", "non_expiry_margin": "215000"}, "expiry_margin"),
    ("margins/NIFTY/futures", {"expiry_margin": "215000", "non_expiry_margin": "0"}, "non_expiry_margin"),
    ("margins/NIFTY/futures", {"expiry_margin": "lots", "non_expiry_margin": "215000"}, "expiry_margin"),
    ("margins/NIFTY/futures", {"expiry_margin": "NaN", "non_expiry_margin": "215000"}, "expiry_margin"),
    ("margins/NIFTY/futures", {"expiry_margin": "Infinity", "non_expiry_margin": "215000"}, "expiry_margin"),
    ("margins/NIFTY/futures", {"expiry_margin": "2\x00", "non_expiry_margin": "215000"}, "expiry_margin"),
    ("grades/A", {"percent": "0"}, "percent"),
    ("grades/A", {"percent": "100.5"}, "percent"),
    ("grades/A", {"percent": "-10"}, "percent"),
    ("grades/A", {"percent": "ninety"}, "percent"),
])
def test_bad_margin_or_grade_input_gives_field_error_and_saves_nothing(admin_client, url, data, field):
    response = admin_client.post_form(f"{PAGE}/{url}", data, page=PAGE)
    assert response.status_code == 400
    assert f'data-field-error="{field}"' in response.get_data(as_text=True)
    row = _margin("NIFTY", "futures")
    assert (row.expiry_margin, row.non_expiry_margin) == (Decimal("215000.00"), Decimal("215000.00"))
    assert _grade("A").percent == Decimal("95.00")
    assert _audits("margin_requirement_updated") == [] and _audits("trade_quality_updated") == []


@pytest.mark.parametrize("url", ["contracts/NOSUCH", "margins/NIFTY/straddle", "margins/NOSUCH/futures",
                                 "grades/Z"])
def test_unknown_rows_are_404(admin_client, url):
    assert admin_client.post_form(f"{PAGE}/{url}", {"percent": "50"}, page=PAGE).status_code == 404


def test_post_without_csrf_is_refused(admin_client):
    response = admin_client.post(f"{PAGE}/grades/A", data={"percent": "50"})
    assert response.status_code == 400
    assert _grade("A").percent == Decimal("95.00")


def _settings_urls(app) -> list[tuple[str, str]]:
    urls = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("margin_admin."):
            args = {"underlying": "NIFTY", "trade_type": "futures", "grade": "A"}
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                urls.append((method, rule.build({k: v for k, v in args.items() if k in rule.arguments})[1]))
    return urls


def test_every_margin_settings_url_refuses_traders_and_anonymous(app, trader_client, client):
    urls = _settings_urls(app)
    assert sorted(urls) == [("GET", "/margin/settings"), ("POST", "/margin/settings/contracts/NIFTY"),
                            ("POST", "/margin/settings/grades/A"), ("POST", "/margin/settings/margins/NIFTY/futures")]
    for method, url in urls:
        if method == "GET":
            assert trader_client.get(url).status_code == 403, url
            assert client.get(url).status_code == 302, url
        else:
            body = {**_contract_form(lot_size="1"), "percent": "1", "expiry_margin": "1", "non_expiry_margin": "1"}
            assert trader_client.post_form(url, body, page="/dashboard").status_code == 403, url
            assert client.post_form(url, body).status_code == 302, url
    assert _contract("NIFTY").lot_size == 65 and _grade("A").percent == Decimal("95.00")
    assert _margin("NIFTY", "futures").expiry_margin == Decimal("215000.00")
