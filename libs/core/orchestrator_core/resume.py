"""Resuming a failed run: which jobs go back to the queue, decided from the run's job states
and DAG edges alone (the store locks the rows, asks this module, then writes the plan).

A resume re-runs the run's dead jobs and revives what their failure canceled: a job canceled
as ``upstream_failed`` comes back when each of its parents has succeeded or comes back too.
Jobs canceled by a user stay canceled, and so does everything below them (it can never run).
Nothing that succeeded is touched, so it never runs again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orchestrator_core.states import JobState, Reason

__all__ = ["ResumePlan", "plan_resume"]


@dataclass(frozen=True)
class ResumePlan:
    """What a resume changes.

    Attributes:
        retry: Dead jobs that go back to ready (id order).
        revive: Canceled jobs that come back, each with its parents not yet succeeded
            (``0``: ready now; otherwise pending until they succeed), in id order.
    """

    retry: tuple[uuid.UUID, ...]
    revive: Mapping[uuid.UUID, int]


def plan_resume(
    jobs: Mapping[uuid.UUID, tuple[str, str]],
    parents: Mapping[uuid.UUID, Sequence[uuid.UUID]],
    succeeded_elsewhere: frozenset[uuid.UUID] = frozenset(),
) -> ResumePlan:
    """Plan the resume of a run.

    Args:
        jobs: Every job of the run: ``{id: (state, reason)}``.
        parents: ``{child id: [parent id, ...]}`` for the run's edges.
        succeeded_elsewhere: Parents outside the run (a job may depend on a job of another
            run) that have succeeded; any other parent outside the run blocks revival.

    Returns:
        The plan; empty (no retry, no revive) when the run has no dead job.
    """
    retry = sorted(jid for jid, (state, _) in jobs.items() if state == JobState.DEAD)
    back: set[uuid.UUID] = set(retry)
    candidates = {
        jid
        for jid, (state, reason) in jobs.items()
        if state == JobState.CANCELED and reason == Reason.UPSTREAM_FAILED
    }
    if not retry:
        return ResumePlan((), {})

    def done(parent: uuid.UUID) -> bool:
        if parent in jobs:
            return jobs[parent][0] == JobState.SUCCEEDED
        return parent in succeeded_elsewhere

    def comes_back(jid: uuid.UUID) -> bool:
        return all(p in back or done(p) for p in parents.get(jid, ()))

    # Fixpoint over the DAG: a candidate comes back once all its parents are succeeded or
    # coming back; a DAG of n jobs settles in at most n rounds (each adds one at least).
    changed = True
    while changed:
        changed = False
        for jid in sorted(candidates - back):
            if comes_back(jid):
                back.add(jid)
                changed = True
    revive = {
        jid: sum(1 for p in parents.get(jid, ()) if p in back) for jid in sorted(back - set(retry))
    }
    return ResumePlan(tuple(retry), revive)
