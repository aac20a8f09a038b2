"""``make chaos``: lose nothing while anything is killed (issue 14).

A soak runner that builds a replicated stack on infrastructure of its own and breaks it on a
schedule while a long burn-down runs:

* ``_cluster``   a private PostgreSQL cluster (and a streaming standby of it: pg_basebackup
                 -R, promoted mid-run) and a private Redis, on free loopback ports — the
                 shared ones (scripts/services.sh) are never restarted;
* ``_stack``     N processes of every service (scripts/stack.py's port plan) and Python/Go
                 worker processes on multi-address targets, owned as child processes so
                 single replicas can be killed, drained and restarted;
* ``_observe``   pg_locks sampled every 100 ms: holders and gaps per leader loop;
* ``_ledger``    the invariants, read from the ledger, and the audit bundle verified offline;
* ``_scenario``  the run: set-up, faults, burn-down, checks, figures.

tests/acceptance/test_chaos.py runs a short version of the same scenario; docs/chaos.md
explains the figures.
"""

from bench.chaos._scenario import FAULTS, ChaosConfig, ChaosResult, FaultRecord, run_chaos
from bench.chaos._stack import go_toolchain

__all__ = ["FAULTS", "ChaosConfig", "ChaosResult", "FaultRecord", "go_toolchain", "run_chaos"]
