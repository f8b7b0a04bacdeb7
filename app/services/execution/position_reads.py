"""Position books read in the engine's pool, for a step that must not wait for the broker.

A risk exit's longs are closed only once the account's position book confirms them, but the
book is read while the shorts are already out: the exit manager asks `PositionReads.get`, which
starts the read in a job and answers None; the job's end wakes the engine, and the next pass's
step finds the book (or the reason it could not be read). Each answer is handed out once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.broker.errors import BrokerError
from app.extensions import db
from app.models import TradingAccount
from app.services.accounts import client_for

logger = logging.getLogger(__name__)

# An answer older than this is not used (a book read before a leader change, or before other
# runs' fills were recorded, must not cap a close now): it is dropped and the book read again.
FRESH_SECONDS = 5.0

Book = dict[tuple[str, str, str], int]


@dataclass(frozen=True)
class PositionRead:
    """One read of an account's position book: the net per contract, or why it failed."""

    book: Book | None
    error: str = ""


def broker_net(account: TradingAccount) -> Book:
    """The position book of an account: net quantity per (symbol, exchange, product).

    Raises:
        BrokerError: the book could not be read.
    """
    db.session.commit()  # no transaction open across the broker call
    net: Book = {}
    for pos in client_for(account).positions():
        key = (pos.symbol, pos.exchange, pos.product)
        net[key] = net.get(key, 0) + pos.quantity
    return net


def read_now(account_id: int) -> PositionRead:
    """Read the account's position book here (nothing left open in the session across the call).

    Never raises: a book that cannot be read is an answer with its reason, so that a close round
    waiting for it counts towards its idle limit instead of failing the step on every pass.
    Anything but a broker error (an undecryptable key, a database error) is logged in full and
    named by its type only in the answer, which the run page shows."""
    try:
        account = db.session.get(TradingAccount, account_id)
        if account is None:
            return PositionRead(None, "the account no longer exists")
        return PositionRead(broker_net(account))
    except BrokerError as exc:
        return PositionRead(None, str(exc))
    except Exception as exc:
        logger.exception("position book of account %s not read", account_id)
        try:
            db.session.rollback()
        except Exception:  # a broken connection: the pool replaces it on the next checkout
            logger.exception("rollback after the failed position-book read of account %s failed", account_id)
        return PositionRead(None, f"{type(exc).__name__} (details in the log)")


class PositionReads:
    """Reads started by the exit manager's step and collected by a later pass (engine-owned)."""

    def __init__(self, submit: Callable[..., int]):
        self._submit = submit  # ExecutionEngine._submit: one job per key, wakes the engine at its end
        self._lock = threading.Lock()
        self._answers: dict[str, tuple[float, PositionRead]] = {}

    def get(self, key: str, account_id: int) -> PositionRead | None:
        """The book read for `key`, once it is in; None while it is being read (started here)."""
        now = time.monotonic()
        with self._lock:
            for old in [k for k, (at, _) in self._answers.items() if now - at > FRESH_SECONDS]:
                del self._answers[old]
            answer = self._answers.pop(key, None)
        if answer is not None:
            return answer[1]
        self._submit(f"positions:{key}", self._job, key, account_id)
        return None

    def _job(self, key: str, account_id: int) -> None:
        read = read_now(account_id)  # an answer even when it fails, so the request moves on
        if read.error:
            logger.info("position book for %s (account %s) not read: %s", key, account_id, read.error)
        with self._lock:
            self._answers[key] = (time.monotonic(), read)


def reader_of(ctx: Any) -> Callable[[str, int], PositionRead | None]:
    """How a step reads a book: through the engine's pool when it runs in one, else at once."""
    reads = getattr(ctx, "position_reads", None)
    if isinstance(reads, PositionReads):
        return reads.get
    return lambda _key, account_id: read_now(account_id)
