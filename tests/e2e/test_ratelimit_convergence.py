"""Rate limiting converges on what the upstream allows (issue "Rate limiting and flow control").

The scenario (``bench/ratelimit_convergence.py``, shared with ``make bench``): three simulated
upstream hosts allow 40, 80 and 120 requests/s and answer 429 + ``Retry-After`` beyond that;
3,000 jobs (1,000 per host) run through the real scheduler, the leases service with rate
limiting ON (real Redis) and SDK workers that map 429 → ``UpstreamThrottled``. The
orchestrator is NOT told the rates and starts from the default configuration (nothing binds),
so the per-host buckets must learn them from 429 feedback alone (docs/ratelimits.md).

The test asserts the mechanism, which holds however fast or loaded the machine: every job
succeeds exactly once (nothing dead-lettered for 429s, each job reached its host with exactly
one 200), the upstream did answer 429s, and every host that answered 429 was throttled through
the feedback loop: a ``throttles`` row of origin ``upstream_429`` recording the rate Redis cut
its bucket to, below the default it started from, and the bucket read from Redis during the
run showing that lowered rate (at the end, read before the buckets are purged, a host that
stopped being throttled may have probed back up). How well it
converges (the 429 share after the first 10 s, the burn-down time against the ideal) depends
on the machine's speed: those are ``make bench`` figures, not assertions here.
"""

from __future__ import annotations

import pytest

from bench.ratelimit_convergence import DEFAULT_BUCKET, RATES, describe, run_scenario
from tests.conftest import DEV_SECRET, REDIS_URL

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]


async def test_buckets_converge_on_upstream_rates(scheduler_target: str, database_url: str) -> None:
    run = await run_scenario(database_url, scheduler_target, DEV_SECRET, REDIS_URL)
    print("\n" + describe(run))

    n = len(run.job_ids)
    assert n == len(set(run.job_ids)) == len(RATES) * 1000
    assert run.ledger["states"] == {"succeeded": n}
    assert run.ledger["succeeded_events"] == run.ledger["succeeded_jobs"] == n
    assert run.ledger["dead_letters"] == 0
    ok_calls: dict[str, int] = {}
    for _, _, code, job in run.log:
        if code == 200:
            ok_calls[job] = ok_calls.get(job, 0) + 1
    assert set(ok_calls) == set(run.job_ids)  # every job reached its host successfully ...
    assert max(ok_calls.values()) == 1  # ... exactly once
    assert {code for _, _, code, _ in run.log} <= {200, 429}

    # The feedback loop ran: the default bucket (200/s) is above every host's rate, so the
    # upstream said "slow down" ...
    answered_429 = {run.hosts[label] for _, label, code, _ in run.log if code == 429}
    assert answered_429, "no upstream answered 429: the scenario did not exercise feedback"
    # ... and every host that did was throttled by the leases service: a throttles row,
    # recording the rate Redis cut its bucket to, below the default it started from ...
    assert answered_429 <= set(run.throttled), (answered_429, run.throttled)
    default = DEFAULT_BUCKET.refill_per_s
    assert all(run.throttled[h] < default for h in answered_429), run.throttled
    # ... which the bucket in Redis showed while the workers ran (read each poll).
    assert all(run.lowest_refill.get(h, default) < default for h in answered_429), run.lowest_refill
    # At the end (read before the purge) every host's bucket still inherits the tenant
    # default and none is left paused or with an open circuit. Its effective rate is not
    # asserted: a host that stopped answering 429 recovers additively, up to the default.
    for host in run.hosts.values():
        state = run.buckets[host]
        assert (state.capacity, state.refill_per_s) == (DEFAULT_BUCKET.capacity, default)
        assert state.effective_refill_per_s <= default
        assert state.circuit == "closed", state
