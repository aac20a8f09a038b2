"""The bench's CPU budget (bench/cpu_budget.py): CPU time read from /proc, interpolated over
a window, turned into microseconds per job; the statement table's arithmetic."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.cpu_budget import (
    CpuSampler,
    Statement,
    budget_figures,
    describe_statements,
    process_cpu_s,
    processes_named,
)


def test_a_busy_child_shows_its_cpu_time_and_a_reaped_one_moves_to_its_parent() -> None:
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
    child = subprocess.Popen(
        [sys.executable, "-c", burn + "\nimport sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while process_cpu_s(child.pid) < 0.3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process_cpu_s(child.pid) >= 0.3
        before = process_cpu_s(os.getpid(), reaped_children=True)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=60)
    assert process_cpu_s(child.pid) == 0.0  # gone
    assert process_cpu_s(os.getpid(), reaped_children=True) >= before + 0.3


def test_processes_are_found_by_command_name() -> None:
    name = Path(f"/proc/{os.getpid()}/comm").read_text().strip()
    mine = {pid for pid, _ in processes_named(name)[name]}
    assert os.getpid() in mine


def test_the_window_interpolates_between_samples() -> None:
    sampler = CpuSampler({})
    sampler.samples = [(10.0, {"leases": 1.0}), (10.1, {"leases": 1.2}), (10.2, {"leases": 2.0})]
    assert sampler.at(10.05) == pytest.approx({"leases": 1.1})
    assert sampler.between(10.05, 10.15) == pytest.approx({"leases": 0.5})
    assert sampler.at(9.0) == {"leases": 1.0}  # before the first sample: the first
    assert sampler.at(11.0) == {"leases": 2.0}


def test_budget_per_job_and_busy_share() -> None:
    figures = budget_figures({"postgres": 0.5, "workers": 0.25}, jobs=5000, seconds=1.0)
    assert figures["cpu_us_per_job_postgres"] == pytest.approx(100.0)
    assert figures["cpu_us_per_job_workers"] == pytest.approx(50.0)
    assert figures["cpu_us_per_job_total"] == pytest.approx(150.0)
    assert figures["cpu_busy_pct"] == pytest.approx(75.0 / (os.cpu_count() or 1))


def test_the_statement_table_shows_time_per_job_and_rows_per_call() -> None:
    table = describe_statements(
        [Statement("UPDATE orchestrator.jobs SET state = $1 " + "x" * 200, 40, 2000.0, 2000)],
        jobs=2000,
    )
    header, row = table.splitlines()
    assert "us/job" in header
    assert row.split()[:4] == ["2000", "1000.0", "40", "50.0"]
    assert row.endswith("…")
