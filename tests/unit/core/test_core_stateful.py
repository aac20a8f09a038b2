"""Stateful property test: a small DAG of jobs driven through the core's rules.

An in-memory ledger (the shape the Postgres store has: mutable rows plus an event list)
moves jobs with ``check_transition``, ``decide_failure``/``failure_reason`` and
``backoff_s``; Hypothesis picks the operations. After every step the invariants of
docs/state-machine.md must hold, and replaying each job's events with ``fold`` must rebuild its row.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from orchestrator_core import (
    LEGAL_TRANSITIONS,
    TERMINAL_JOB_STATES,
    FrozenClock,
    IllegalTransition,
    JobState,
    LeaseLost,
    Reason,
    RetryPolicy,
    RunState,
    TransitionEvent,
    backoff_ceiling_s,
    backoff_s,
    check_transition,
    decide_failure,
    derive_run_state,
    failure_reason,
    fold,
    is_expected_reason,
    new_id,
)

S = JobState
# a → c → d, b → c, a → e  (listed in topological order)
DAG: dict[str, tuple[str, ...]] = {"a": (), "b": (), "c": ("a", "b"), "d": ("c",), "e": ("a",)}
JOBS = list(DAG)
CHILDREN = {name: [c for c, parents in DAG.items() if name in parents] for name in DAG}
POLICY = RetryPolicy(max_attempts=3, initial_backoff_s=1.0, max_backoff_s=8.0, multiplier=2.0)
LEASE_TTL = timedelta(seconds=30)

job_names = st.sampled_from(JOBS)


@dataclass
class Row:
    """What the ledger stores per job (mutated in place, like a database row)."""

    state: JobState
    reason: Reason
    attempt: int = 0
    lease_id: str | None = None
    lease_expires_at: datetime | None = None
    not_before: datetime | None = None
    old_leases: list[str] = field(default_factory=list)


class DagLedger(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FrozenClock()
        self.rng = random.Random(0)
        self.rows: dict[str, Row] = {}
        self.events: dict[str, list[TransitionEvent]] = {name: [] for name in JOBS}
        self.log: list[tuple[str, JobState | None, JobState, Reason]] = []
        self.checked = 0

    # -- ledger operations ------------------------------------------------------------------

    def _move(self, name: str, to: JobState, reason: Reason) -> None:
        row = self.rows.get(name)
        previous = row.state if row is not None else None
        check_transition(previous, to, job_id=name)
        assert is_expected_reason(previous, to, reason), (previous, to, reason)
        if row is None:
            row = self.rows[name] = Row(state=to, reason=reason)
        ended_lease = row.lease_id
        if to is S.LEASED:
            row.attempt += 1
            row.lease_id = new_id(self.clock)
            row.lease_expires_at = self.clock.now() + LEASE_TTL
        elif row.lease_id is not None:
            row.old_leases.append(row.lease_id)
            row.lease_id = row.lease_expires_at = None
        if reason is Reason.OPERATOR_RETRY:
            row.attempt = 0  # an operator retry grants a fresh attempt budget
        row.state, row.reason = to, reason
        self.events[name].append(
            TransitionEvent.for_transition(
                previous,
                to,
                reason,
                attempt=row.attempt,
                occurred_at=self.clock.now(),
                lease_id=row.lease_id if to is S.LEASED else ended_lease,
                job_id=name,
                max_attempts=POLICY.max_attempts if previous is None else None,
            )
        )
        self.log.append((name, previous, to, reason))

    @staticmethod
    def _fence(name: str, presented: str, current: str | None) -> None:
        if presented != current:
            raise LeaseLost(name, presented)

    def _state(self, name: str) -> JobState | None:
        row = self.rows.get(name)
        return row.state if row is not None else None

    def _assert_refused(self, name: str, to: JobState) -> None:
        before = self._state(name)
        with pytest.raises(IllegalTransition):
            check_transition(before, to, job_id=name)
        assert self._state(name) == before

    def _cancel_descendants(self, name: str) -> None:
        for child in CHILDREN[name]:
            state = self._state(child)
            if state is not None and state not in TERMINAL_JOB_STATES:
                self._move(child, S.CANCELED, Reason.UPSTREAM_FAILED)
                self._cancel_descendants(child)

    def _promote_children(self, name: str) -> None:
        for child in CHILDREN[name]:
            if self._state(child) is S.PENDING and all(
                self._state(p) is S.SUCCEEDED for p in DAG[child]
            ):
                self._move(child, S.READY, Reason.DEPENDENCIES_MET)

    def _fail(self, name: str, retryable: bool, retry_reason: Reason, after: float | None) -> None:
        row = self.rows[name]
        to = decide_failure(POLICY, row.attempt, retryable)
        reason = failure_reason(POLICY, row.attempt, retryable, retry_reason=retry_reason)
        failed_attempt = row.attempt
        self._move(name, to, reason)
        if to is S.READY:
            delay = backoff_s(POLICY, failed_attempt, self.rng, retry_after_s=after)
            ceiling = backoff_ceiling_s(POLICY, failed_attempt)
            assert 0 <= delay <= max(ceiling, after or 0.0)
            if after is not None:
                assert delay >= after
            row.not_before = self.clock.now() + timedelta(seconds=delay)
        else:
            assert failed_attempt == POLICY.max_attempts or not retryable
            self._cancel_descendants(name)

    # -- rules ------------------------------------------------------------------------------

    @initialize(seed=st.integers(min_value=0, max_value=2**32))
    def seed_rng(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def _in(self, *states: JobState) -> list[str]:
        return [name for name, row in self.rows.items() if row.state in states]

    def _pick(self, data: st.DataObject, *states: JobState) -> str:
        return data.draw(st.sampled_from(self._in(*states)), label="job")

    @precondition(lambda self: len(self.rows) < len(JOBS))
    @rule()
    def submit_next(self) -> None:
        name = next(n for n in JOBS if n not in self.rows)  # topological order
        parents = [self._state(p) for p in DAG[name]]
        if all(p is S.SUCCEEDED for p in parents):
            self._move(name, S.READY, Reason.SUBMITTED)
            return
        self._move(name, S.PENDING, Reason.WAITING_ON_PARENTS)
        if any(p in (S.DEAD, S.CANCELED) for p in parents):
            self._move(name, S.CANCELED, Reason.UPSTREAM_FAILED)

    def _claim(self, name: str) -> None:
        row = self.rows[name]
        if row.not_before is not None and row.not_before > self.clock.now():
            self.clock.set(row.not_before)  # the worker waits for the backoff to pass
        self._move(name, S.LEASED, Reason.LEASED)

    @precondition(lambda self: self._in(S.READY))
    @rule(data=st.data())
    def claim(self, data: st.DataObject) -> None:
        self._claim(self._pick(data, S.READY))

    @precondition(lambda self: self._in(S.LEASED))
    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        name = self._pick(data, S.LEASED)
        row = self.rows[name]
        model = fold(self.events[name])
        assert model is not None
        self._fence(name, row.lease_id or "", model.lease_id)
        self._move(name, S.SUCCEEDED, Reason.COMPLETED)
        self._promote_children(name)

    @precondition(lambda self: any(self.rows[n].old_leases for n in self._in(S.LEASED)))
    @rule(data=st.data())
    def complete_with_stale_lease(self, data: st.DataObject) -> None:
        # A worker whose lease was taken away tries to finish. The fence compares the
        # presented lease with the current one as replay rebuilds it: refused, no change.
        name = data.draw(
            st.sampled_from([n for n in self._in(S.LEASED) if self.rows[n].old_leases])
        )
        row = self.rows[name]
        presented = data.draw(st.sampled_from(row.old_leases))
        model = fold(self.events[name])
        assert model is not None
        with pytest.raises(LeaseLost):
            self._fence(name, presented, model.lease_id)
        assert row.state is S.LEASED

    @precondition(lambda self: self._in(S.LEASED))
    @rule(
        data=st.data(),
        retryable=st.booleans(),
        retry_after=st.none() | st.floats(min_value=0, max_value=60),
    )
    def fail(self, data: st.DataObject, retryable: bool, retry_after: float | None) -> None:
        self._fail(self._pick(data, S.LEASED), retryable, Reason.RETRY_BACKOFF, retry_after)

    @precondition(lambda self: self._in(S.READY))
    @rule(data=st.data(), retryable=st.booleans())
    def claim_then_fail(self, data: st.DataObject, retryable: bool) -> None:
        # One worker cycle in one step, so retry chains reach the attempt limit often.
        name = self._pick(data, S.READY)
        self._claim(name)
        self._fail(name, retryable, Reason.RETRY_BACKOFF, None)

    @precondition(lambda self: self._in(S.READY))
    @rule(data=st.data())
    def flaky_until_dead(self, data: st.DataObject) -> None:
        # A job that always fails retryably: exactly max_attempts leases, then dead.
        name = self._pick(data, S.READY)
        start = self.rows[name].attempt
        for _ in range(2 * POLICY.max_attempts):
            if self._state(name) is not S.READY:
                break
            self._claim(name)
            self._fail(name, True, Reason.RETRY_BACKOFF, None)
        row = self.rows[name]
        assert (row.state, row.reason) == (S.DEAD, Reason.ATTEMPTS_EXHAUSTED)
        assert row.attempt == POLICY.max_attempts > start

    @precondition(lambda self: self._in(S.LEASED))
    @rule(data=st.data())
    def expire_lease(self, data: st.DataObject) -> None:
        name = self._pick(data, S.LEASED)
        expires_at = self.rows[name].lease_expires_at
        assert expires_at is not None
        if expires_at > self.clock.now():
            self.clock.set(expires_at)
        self._fail(name, True, Reason.LEASE_EXPIRED, None)

    @precondition(lambda self: self._in(S.READY))
    @rule(data=st.data())
    def dead_letter_ready(self, data: st.DataObject) -> None:
        name = self._pick(data, S.READY)
        self._move(name, S.DEAD, Reason.NON_RETRYABLE)
        self._cancel_descendants(name)

    @precondition(lambda self: self._in(S.PENDING, S.READY, S.LEASED))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        name = self._pick(data, S.PENDING, S.READY, S.LEASED)
        self._move(name, S.CANCELED, Reason.USER_CANCELED)
        self._cancel_descendants(name)

    @precondition(lambda self: self._in(S.DEAD))
    @rule(data=st.data())
    def operator_retry(self, data: st.DataObject) -> None:
        name = self._pick(data, S.DEAD)
        self._move(name, S.READY, Reason.OPERATOR_RETRY)
        self.rows[name].not_before = None

    @rule(name=job_names, to=st.sampled_from(list(JobState)))
    def illegal_request_is_refused(self, name: str, to: JobState) -> None:
        state = self._state(name)
        if to in LEGAL_TRANSITIONS[state]:
            # Legal in general; an operator retry must still be told apart by its reason.
            if to is S.READY and state is not S.DEAD:
                assert not is_expected_reason(state, S.READY, Reason.OPERATOR_RETRY)
            return
        self._assert_refused(name, to)

    @rule(seconds=st.floats(min_value=0, max_value=120))
    def tick(self, seconds: float) -> None:
        self.clock.advance(seconds)

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def states_are_job_states(self) -> None:
        assert all(isinstance(row.state, JobState) for row in self.rows.values())

    @invariant()
    def terminal_states_only_leave_by_operator_retry(self) -> None:
        for _name, previous, new, reason in self.log[self.checked :]:
            if previous in TERMINAL_JOB_STATES:
                assert (previous, new, reason) == (S.DEAD, S.READY, Reason.OPERATOR_RETRY)
        self.checked = len(self.log)

    @invariant()
    def attempts_stay_within_budget(self) -> None:
        for row in self.rows.values():
            assert 0 <= row.attempt <= POLICY.max_attempts
            if row.reason is Reason.ATTEMPTS_EXHAUSTED:
                assert row.attempt == POLICY.max_attempts

    @invariant()
    def dag_order_is_respected(self) -> None:
        for name, row in self.rows.items():
            parents = [self._state(p) for p in DAG[name]]
            if row.state in (S.READY, S.LEASED):
                assert all(p is S.SUCCEEDED for p in parents), (name, row.state, parents)
            if row.state not in TERMINAL_JOB_STATES:
                assert not any(p in (S.DEAD, S.CANCELED) for p in parents), (name, parents)
            if row.state is S.PENDING:
                assert not all(p is S.SUCCEEDED for p in parents), (name, parents)

    @invariant()
    def lease_is_held_exactly_while_leased(self) -> None:
        for row in self.rows.values():
            assert (row.lease_id is not None) == (row.state is S.LEASED)
            assert (row.lease_expires_at is not None) == (row.state is S.LEASED)

    @invariant()
    def replay_rebuilds_every_row(self) -> None:
        for name, row in self.rows.items():
            model = fold(self.events[name])
            assert model is not None
            assert (model.job_id, model.state, model.reason) == (name, row.state, row.reason)
            assert (model.attempt, model.lease_id) == (row.attempt, row.lease_id)
            assert model.version == len(self.events[name])
            assert (model.finished_at is not None) == (row.state in TERMINAL_JOB_STATES)

    @invariant()
    def run_state_matches_jobs(self) -> None:
        counts: dict[JobState, int] = {}
        for row in self.rows.values():
            counts[row.state] = counts.get(row.state, 0) + 1
        run = derive_run_state(counts)
        states = [row.state for row in self.rows.values()]
        finished = bool(states) and all(s in TERMINAL_JOB_STATES for s in states)
        assert (run in (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELED)) == finished
        assert (run is RunState.SUCCEEDED) == (finished and set(states) == {S.SUCCEEDED})
        assert (run is RunState.FAILED) == (finished and S.DEAD in states)
        if S.LEASED in states:
            assert run is RunState.RUNNING


DagLedger.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestDagLedger = DagLedger.TestCase
