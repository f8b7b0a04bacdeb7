"""The instrument master: indices, equities, index futures and options in OpenAlgo symbol format."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime

from paperbroker import nse_calendar as cal


@dataclass(frozen=True, slots=True)
class Underlying:
    """An index with listed derivatives."""

    name: str
    exchange: str  # where the spot index is quoted
    fo_exchange: str  # where its futures and options trade
    lot_size: int
    freeze_qty: int
    strike_step: float
    ref_price: float
    volatility: float
    weekly_weekday: int | None
    monthly_weekday: int


UNDERLYINGS: dict[str, Underlying] = {
    u.name: u
    for u in (
        Underlying("NIFTY", "NSE_INDEX", "NFO", 65, 1755, 50, 26000.0, 0.13, cal.TUESDAY, cal.TUESDAY),
        Underlying("BANKNIFTY", "NSE_INDEX", "NFO", 30, 600, 100, 59000.0, 0.15, None, cal.TUESDAY),
        Underlying("FINNIFTY", "NSE_INDEX", "NFO", 60, 1200, 50, 27500.0, 0.14, None, cal.TUESDAY),
        Underlying("MIDCPNIFTY", "NSE_INDEX", "NFO", 120, 2800, 25, 13500.0, 0.17, None, cal.TUESDAY),
        Underlying("SENSEX", "BSE_INDEX", "BFO", 20, 1000, 100, 85000.0, 0.13, cal.THURSDAY, cal.THURSDAY),
    )
}

EQUITIES: dict[str, tuple[float, float]] = {
    "RELIANCE": (1400.0, 0.24), "SBIN": (800.0, 0.26), "HDFCBANK": (1000.0, 0.20),
    "ICICIBANK": (1400.0, 0.22), "INFY": (1550.0, 0.25), "TCS": (3100.0, 0.22),
    "ITC": (410.0, 0.20), "LT": (3900.0, 0.24), "AXISBANK": (1200.0, 0.26),
    "KOTAKBANK": (2100.0, 0.22), "BHARTIARTL": (2000.0, 0.22), "YESBANK": (20.0, 0.35),
}

INDEX_EXCHANGES = ("NSE_INDEX", "BSE_INDEX")
FO_EXCHANGES = ("NFO", "BFO")
TICK = 0.05
WEEKLY_COUNT = 6
MONTHLY_COUNT = 3
FUTURE_COUNT = 3


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable or quotable contract."""

    symbol: str
    exchange: str
    name: str  # the underlying's name (equal to symbol for spot instruments)
    token: str
    instrumenttype: str  # EQ, INDEX, FUT, CE, PE
    lot_size: int = 1
    freeze_qty: int = 1
    tick_size: float = TICK
    expiry: date | None = None
    strike: float | None = None

    @property
    def is_option(self) -> bool:
        return self.instrumenttype in ("CE", "PE")

    @property
    def is_derivative(self) -> bool:
        return self.expiry is not None

    @property
    def tradable(self) -> bool:
        return self.instrumenttype != "INDEX"

    def master_row(self) -> dict[str, object]:
        return {
            "symbol": self.symbol, "brsymbol": self.symbol, "name": self.name,
            "exchange": self.exchange, "brexchange": self.exchange.replace("_INDEX", ""),
            "token": self.token, "expiry": cal.fmt_expiry(self.expiry) if self.expiry else "",
            "strike": self.strike if self.strike is not None else -0.01, "lotsize": self.lot_size,
            "instrumenttype": self.instrumenttype, "tick_size": self.tick_size,
            "freeze_qty": self.freeze_qty,
        }


def strike_text(strike: float) -> str:
    """The strike as OpenAlgo writes it: an integer when whole, else Python's str(float)."""
    return str(int(strike)) if float(strike).is_integer() else str(float(strike))


def option_symbol(base: str, expiry: date, strike: float, option_type: str) -> str:
    return f"{base}{cal.fmt_symbol_date(expiry)}{strike_text(strike)}{option_type}"


def future_symbol(base: str, expiry: date) -> str:
    return f"{base}{cal.fmt_symbol_date(expiry)}FUT"


def strike_grid(step: float, centre: float, far_month: bool) -> list[float]:
    """Listed strikes around ``centre``: the base step near the money, wider steps further out.

    Far months start at twice the base step, as exchanges list them.
    """
    bands = ((0.06, 1), (0.15, 2), (0.30, 5))
    strikes: set[float] = set()
    for width, mult in bands:
        s = step * (mult * 2 if far_month else mult)
        lo = math.ceil(centre * (1 - width) / s) * s
        hi = math.floor(centre * (1 + width) / s) * s
        k = lo
        while k <= hi + 1e-9:
            strikes.add(round(k, 2))
            k += s
    return sorted(strikes)


