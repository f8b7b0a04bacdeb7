"""What a run account holds: the ONE definition (issue 9, invariant 6).

Held quantity of a run leg on an account = Σ signed filled quantity (+ BUY, − SELL) over ALL
that run account's intents for the leg, entries and closes, in any state (a cancelled or
partly filled order keeps its fills). It is derived from fills only, so an exit that fails
never changes it. Exits, the kill switch, the run page and the risk engine all read it here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select

from app.domain.instruments import Action
from app.domain.order_lifecycle import TERMINAL, IntentState
from app.extensions import db
from app.models.execution import OrderIntent, RunAccount, RunLeg, StrategyRun

_TERMINAL_VALUES = tuple(s.value for s in TERMINAL)


@dataclass(frozen=True)
class LegLedger:
    """One leg of one run account as its intents say, read in one snapshot (see `leg_ledgers`)."""

    held: int = 0  # signed units held (the sum of signed fills)
    next_round: int = 1  # 1 + the last close round of the leg (rounds are the close keys' suffix)
    closing: bool = False  # a close of the leg (any purpose but entry) is not terminal
    in_flight: bool = False  # any intent of the leg is not terminal
    entering: bool = False  # an entry intent of the leg is not terminal
    entry_product: str | None = None  # the product of the leg's first entry intent


def leg_ledgers(run_account: RunAccount | int, leg_numbers: Iterable[int] | None = None) -> dict[int, LegLedger]:
    """Per leg number of the run (every leg, flat ones too): what the run account holds, its next
    close round, and what is in flight, from ONE read of the run account's intents.

    One read is one snapshot, so the close round and the fills agree: a planner that sees every
    earlier round terminal also sees their fills, and plans round r with an up-to-date quantity;
    any other planner that computed the same r collides on its keys (two planners can never both
    plan round r). Reads the database, not the session's cached rows, so fills committed by the
    engine in another session are counted. `leg_numbers`: the run's legs when the caller has them
    (saves reading them).
    """
    ra_id = run_account if isinstance(run_account, int) else run_account.id
    rows = db.session.execute(
        select(OrderIntent.leg_number, OrderIntent.purpose, OrderIntent.action, OrderIntent.filled_quantity,
               OrderIntent.attempt, OrderIntent.state, OrderIntent.product)
        .where(OrderIntent.run_account_id == ra_id, OrderIntent.leg_number.is_not(None))
        .order_by(OrderIntent.id)).all()
    ledgers: dict[int, LegLedger] = {}
    for leg, purpose, action, filled, attempt, state, product in rows:
        number = int(leg or 0)  # (never None: filtered above)
        entry = ledgers.get(number, LegLedger())
        moving = state not in _TERMINAL_VALUES
        signed = Action(action).sign * int(filled or 0)
        is_entry = purpose == "entry"
        ledgers[number] = LegLedger(
            held=entry.held + signed,
            next_round=entry.next_round if is_entry else max(entry.next_round, int(attempt or 0) + 1),
            closing=entry.closing or (moving and not is_entry),
            in_flight=entry.in_flight or moving,
            entering=entry.entering or (moving and is_entry),
            entry_product=entry.entry_product or (product if is_entry else None))
    if leg_numbers is None:
        run_id = db.session.scalar(select(RunAccount.run_id).where(RunAccount.id == ra_id))
        leg_numbers = db.session.scalars(select(RunLeg.number).where(RunLeg.run_id == run_id)) \
            if run_id is not None else []
    for number in leg_numbers:
        ledgers.setdefault(int(number), LegLedger())
    return dict(sorted(ledgers.items()))


def longs_of_other_runs(account_id: int, run_account_id: int,
                        contracts: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str, str], int]:
    """What the account's OTHER runs hold long on each (symbol, exchange, product): per other run
    account the Σ of its signed fills there, counted only when positive, summed.

    The position book has one net figure per contract for the whole account, so a close of this
    run takes no more than the book minus these longs. Other runs' shorts are never added back:
    a run's fills can say it is short after the short was bought back outside the app, and
    trusting that would sell this run's long into a naked short (or refuse a short's close while
    its hedge is sold). Leaving them out can only close less of a long (the risk: its premium) or
    buy back more of a short. The kill switch's remainder closes (no run account) are left out:
    they closed positions the app never entered.
    """
    wanted = {(symbol, exchange, product.upper()) for symbol, exchange, product in contracts}
    per_run: dict[tuple[int, tuple[str, str, str]], int] = {}
    if not wanted:
        return dict.fromkeys(wanted, 0)
    rows = db.session.execute(
        select(OrderIntent.run_account_id, OrderIntent.symbol, OrderIntent.exchange, OrderIntent.product,
               OrderIntent.action, OrderIntent.filled_quantity)
        .where(OrderIntent.account_id == account_id, OrderIntent.run_account_id.is_not(None),
               OrderIntent.run_account_id != run_account_id, OrderIntent.filled_quantity != 0,
               OrderIntent.symbol.in_({symbol for symbol, _, _ in wanted}))).all()
    for other_run, symbol, exchange, product, action, filled in rows:
        key = (symbol, exchange, product.upper())
        if key in wanted:
            signed = Action(action).sign * int(filled)
            per_run[(other_run or 0, key)] = per_run.get((other_run or 0, key), 0) + signed
    totals = dict.fromkeys(wanted, 0)
    for (_, key), held in per_run.items():
        totals[key] += max(held, 0)
    return totals


def held_by_leg(run_account: RunAccount | int) -> dict[int, int]:
    """Signed units held per leg number for one run account (every leg of the run, 0 when flat)."""
    return {number: ledger.held for number, ledger in leg_ledgers(run_account).items()}


def in_flight(run_account: RunAccount | int, leg: int | None = None, *,
              purposes: Iterable[str] | None = None) -> list[OrderIntent]:
    """The run account's intents that are not terminal (planned, sending, accepted, partly
    filled, unknown), optionally of one leg and of some purposes, oldest first."""
    ra_id = run_account if isinstance(run_account, int) else run_account.id
    query = select(OrderIntent).where(OrderIntent.run_account_id == ra_id,
                                      OrderIntent.state.not_in(_TERMINAL_VALUES))
    if leg is not None:
        query = query.where(OrderIntent.leg_number == leg)
    if purposes is not None:
        query = query.where(OrderIntent.purpose.in_(list(purposes)))
    return list(db.session.scalars(query.order_by(OrderIntent.id)))


@dataclass(frozen=True)
class LegHeld:
    """One leg on one account: what is held, and what is still moving."""

    leg_number: int
    symbol: str
    exchange: str
    product: str
    held: int
    in_flight: int  # intents not terminal
    entry_filled: int  # unsigned units filled by entries
    close_filled: int  # unsigned units filled by closing orders


@dataclass(frozen=True)
class AccountHeld:
    run_account_id: int
    account_id: int
    account_name: str
    status: str
    legs: tuple[LegHeld, ...] = field(default_factory=tuple)

    @property
    def flat(self) -> bool:
        return all(leg.held == 0 for leg in self.legs)

    @property
    def in_flight(self) -> int:
        return sum(leg.in_flight for leg in self.legs)


def run_summary(run: StrategyRun) -> list[AccountHeld]:
    """Per run account and leg: held, in-flight count and filled units by entries and closes.

    One query for the whole run (the run page renders this on every refresh).
    """
    legs = {leg.number: leg for leg in run.legs}
    stats: dict[tuple[int | None, int | None], list[int]] = {}
    products: dict[tuple[int | None, int | None], str] = {}
    rows = db.session.execute(
        select(OrderIntent.run_account_id, OrderIntent.leg_number, OrderIntent.purpose, OrderIntent.action,
               OrderIntent.product, OrderIntent.state, OrderIntent.filled_quantity)
        .where(OrderIntent.run_id == run.id, OrderIntent.leg_number.is_not(None),
               OrderIntent.run_account_id.is_not(None))).all()
    for ra_id, leg_no, purpose, action, product, state, filled in rows:
        entry = stats.setdefault((ra_id, leg_no), [0, 0, 0, 0])
        entry[0] += Action(action).sign * filled
        entry[1] += 0 if IntentState(state) in TERMINAL else 1
        entry[2 if purpose == "entry" else 3] += filled
        if purpose == "entry":
            products[(ra_id, leg_no)] = product
    out: list[AccountHeld] = []
    for ra in run.accounts:
        leg_rows = []
        for number, leg in sorted(legs.items()):
            held, moving, entered, closed = stats.get((ra.id, number), [0, 0, 0, 0])
            leg_rows.append(LegHeld(number, leg.symbol, leg.exchange, products.get((ra.id, number), run.product),
                                    held, moving, entered, closed))
        out.append(AccountHeld(ra.id, ra.account_id, ra.account_name, ra.status, tuple(leg_rows)))
    return out
