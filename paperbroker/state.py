"""SQLite persistence of accounts, books, prices, live candles and the clock (``--state FILE``).

Changes are flushed about once a second and at shutdown, so a crash loses at most the last second.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from datetime import UTC, date, datetime
from typing import Any

from paperbroker.accounts import Account
from paperbroker.core import Broker

log = logging.getLogger(__name__)
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (apikey TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS candles (
    name TEXT NOT NULL, ts INTEGER NOT NULL, o REAL, h REAL, l REAL, c REAL, v REAL,
    PRIMARY KEY (name, ts)
);
"""


class Store:
    """One SQLite file; every write is one short transaction."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.conn = sqlite3.connect(path)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)

    def close(self) -> None:
        self.conn.close()

    def load(self) -> dict[str, Any] | None:
        meta = {k: json.loads(v) for k, v in self.conn.execute("SELECT k, v FROM meta")}
        if not meta:
            return None
        accounts = [json.loads(d) for (d,) in self.conn.execute("SELECT data FROM accounts ORDER BY rowid")]
        candles = self.conn.execute("SELECT name, ts, o, h, l, c, v FROM candles ORDER BY ts").fetchall()
        return {"meta": meta, "accounts": accounts, "candles": candles}

    def save(self, broker: Broker, full: bool = False) -> None:
        """Write dirty accounts, dirty live candles and the metadata."""
        engine, market = broker.engine, broker.market
        keys = set(broker.accounts) if full else set(engine.dirty)
        engine.dirty.clear()
        dirty_candles = market.candles.dirty
        market.candles.dirty = set()
        meta = {
            "order_seq": engine.order_seq, "trade_seq": engine.trade_seq,
            "last_square_off": engine.last_square_off.isoformat() if engine.last_square_off else None,
            "anchor_epoch": market.anchor_epoch, "anchor_prices": market.anchor_prices, "spot": market.spot,
            "last_tick_epoch": market.last_tick_epoch, "clock_frozen": broker.clock.frozen,
            "clock_epoch": broker.clock.epoch(), "saved_at": time.time(), "seed": broker.cfg.seed,
        }
        with self.conn:
            for key in keys:
                acct = broker.accounts.get(key)
                if acct is None:
                    self.conn.execute("DELETE FROM accounts WHERE apikey = ?", (key,))
                else:
                    self.conn.execute("INSERT OR REPLACE INTO accounts (apikey, data) VALUES (?, ?)",
                                      (key, json.dumps(acct.to_dict())))
            rows = []
            for name, minute in dirty_candles:
                c = market.candles.live.get(name, {}).get(minute)
                if c is not None:
                    rows.append((name, minute, *c))
            self.conn.executemany("INSERT OR REPLACE INTO candles VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            self.conn.executemany("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)",
                                  [(k, json.dumps(v)) for k, v in meta.items()])


def restore(broker: Broker, snap: dict[str, Any]) -> None:
    """Rebuild a broker's market, clock and accounts from a loaded snapshot."""
    meta = snap["meta"]
    if broker.cfg.start_time is None:
        epoch = float(meta["clock_epoch"])
        if not meta.get("clock_frozen"):
            epoch += time.time() - float(meta["saved_at"])  # the simulated clock kept running while down
        broker.clock.set(datetime.fromtimestamp(epoch, UTC), bool(meta.get("clock_frozen")) or None)
    broker.rebuild_market(float(meta["anchor_epoch"]), {k: float(v) for k, v in meta["anchor_prices"].items()})
    market, engine = broker.market, broker.engine
    for name, ts, o, h, lo, c, v in snap["candles"]:
        if name in market.candles.live:
            market.candles.live[name][int(ts)] = [o, h, lo, c, v]
    for name, price in meta["spot"].items():
        if name in market.spot:
            market.spot[name] = float(price)
            market.last_tick_epoch[name] = float(meta["last_tick_epoch"].get(name, market.anchor_epoch))
    market.notify([])
    engine.order_seq, engine.trade_seq = int(meta["order_seq"]), int(meta["trade_seq"])
    last = meta.get("last_square_off")
    engine.last_square_off = date.fromisoformat(last) if last else None
    for data in snap["accounts"]:
        acct = Account.from_dict(data)
        broker.accounts[acct.apikey] = acct
        for order in acct.orders.values():
            if order.is_live:
                engine.open_orders[order.orderid] = (acct, order)
    log.info("restored %d accounts from state", len(snap["accounts"]))
