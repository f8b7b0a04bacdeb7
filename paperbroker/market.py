"""The market model: seeded random walks of spot prices, and derived futures/option quotes."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from paperbroker import nse_calendar as cal
from paperbroker.candles import TRADING_SECONDS_PER_YEAR, CandleStore, stable_seed
from paperbroker.clock import Clock
from paperbroker.instruments import EQUITIES, UNDERLYINGS, Instrument, Master
from paperbroker.pricing import RISK_FREE, black76, round_tick, smile_vol

YEAR_SECONDS = 365.0 * 86400


class UnknownSymbol(LookupError):
    """A name the market does not quote."""


@dataclass(slots=True)
class DayStats:
    day: date
    open: float
    high: float
    low: float
    volume: int
    prev_close: float


class Market:
    """Spot prices per underlying name; every other price is derived from them on demand."""

    def __init__(self, seed: int, clock: Clock, master: Master, *, vol_mult: float = 1.0,
                 tick_ms: int = 500, backfill_days: int = 20, anchor_epoch: float | None = None,
                 anchor_prices: dict[str, float] | None = None) -> None:
        self.seed = seed
        self.clock = clock
        self.master = master
        self.tick_seconds = tick_ms / 1000.0
        self.atm_vol: dict[str, float] = {n: u.volatility * vol_mult for n, u in UNDERLYINGS.items()}
        self.atm_vol.update({n: v * vol_mult for n, (_, v) in EQUITIES.items()})
        refs = {n: u.ref_price for n, u in UNDERLYINGS.items()}
        refs.update({n: p for n, (p, _) in EQUITIES.items()})
        self.anchor_prices = dict(anchor_prices or refs)
        self.anchor_epoch = anchor_epoch if anchor_epoch is not None else clock.epoch()
        self.spot: dict[str, float] = dict(self.anchor_prices)
        self.last_tick_epoch: dict[str, float] = dict.fromkeys(self.spot, self.anchor_epoch)
        self._rngs = {n: random.Random(stable_seed(seed, "walk", n)) for n in self.spot}
        self.candles = CandleStore(seed, backfill_days, self.anchor_epoch, self.anchor_prices, self.atm_vol)
        self._day: dict[str, DayStats] = {}
        self.version = 0
        self.listeners: list[Callable[[list[str]], None]] = []
        self.master.refresh(clock.now_ist(), self.index_spots())

    # --- spot path -------------------------------------------------------------------------
    def index_spots(self) -> dict[str, float]:
        return {n: self.spot[n] for n in UNDERLYINGS}

    def step(self, n: int = 1) -> None:
        """Advance every random walk by ``n`` ticks (prices move only here or via admin calls)."""
        dt = self.tick_seconds / TRADING_SECONDS_PER_YEAR
        names = list(self.spot)
        for _ in range(n):
            now = self.clock.epoch()
            for name in names:
                rng = self._rngs[name]
                sigma = self.atm_vol[name]
                z = rng.gauss(0.0, 1.0)
                new = self.spot[name] * math.exp(sigma * math.sqrt(dt) * z - 0.5 * sigma * sigma * dt)
                self._apply(name, new, now, 1 + int(rng.expovariate(1 / 200)))
        self.notify(names)

    def set_price(self, name: str, price: float) -> None:
        if name not in self.spot:
            raise UnknownSymbol(name)
        if not price > 0:
            raise ValueError("price must be > 0")
        self._apply(name, price, self.clock.epoch(), 1)
        self.notify([name])

    def move(self, name: str, *, pct: float = 0.0, points: float = 0.0) -> float:
        if name not in self.spot:
            raise UnknownSymbol(name)
        new = self.spot[name] * (1 + pct / 100.0) + points
        self.set_price(name, new)
        return self.spot[name]

    def _apply(self, name: str, price: float, epoch: float, qty: int) -> None:
        price = max(round_tick(price), 0.05)
        self.spot[name] = price
        self.last_tick_epoch[name] = epoch
        self.candles.record(name, epoch, price, qty)
        stats = self._day.get(name)
        if stats is not None and stats.day == datetime.fromtimestamp(epoch, cal.IST).date():
            stats.high = max(stats.high, price)
            stats.low = min(stats.low, price)
            stats.volume += qty

    def notify(self, names: list[str]) -> None:
        """Tell listeners (matching engine, WebSocket feed) that these spot prices or the clock moved."""
        self.version += 1
        self.master.refresh(self.clock.now_ist(), self.index_spots())
        for listener in self.listeners:
            listener(names)

    def day_stats(self, name: str) -> DayStats:
        today = self.clock.now_ist().date()
        stats = self._day.get(name)
        if stats is None or stats.day != today:
            found = self.candles.day_stats(name, today)
            prev = self.candles.prev_close(name, today) or self.spot[name]
            if found is None:
                p = self.spot[name]
                stats = DayStats(today, p, p, p, 0, prev)
            else:
                stats = DayStats(today, found[0], found[1], found[2], found[3], prev)
            self._day[name] = stats
        return stats

    # --- derived prices ----------------------------------------------------------------------
    def years_to_expiry(self, expiry: date, at_epoch: float | None = None) -> float:
        cutoff = datetime.combine(expiry, cal.EXPIRY_CUTOFF, cal.IST).timestamp()
        now = self.clock.epoch() if at_epoch is None else at_epoch
        return max((cutoff - now) / YEAR_SECONDS, 0.0)

    def theoretical(self, inst: Instrument, spot: float, at_epoch: float | None = None) -> float:
        """Model price of ``inst`` given its underlying's spot (unrounded)."""
        if inst.expiry is None:
            return spot
        t = self.years_to_expiry(inst.expiry, at_epoch)
        fwd = spot * math.exp(RISK_FREE * t)
        if not inst.is_option or inst.strike is None:
            return fwd
        vol = smile_vol(self.atm_vol[inst.name], fwd, inst.strike, t)
        return black76(fwd, inst.strike, t, vol, RISK_FREE, inst.instrumenttype == "CE")

    def ltp(self, inst: Instrument) -> float:
        spot = self.spot[inst.name]
        if inst.expiry is None:
            return spot
        return max(round_tick(self.theoretical(inst, spot), inst.tick_size), inst.tick_size)

    def touch(self, inst: Instrument) -> tuple[float, float]:
        """(bid, ask) around the LTP; indices have no book (0, 0)."""
        if not inst.tradable:
            return 0.0, 0.0
        ltp = self.ltp(inst)
        tick = inst.tick_size
        if inst.is_option:
            half = max(1, min(20, round(ltp * 0.002 / tick)))
        elif inst.expiry is not None:
            half = max(1, round(ltp * 0.00002 / tick))
        else:
            half = max(1, round(ltp * 0.0001 / tick))
        bid = max(round_tick(ltp - half * tick, tick), tick)
        return bid, round_tick(ltp + half * tick, tick)

    def _derived_day(self, inst: Instrument) -> tuple[float, float, float, float, int]:
        stats = self.day_stats(inst.name)
        if inst.expiry is None:
            return stats.open, stats.high, stats.low, stats.prev_close, stats.volume
        f = self.theoretical
        o, hi, lo = f(inst, stats.open), f(inst, stats.high), f(inst, stats.low)
        prev = f(inst, stats.prev_close, self.clock.epoch() - 86400)
        if inst.instrumenttype == "PE":
            hi, lo = lo, hi
        ltp = self.ltp(inst)
        tick = inst.tick_size
        factor = 0.3 + (stable_seed(inst.symbol) % 1000) / 400.0
        return (max(round_tick(o, tick), tick), max(round_tick(hi, tick), ltp),
                min(max(round_tick(lo, tick), tick), ltp), max(round_tick(prev, tick), tick),
                int(stats.volume * factor) // inst.lot_size * inst.lot_size)

    def open_interest(self, inst: Instrument) -> int:
        if inst.expiry is None:
            return 0
        return (stable_seed("oi", inst.symbol) % 50000 + 100) * inst.lot_size

    def quote(self, inst: Instrument) -> dict[str, float | int]:
        o, h, lo, prev, vol = self._derived_day(inst)
        ltp = self.ltp(inst)
        bid, ask = self.touch(inst)
        return {"open": round(o, 2), "high": round(max(h, ltp), 2), "low": round(min(lo, ltp), 2), "ltp": ltp,
                "ask": ask, "bid": bid, "prev_close": round(prev, 2), "volume": vol, "oi": self.open_interest(inst)}

    def depth_levels(self, inst: Instrument) -> tuple[list[dict[str, float | int]], list[dict[str, float | int]]]:
        bid, ask = self.touch(inst)
        if bid == 0:
            return [], []
        tick = inst.tick_size
        rng = random.Random(stable_seed("depth", inst.symbol, self.version))
        lot = inst.lot_size

        def level(price: float) -> dict[str, float | int]:
            orders = rng.randint(1, 40)
            return {"price": round_tick(price, tick), "quantity": orders * lot * rng.randint(1, 6),
                    "orders": orders}

        bids = [level(bid - i * tick) for i in range(5) if bid - i * tick > 0]
        asks = [level(ask + i * tick) for i in range(5)]
        return bids, asks

    def price_for(self, exchange: str, symbol: str) -> tuple[Instrument, float]:
        inst = self.master.get(exchange, symbol)
        if inst is None:
            raise UnknownSymbol(symbol)
        return inst, self.ltp(inst)
