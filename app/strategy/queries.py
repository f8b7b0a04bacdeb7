"""Owner-scoped lookups of execution records: another user's id is a 404, never confirmed."""

from __future__ import annotations

from flask import abort
from sqlalchemy import Select, select

from app.extensions import db
from app.models.execution import KillSwitch, RunAccount, StrategyRun
from app.models.users import User


def owned_runs(user: User) -> Select[StrategyRun]:
    """Every query for a user's runs starts here (newest first)."""
    return select(StrategyRun).where(StrategyRun.user_id == user.id).order_by(StrategyRun.id.desc())


def get_owned_run(user: User, run_id: int) -> StrategyRun:
    """The user's run, or 404."""
    run = db.session.scalar(owned_runs(user).where(StrategyRun.id == run_id))
    if run is None:
        abort(404)
    return run


def get_owned_run_account(user: User, run: StrategyRun, run_account_id: int) -> RunAccount:
    """One account's part of the user's run, or 404 (an id of another run or user included)."""
    if run.user_id != user.id:
        abort(404)
    row = db.session.scalar(select(RunAccount).where(RunAccount.id == run_account_id,
                                                     RunAccount.run_id == run.id))
    if row is None:
        abort(404)
    return row


def check_leg_number(run: StrategyRun, leg_number: int) -> int:
    """The leg number when the run has that leg, else 404."""
    if leg_number not in {leg.number for leg in run.legs}:
        abort(404)
    return leg_number


def get_owned_kill_switch(user: User, kill_switch_id: int) -> KillSwitch:
    """The user's kill-switch press, or 404."""
    row = db.session.scalar(select(KillSwitch).where(KillSwitch.id == kill_switch_id,
                                                     KillSwitch.user_id == user.id))
    if row is None:
        abort(404)
    return row
