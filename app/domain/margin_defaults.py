"""Default margin per lot (₹), DOMAIN.md "Margin calculator" table: seed data only.

A later Alembic migration seeds the MarginRequirement table from MARGIN_DEFAULT_ROWS (plain
values, so the migration does not depend on the domain's types); after that the table, as
an admin edits it, is the source. Nothing else may read these numbers as live rates.

DOMAIN.md gives a NIFTY/BANKNIFTY column and a SENSEX column. FINNIFTY and MIDCPNIFTY have
no figures there: they are placeholders copied from the NIFTY/BANKNIFTY column (NSE
indices) until someone sets real ones.
"""

from __future__ import annotations

from decimal import Decimal
from types import MappingProxyType

from app.domain.margin import MarginRate, TradeType

# (trade type, on an expiry day, on any other day)
_NSE_INDEX = (
    ("ce_or_pe_sell", 205_000, 250_000),
    ("ce_and_pe_sell", 250_000, 320_000),
    ("futures", 215_000, 215_000),
    ("option_buying", 20_000, 20_000),
)
_SENSEX = (
    ("ce_or_pe_sell", 180_000, 220_000),
    ("ce_and_pe_sell", 225_000, 290_000),
    ("futures", 185_000, 185_000),
    ("option_buying", 20_000, 20_000),
)
PLACEHOLDER_UNDERLYINGS = frozenset({"FINNIFTY", "MIDCPNIFTY"})

#: (underlying, trade type, expiry-day ₹ per lot, non-expiry ₹ per lot)
MARGIN_DEFAULT_ROWS: tuple[tuple[str, str, int, int], ...] = tuple(
    (name, trade_type, on_expiry, off_expiry)
    for name, rows in (("NIFTY", _NSE_INDEX), ("BANKNIFTY", _NSE_INDEX), ("SENSEX", _SENSEX),
                       ("FINNIFTY", _NSE_INDEX), ("MIDCPNIFTY", _NSE_INDEX))
    for trade_type, on_expiry, off_expiry in rows
)


def _table() -> dict[str, MappingProxyType[TradeType, MarginRate]]:
    table: dict[str, dict[TradeType, MarginRate]] = {}
    for name, trade_type, on_expiry, off_expiry in MARGIN_DEFAULT_ROWS:
        table.setdefault(name, {})[TradeType(trade_type)] = MarginRate(Decimal(on_expiry), Decimal(off_expiry))
    return {name: MappingProxyType(rows) for name, rows in table.items()}


#: The same defaults as domain values: {underlying: {TradeType: MarginRate}} (read-only).
MARGIN_DEFAULTS = MappingProxyType(_table())


#: Trade-quality grades (DOMAIN.md, *default*): (grade, share of available margin in %).
TRADE_QUALITY_DEFAULT_ROWS: tuple[tuple[str, int], ...] = (("A", 95), ("B", 65), ("C", 36))
