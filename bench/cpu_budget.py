"""Where a burn-down's CPU goes: CPU microseconds per job for PostgreSQL, Redis, each service
and the workers, read from ``/proc`` over the burn-down's window, and the statements that
took PostgreSQL's time (``pg_stat_statements``), so a change to the hot path is judged by
numbers rather than by guesses.

A :class:`CpuSampler` thread reads every watched process's CPU time (user + system) every
50 ms; :meth:`CpuSampler.between` interpolates each group's total at the window's two ends
(the first lease and the last completion, read from the ledger: the same window as the
``e2e_jobs_per_s`` figure, so process start-up is left out). PostgreSQL is every
``postgres`` process: the postmaster's own time and that of the backends it has reaped
(``cutime``/``cstime``, where an exited backend's time goes) plus every live backend's. It
is the whole server's, so the figure is only meaningful on a quiet machine, as every bench
figure is.

:class:`StatementTotals` diffs two snapshots of ``pg_stat_statements`` for one database; the
extension must be preloaded (``make services`` configures it on a new machine; an existing
cluster needs one restart) and created in the database the bench connects to. Without it the
table is skipped with a note saying so.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

SAMPLE_INTERVAL_S = 0.05
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (which may hold spaces
    and parentheses), or None when the process is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def process_cpu_s(pid: int, *, reaped_children: bool = False) -> float:
    """CPU seconds (user + system) of ``pid``; with ``reaped_children`` also those of the
    children it has waited for. 0 when the process is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # after the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def _comm(pid: int) -> str:
    try:
        return (PROC / str(pid) / "comm").read_text().strip()
    except OSError:
        return ""


def processes_named(*names: str) -> dict[str, list[tuple[int, int]]]:
    """(pid, parent pid) of every process whose command name is one of ``names`` (one pass
    over the process table)."""
    out: dict[str, list[tuple[int, int]]] = {name: [] for name in names}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (comm := _comm(int(entry.name))) in out:
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                out[comm].append((int(entry.name), int(fields[1])))
    return out


def postgres_cpu_s(procs: list[tuple[int, int]] | None = None) -> float:
    """CPU seconds of the whole PostgreSQL server: each postmaster (a ``postgres`` process
    whose parent is not one) with its reaped backends, plus every live backend (``procs``:
    the ``postgres`` processes, when the caller has read them already)."""
    if procs is None:
        procs = processes_named("postgres")["postgres"]
    pids = {pid for pid, _ in procs}
    return sum(process_cpu_s(pid, reaped_children=parent not in pids) for pid, parent in procs)


@dataclass
class CpuSampler:
    """Samples the CPU time of process groups every 50 ms in a thread.

    Args:
        groups: name -> pids (e.g. ``{"leases": [1234], "workers": [...]}``); ``postgres``
            and ``redis`` are added from the process table.
    """

    groups: Mapping[str, list[int]]
    samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def read(self) -> dict[str, float]:
        out = {name: sum(process_cpu_s(p) for p in pids) for name, pids in self.groups.items()}
        servers = processes_named("postgres", "redis-server")
        out["postgres"] = postgres_cpu_s(servers["postgres"])
        out["redis"] = sum(process_cpu_s(pid) for pid, _ in servers["redis-server"])
        return out

    def start(self) -> CpuSampler:
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), self.read()))
            self._stop.wait(SAMPLE_INTERVAL_S)
        self.samples.append((time.time(), self.read()))

    def at(self, t: float) -> dict[str, float]:
        """Each group's CPU seconds at wall time ``t``, interpolated between samples."""
        if not self.samples:
            raise ValueError("no samples")
        before = [s for s in self.samples if s[0] <= t]
        after = [s for s in self.samples if s[0] >= t]
        if not before:
            return dict(self.samples[0][1])
        if not after:
            return dict(self.samples[-1][1])
        (t0, a), (t1, b) = before[-1], after[0]
        share = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
        return {name: a[name] + (b[name] - a[name]) * share for name in a}

    def between(self, start: float, end: float) -> dict[str, float]:
        """CPU seconds each group used between two wall times."""
        first, last = self.at(start), self.at(end)
        return {name: last[name] - first[name] for name in last}


def budget_figures(used: Mapping[str, float], jobs: int, seconds: float) -> dict[str, float]:
    """``cpu_us_per_job_<group>`` for each group and in total, and ``cpu_busy_pct``: the
    share of the machine's cores the window used."""
    out = {f"cpu_us_per_job_{name}": cpu / jobs * 1e6 for name, cpu in sorted(used.items())}
    total = sum(used.values())
    out["cpu_us_per_job_total"] = total / jobs * 1e6
    out["cpu_busy_pct"] = total / (seconds * (os.cpu_count() or 1)) * 100
    return out


STATEMENTS_SQL = """
SELECT queryid, calls, total_exec_time, rows, query
  FROM pg_stat_statements
 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = %s)
"""


@dataclass(frozen=True)
class Statement:
    query: str
    calls: int
    total_ms: float
    rows: int


class StatementTotals:
    """Per-statement totals of one database between two snapshots of ``pg_stat_statements``.

    Args:
        url: a connection that can read the view (the extension created in its database,
            ``pg_read_all_stats`` to see other sessions' statements).
        database: the database whose statements are counted.
    """

    def __init__(self, url: str, database: str) -> None:
        self.url = url
        self.database = database
        self.unavailable = ""
        self._first: dict[int, tuple[int, float, int]] = {}
        try:
            self._first = {q: (c, t, r) for q, (c, t, r, _) in self._read().items()}
        except psycopg.Error as exc:
            self.unavailable = str(exc).splitlines()[0]

    def _read(self) -> dict[int, tuple[int, float, int, str]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute(STATEMENTS_SQL, (self.database,)).fetchall()
        return {int(q): (int(c), float(t), int(r), str(text)) for q, c, t, r, text in rows}

    def top(self, n: int = 10) -> list[Statement]:
        """The ``n`` statements that took the most execution time since the first snapshot."""
        if self.unavailable:
            return []
        out = []
        for queryid, (calls, total, rows, text) in self._read().items():
            c0, t0, r0 = self._first.get(queryid, (0, 0.0, 0))
            if calls > c0:
                out.append(Statement(" ".join(text.split()), calls - c0, total - t0, rows - r0))
        return sorted(out, key=lambda s: s.total_ms, reverse=True)[:n]


def describe_statements(statements: list[Statement], jobs: int, width: int = 90) -> str:
    """A table: total ms, µs per job, calls, rows per call and the statement's start."""
    lines = [f"{'total ms':>10} {'us/job':>8} {'calls':>8} {'rows/call':>9}  statement"]
    for s in statements:
        per_call = s.rows / s.calls if s.calls else 0.0
        text = s.query if len(s.query) <= width else s.query[: width - 1] + "…"
        lines.append(
            f"{s.total_ms:>10.0f} {s.total_ms * 1000 / jobs:>8.1f} {s.calls:>8} "
            f"{per_call:>9.1f}  {text}"
        )
    return "\n".join(lines)
