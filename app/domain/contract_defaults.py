"""Default contract settings per underlying (DOMAIN.md "Contract settings"): seed data only.

A later Alembic migration seeds the TradingSettings table from CONTRACT_DEFAULT_ROWS; after
that the table (and, above it, what the broker reports for a contract) is the source. The
domain's functions never read these numbers: they take lot size and freeze quantity as
arguments.

NIFTY, BANKNIFTY and SENSEX are DOMAIN.md's current figures. DOMAIN.md has no FINNIFTY or
MIDCPNIFTY figures: the values below are placeholders taken from OPENALGO_API.md (OpenAlgo's
repository defaults and its qtyfreeze list: FINNIFTY lot 60 / freeze 1,200, MIDCPNIFTY lot
120 / freeze 2,800), to be checked against the exchange before real trading. The next-month
lot size defaults to the current one.
"""

from __future__ import annotations

#: (underlying, lot size, next-month lot size, freeze quantity, strike step)
CONTRACT_DEFAULT_ROWS: tuple[tuple[str, int, int, int, int], ...] = (
    ("NIFTY", 65, 65, 1755, 50),
    ("BANKNIFTY", 30, 30, 600, 100),
    ("SENSEX", 20, 20, 1000, 100),
    ("FINNIFTY", 60, 60, 1200, 50),
    ("MIDCPNIFTY", 120, 120, 2800, 25),
)
PLACEHOLDER_UNDERLYINGS = frozenset({"FINNIFTY", "MIDCPNIFTY"})
