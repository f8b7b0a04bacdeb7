"""How much of each leg a close round may close: the run's fills, capped at the position book.

The exit manager (exits.py) and the kill switch close what the run's fills say is held
(held.py). A position closed outside the app (the broker's terminal, its RMS) must not be
closed again into a reverse one, so a close is capped at what the account's position book
shows (invariant 6), minus what the account's other runs hold long on the same contract
(`longs_of_other_runs`; their shorts are not trusted: a short bought back outside the app
still says it is held, and trusting it would refuse this run's short close and then sell its
hedge, a naked short). Two legs of one run on one contract share the book's figure.

A risk exit's first round is the exception: it buys its shorts back from the fills at once (a
short bought back twice is a long, its premium the risk) and leaves its longs for the book,
read in the engine's pool meanwhile (`long_closes` once it is in).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.domain.exit_plan import cap_at_broker
from app.models.execution import RunAccount, RunLeg
from app.services.execution.held import LegLedger, longs_of_other_runs
from app.services.execution.position_reads import Book, read_now


@dataclass(frozen=True)
class LegClose:
    """One leg of one run account to close now: signed quantity and what the order needs."""

    run_account: RunAccount
    leg: RunLeg
    quantity: int  # signed held (after any broker cap)
    product: str
    round_no: int


def entry_product(ledger: LegLedger, default: str) -> str:
    """The product the leg was entered with on this account (the close uses the same)."""
    return ledger.entry_product or default


def book_unreadable(ra: RunAccount, error: str) -> dict[str, Any]:
    """The report entry of a run account whose position book could not be read (nothing closed)."""
    return {"run_account_id": ra.id, "account": ra.account_name, "reason": f"position book unreadable: {error}"}


def round_closes(accounts: Sequence[RunAccount], legs: Sequence[RunLeg], ledgers: dict[int, dict[int, LegLedger]],
                 *, read_book: bool) -> tuple[list[LegClose], list[dict[str, Any]], list[int]]:
    """(closes to plan, what cannot be closed and why, run accounts whose longs wait for the book).

    With `read_book` (or a leg on a later round) each account's closes are capped at its position
    book, read here; without, only the shorts are closed, from the fills, and an account with longs
    to close is returned in the third list."""
    closes: list[LegClose] = []
    unclosable: list[dict[str, Any]] = []
    confirm: list[int] = []
    for ra in accounts:
        ledger = ledgers[ra.id]
        pending = [(leg, ledger[leg.number].held) for leg in legs
                   if ledger[leg.number].held != 0 and not ledger[leg.number].closing]
        if not pending:
            continue
        if read_book or any(ledger[leg.number].next_round > 1 for leg, _ in pending):
            read = read_now(ra.account_id)
            if read.book is None:
                unclosable.append(book_unreadable(ra, read.error))
                continue
            planned, refused = against_book(ra, pending, ledger, read.book)
            closes += planned
            unclosable += refused
            continue
        closes += [LegClose(ra, leg, quantity, entry_product(ledger[leg.number], ra.run.product),
                            ledger[leg.number].next_round) for leg, quantity in pending if quantity < 0]
        if any(quantity > 0 for _, quantity in pending):
            confirm.append(ra.id)
    return closes, unclosable, confirm


def long_closes(ra: RunAccount, legs: Sequence[RunLeg], ledger: dict[int, LegLedger],
                book: Book) -> tuple[list[LegClose], list[dict[str, Any]]]:
    """A risk exit's long closes on one account once its position book is in (`round_closes`
    planned its shorts without it)."""
    longs = [(leg, ledger[leg.number].held) for leg in legs
             if ledger[leg.number].held > 0 and not ledger[leg.number].closing]
    return against_book(ra, longs, ledger, book)


def against_book(ra: RunAccount, pending: Sequence[tuple[RunLeg, int]], ledger: dict[int, LegLedger],
                 book: Book) -> tuple[list[LegClose], list[dict[str, Any]]]:
    """The closes of `pending` legs that the position book allows: each at most what the book
    shows minus what the account's other runs hold long on the contract (`longs_of_other_runs`:
    one net figure per account; other runs' shorts are not trusted)."""
    products = {leg.number: entry_product(ledger[leg.number], ra.run.product) for leg, _ in pending}
    others = longs_of_other_runs(ra.account_id, ra.id,
                                 {(leg.symbol, leg.exchange, products[leg.number]) for leg, _ in pending})
    closes: list[LegClose] = []
    unclosable: list[dict[str, Any]] = []
    left: dict[tuple[str, str, str], int] = {}  # two legs on one contract share its figure
    for leg, quantity in pending:
        product = products[leg.number]
        net = book.get((leg.symbol, leg.exchange, product), 0)
        other = others.get((leg.symbol, leg.exchange, product.upper()), 0)
        key = (leg.symbol, leg.exchange, product)
        capped = cap_at_broker(quantity, left.get(key, net - other))
        left[key] = left.get(key, net - other) - capped
        if capped == 0:
            held_elsewhere = f", {other} of it held long by other runs" if other else ""
            unclosable.append({"run_account_id": ra.id, "account": ra.account_name, "leg": leg.number,
                               "symbol": leg.symbol, "held": quantity, "broker": net,
                               "reason": f"the position book shows {net} of {leg.symbol} {product}{held_elsewhere}"})
            continue
        closes.append(LegClose(ra, leg, capped, product, ledger[leg.number].next_round))
    return closes, unclosable