class Master:
    """Lookup of every instrument ever listed in this process; listings follow the simulated date."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], Instrument] = {}
        self._strikes: dict[tuple[str, date], set[float]] = {}
        self._centres: dict[tuple[str, date], tuple[float, float]] = {}
        self._listed_for: date | None = None
        self._futures: dict[str, list[date]] = {}
        self._options: dict[str, list[date]] = {}
        self._token = 100000
        for u in UNDERLYINGS.values():
            self._add(Instrument(u.name, u.exchange, u.name, self._next_token(), "INDEX"))
        for name in EQUITIES:
            self._add(Instrument(name, "NSE", name, self._next_token(), "EQ"))

    def _next_token(self) -> str:
        self._token += 1
        return str(self._token)

    def _add(self, inst: Instrument) -> None:
        self._by_key.setdefault((inst.exchange, inst.symbol), inst)

    def get(self, exchange: str, symbol: str) -> Instrument | None:
        return self._by_key.get((exchange, symbol))

    def refresh(self, now_ist: datetime, spots: dict[str, float]) -> None:
        """List the contracts live at ``now_ist``; extend strike ranges when a spot leaves them."""
        today = now_ist.date()
        if self._listed_for != today or any(self._needs_extension(n, s) for n, s in spots.items()):
            self._listed_for = today
            for u in UNDERLYINGS.values():
                self._list_underlying(u, now_ist, spots.get(u.name, u.ref_price))

    def _needs_extension(self, name: str, spot: float) -> bool:
        return any(
            key[0] == name and not (lo <= spot <= hi) for key, (lo, hi) in self._centres.items()
        )

    def _list_underlying(self, u: Underlying, now_ist: datetime, spot: float) -> None:
        monthly = cal.monthly_expiries(u.monthly_weekday, now_ist, max(MONTHLY_COUNT, FUTURE_COUNT))
        self._futures[u.name] = monthly[:FUTURE_COUNT]
        opts = set(monthly[:MONTHLY_COUNT])
        if u.weekly_weekday is not None:
            opts.update(cal.weekly_expiries(u.weekly_weekday, now_ist, WEEKLY_COUNT))
        self._options[u.name] = sorted(opts)
        for exp in self._futures[u.name]:
            self._add(Instrument(future_symbol(u.name, exp), u.fo_exchange, u.name, self._next_token(),
                                 "FUT", u.lot_size, u.freeze_qty, TICK, exp))
        for exp in self._options[u.name]:
            key = (u.name, exp)
            lo_hi = self._centres.get(key)
            if lo_hi is not None and lo_hi[0] <= spot <= lo_hi[1]:
                continue
            far = (exp - now_ist.date()).days > 35
            grid = strike_grid(u.strike_step, spot, far)
            self._centres[key] = (spot * 0.96, spot * 1.04)
            known = self._strikes.setdefault(key, set())
            for k in grid:
                if k in known:
                    continue
                known.add(k)
                for ot in ("CE", "PE"):
                    self._add(Instrument(option_symbol(u.name, exp, k, ot), u.fo_exchange, u.name,
                                         self._next_token(), ot, u.lot_size, u.freeze_qty, TICK, exp, k))

    def expiries(self, name: str, exchange: str, kind: str) -> list[date]:
        u = UNDERLYINGS.get(name)
        if u is None or u.fo_exchange != exchange:
            return []
        return list(self._futures.get(name, []) if kind == "futures" else self._options.get(name, []))

    def strikes(self, name: str, expiry: date) -> list[float]:
        return sorted(self._strikes.get((name, expiry), ()))

    def is_listed(self, inst: Instrument) -> bool:
        if inst.expiry is None:
            return True
        pool = self._options if inst.is_option else self._futures
        return inst.expiry in pool.get(inst.name, ())

    def listed(self, exchange: str | None = None) -> list[Instrument]:
        return [
            i for (ex, _), i in self._by_key.items()
            if (exchange is None or ex == exchange) and self.is_listed(i)
        ]

    def search(self, query: str, exchange: str | None, limit: int = 500) -> list[Instrument]:
        terms = query.upper().split()
        out: list[Instrument] = []
        for inst in self.listed(exchange):
            if all(t in inst.symbol for t in terms):
                out.append(inst)
                if len(out) >= limit:
                    break
        return out

    def underlying_of(self, inst: Instrument) -> Instrument:
        """The spot instrument whose price drives ``inst``."""
        if inst.expiry is None:
            return inst
        u = UNDERLYINGS[inst.name]
        found = self._by_key[(u.exchange, u.name)]
        return found
