"""Which jobs a resume of a failed run brings back (orchestrator_core.resume)."""

from __future__ import annotations

import uuid

from orchestrator_core import plan_resume

A, B, C, D, E, F, X = (uuid.UUID(int=i) for i in range(1, 8))


def test_dead_job_and_its_canceled_descendants_come_back_and_succeeded_stay() -> None:
    # A (succeeded) -> B (dead) -> C -> D, and A -> E (succeeded) -> D: C and D were canceled.
    jobs = {
        A: ("succeeded", "completed"),
        B: ("dead", "attempts_exhausted"),
        C: ("canceled", "upstream_failed"),
        D: ("canceled", "upstream_failed"),
        E: ("succeeded", "completed"),
    }
    parents = {B: [A], C: [B], D: [C, E], E: [A]}
    plan = plan_resume(jobs, parents)
    assert plan.retry == (B,)
    # C waits on B, D waits on C only (E succeeded): nothing that succeeded is in the plan.
    assert dict(plan.revive) == {C: 1, D: 1}


def test_user_canceled_job_and_everything_below_it_stay_canceled() -> None:
    jobs = {
        A: ("dead", "non_retryable"),
        B: ("canceled", "user_canceled"),
        C: ("canceled", "upstream_failed"),
        D: ("canceled", "upstream_failed"),
    }
    parents = {C: [B], D: [A]}
    plan = plan_resume(jobs, parents)
    assert plan.retry == (A,)
    assert dict(plan.revive) == {D: 1}


def test_a_revived_job_whose_parents_all_succeeded_is_ready_at_once() -> None:
    # F's only parent X is a job of another run: succeeded, F is ready at once.
    jobs = {A: ("dead", "attempts_exhausted"), F: ("canceled", "upstream_failed")}
    assert dict(plan_resume(jobs, {F: [X]}, frozenset({X})).revive) == {F: 0}
    # A parent in another run that has not succeeded blocks the revival.
    assert dict(plan_resume(jobs, {F: [X]}).revive) == {}


def test_a_run_without_dead_jobs_has_nothing_to_resume() -> None:
    jobs = {A: ("succeeded", "completed"), B: ("canceled", "upstream_failed")}
    plan = plan_resume(jobs, {B: [A]})
    assert plan.retry == ()
    assert dict(plan.revive) == {}
