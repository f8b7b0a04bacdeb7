"""The engine's roll-up of entered accounts over real HTTP against the paper broker: accounts whose
every entry filled are rolled up together in the pass (policy.roll_up_filled), the run once; an
account that carries a flag is left to its own policy step (an unwind policy then unwinds it)."""

from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.models import ActivityLog
from app.models.execution import ExitRequest, RunAccount, StrategyRun
from app.services.execution import policy
from tests.support.execution import CE, PE, Leg, add_paper_account, drive, intents, make_run, run_done


def _entered_audits(run_id: int) -> int:
    rows = db.session.scalars(select(ActivityLog).where(ActivityLog.action == "execution_run_entered")).all()
    return sum(1 for r in rows if (r.details or {}).get("run_id") == run_id)


def test_two_filled_accounts_roll_up_together_and_the_run_once(one, sim, broker):
    second = add_paper_account(one["app"], one["user"].id, "Two", broker.url, sim.new_account())
    run_id = make_run(one["user"].id, [one["account"], second], [Leg(CE, "BUY"), Leg(PE, "SELL")])
    drive(one["engine"], run_done(run_id))
    assert {r.state for r in intents(run_id)} == {"filled"}
    run = db.session.get(StrategyRun, run_id)
    assert (run.status, sorted(a.status for a in run.accounts)) == ("open", ["open", "open"])
    assert run.entered_at is not None
    assert _entered_audits(run_id) == 1
    # Rolled up already: a second roll-up of the same accounts moves nothing and audits nothing.
    assert policy.roll_up_filled([a.id for a in run.accounts]) == set()
    assert _entered_audits(run_id) == 1


def test_roll_up_filled_moves_no_account_with_an_unfilled_entry(one, sim, broker):
    second = add_paper_account(one["app"], one["user"].id, "Two", broker.url, sim.new_account())
    run_id = make_run(one["user"].id, [one["account"], second], [Leg(CE, "BUY"), Leg(PE, "SELL")])
    first_ra, second_ra = (a.id for a in db.session.get(StrategyRun, run_id).accounts)
    # Nothing filled yet: no account moves.
    assert policy.roll_up_filled([first_ra, second_ra]) == set()
    assert db.session.scalar(select(func.count()).select_from(RunAccount).where(
        RunAccount.run_id == run_id, RunAccount.status == "planned")) == 2


def test_flagged_filled_account_with_unwind_policy_is_unwound_not_rolled_up_open(one, sim):
    run_id = make_run(one["user"].id, [one["account"]], [Leg(CE, "BUY"), Leg(PE, "SELL")], failure_policy="unwind")
    ra = db.session.get(StrategyRun, run_id).accounts[0]
    ra.add_flag("flagged before the entry ended")
    db.session.commit()
    drive(one["engine"], run_done(run_id))
    assert {r.state for r in intents(run_id) if r.purpose == "entry"} == {"filled"}
    # The policy step decided (unwind policy, flagged account), not the bulk roll-up.
    unwind = db.session.scalars(select(ExitRequest).where(ExitRequest.run_account_id == ra.id)).all()
    assert [u.purpose for u in unwind] == ["unwind"]


def test_a_run_left_entering_after_its_accounts_rolled_up_is_rolled_up_by_the_sweep(one):
    # As if the run's roll-up failed after its accounts' commit: every account open, the run entering.
    run_id = make_run(one["user"].id, [one["account"]], [Leg(CE, "BUY")])
    for ra in db.session.get(StrategyRun, run_id).accounts:
        ra.status = "open"
    db.session.commit()
    assert db.session.get(StrategyRun, run_id).status == "entering"
    drive(one["engine"], run_done(run_id))  # the first pass of an engine is a sweep
    run = db.session.get(StrategyRun, run_id)
    assert run.status == "open" and run.entered_at is not None
    assert _entered_audits(run_id) == 1
    assert policy.roll_up_entered_runs() == 0  # nothing left to look at
