"""`make demo ARGS=--exit`, as CI runs it: the whole stack, the simulated upstream and the
worker fleet, on free ports and the session's own database. Every demo job must end
succeeded, dead-lettered with a reason, or canceled because its upstream job died; every
broken upstream window (a job dead after 5 attempts answered 500) opened an incident. Then
(`--resume-failed`, issue 20) the upstream's windows are fixed and every failed run is
resumed: each ends succeeded, and every job — those that had succeeded before included —
succeeded exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bench.ports import free_port
from tests.conftest import migrated_database

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo_database(admin_url: str) -> Iterator[str]:
    """A database of the demo's own. The session's database has leaders in this process (the
    session-scoped scheduler's incident watcher, the leases watchdog) whose event loop does
    not run while this synchronous test waits on the demo: they keep their advisory locks,
    so the demo's services never lead those loops and no incident opens (the test failed
    whenever a test using the session's scheduler ran before it). The demo's stack migrates
    and registers its tenant itself, as on a fresh machine."""
    with migrated_database(admin_url, "orch_demo") as url:
        yield url


# The demo's feeds have real per-host rate limits, so it takes minutes of wall-clock time
# whatever the machine; the bound is generous so a loaded CI machine cannot fail it.
@pytest.mark.timeout(1200)
def test_demo_runs_to_completion_and_explains_every_failure(demo_database: str, tmp_path):
    database_url = demo_database
    env = {
        **os.environ,
        "ORCH_DATABASE_URL": database_url,
        "ORCH_STATE_DIR": str(tmp_path),
        "ORCH_SCHEDULER_GRPC_PORT": str(free_port()),
        "ORCH_LEASES_GRPC_PORT": str(free_port()),
        "ORCH_SCHEDULER_METRICS_PORT": str(free_port()),
        "ORCH_LEASES_METRICS_PORT": str(free_port()),
        "ORCH_RATELIMIT_GRPC_PORT": str(free_port()),
        "ORCH_RATELIMIT_METRICS_PORT": str(free_port()),
        "ORCH_RATELIMIT_ENVOY_GRPC_PORT": str(free_port()),
        "ORCH_AUDIT_GRPC_PORT": str(free_port()),
        "ORCH_AUDIT_METRICS_PORT": str(free_port()),
        "ORCH_GATEWAY_HTTP_PORT": str(free_port()),
        "ORCH_RATELIMIT_KEY_PREFIX": f"orch:demo-test:{tmp_path.name}:",
        "ORCH_GATEWAY_RATELIMIT_KEY_PREFIX": f"orch:demo-gw-test:{tmp_path.name}:",
        "COLUMNS": "160",
    }
    env.pop("ORCH_AUTH_HS256_SECRET", None)
    done = subprocess.run(
        [sys.executable, "-m", "demo", "--exit", "--resume-failed"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1000,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "jobs finished" in done.stdout
    assert "Demo runs" in done.stdout
    # issue 15: each feed's 429 share and achieved rate against its upstream's limit
    for column in ("429 share", "achieved/s", "upstream limit/s"):
        assert column in done.stdout, column
    print(done.stdout[done.stdout.index("Demo runs") :][:2500])
    assert "Console: http://127.0.0.1:" in done.stdout
    with psycopg.connect(database_url) as db:
        rows = db.execute(
            "SELECT j.state, j.reason, d.error_class"
            "  FROM orchestrator.jobs j JOIN orchestrator.runs r ON r.id = j.run_id"
            "  LEFT JOIN orchestrator.dead_letter d ON d.job_id = j.id"
            " WHERE r.tenant = 'demo' AND r.name LIKE '%-pipeline'"
        ).fetchall()
        broken = db.execute(
            "SELECT DISTINCT j.job_type, j.source_id"
            "  FROM orchestrator.jobs j JOIN orchestrator.runs r ON r.id = j.run_id"
            "  JOIN orchestrator.dead_letter d ON d.job_id = j.id"
            " WHERE r.tenant = 'demo' AND r.name LIKE '%-pipeline' AND d.error_class = 'http_5xx'"
        ).fetchall()
        incidents = db.execute(
            "SELECT job_type, source_id FROM orchestrator.incidents"
            " WHERE tenant = 'demo' AND error_class = 'http_5xx'"
        ).fetchall()
    assert broken, "the demo's upstream has broken windows"
    assert set(broken) <= set(incidents)  # each broken window's cluster opened an incident
    assert "Open incidents" in done.stdout
    assert len(rows) == 4 * 114
    states = {state for state, _reason, _cls in rows}
    assert states <= {"succeeded", "dead", "canceled"}
    assert sum(1 for s, _r, _c in rows if s == "succeeded") > 0.8 * len(rows)
    for state, reason, error_class in rows:
        if state == "dead":
            assert error_class in ("http_5xx", "parse_error"), (reason, error_class)
        if state == "canceled":
            assert reason == "upstream_failed"
    # The failed runs were resumed after the fix: every pipeline run ends succeeded and no
    # job ran to success twice (a job that had succeeded before the resume was not re-run).
    assert "Resumed runs" in done.stdout
    with psycopg.connect(database_url) as db:
        run_states = db.execute(
            "SELECT state FROM orchestrator.runs WHERE tenant = 'demo' AND name LIKE '%-pipeline'"
        ).fetchall()
        twice = db.execute(
            "SELECT e.job_id FROM orchestrator.events e JOIN orchestrator.runs r ON r.id = e.run_id"
            " WHERE r.tenant = 'demo' AND e.type = 'job.succeeded'"
            " GROUP BY e.job_id HAVING count(*) > 1"
        ).fetchall()
        resumes = db.execute(
            "SELECT count(*) FROM orchestrator.audit_entries"
            " WHERE tenant = 'demo' AND action = 'run.resume'"
        ).fetchone()
    assert {s for (s,) in run_states} == {"succeeded"}
    assert twice == []
    assert resumes is not None
    assert resumes[0] >= 1
    # the services were stopped again and left no pid files behind
    assert not list(tmp_path.glob("*.pid"))
