"""One chaos run: a private PostgreSQL and Redis, N replicas of every service, workers on
multi-address targets, a long DAG burn-down and a once-a-minute schedule, faults on a
schedule, then the ledger's invariants.

The burn-down is one run (one CreateRun, so one audit bundle) of ``jobs`` jobs in groups of
five: a root, three children of the root and a sink that waits for the three (fan-out and
fan-in). The roots' ``not_before`` spreads over the first 80 % of the run, so work flows
while every fault happens instead of draining before the first one.

Faults, evenly spaced over the run, each waited out (every replica SERVING again and a job
succeeded after it) before the next:

* ``kill_leases``            SIGKILL leases-0, start it again
* ``kill_schedule_leader``   SIGKILL the scheduler replica leading schedule firing, restart it
* ``rolling_leases``         SIGTERM leases-1 (ServerDrain: it must exit 0), start it again
* ``restart_postgres``       ``pg_ctl restart -m fast`` of the primary
* ``stop_redis``             Redis down for ``redis_down_s``
* ``promote_standby``        (with ``standby=True``) stop the primary, promote the streaming
                             standby; services hold a multi-host URL and find it themselves
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import shutil
import signal
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import grpc
import psycopg
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2

from bench.chaos._cluster import PrivatePostgres, PrivateRedis, temp_root
from bench.chaos._ledger import Verdict, check_bundle, check_jobs, check_schedule
from bench.chaos._observe import HELD_LOOPS, Sampler, gap_after, loop_intervals
from bench.chaos._stack import Stack, Workers
from orchestrator_grpckit import mint_dev_token
from orchestrator_pg import migrate
from stella.orchestrator.v1 import resources_pb2, scheduler_pb2, scheduler_pb2_grpc
from stella_orchestrator.targets import channel_options, channel_target

SECRET = "chaos-secret-0123456789abcdef0123"
TENANT = "chaos"
JOB_TYPE = "chaos.step"
TICK_TYPE = "chaos.tick"
GROUP = 5  # root, three children, a sink
FAULTS = ("kill_leases", "kill_schedule_leader", "rolling_leases", "restart_postgres", "stop_redis")
# Bounds, not expectations: a loaded 2-core machine is slow at everything.
RECOVERY_TIMEOUT_S = 300.0
RPC_RETRY_S = 300.0
# A fire time is checked once it was due this long before the schedule was stopped (the
# leader's firing pass runs every second; a loaded machine may run it late).
FIRE_LAG = timedelta(seconds=30)

_log = logging.getLogger("bench.chaos")


@dataclass
class ChaosConfig:
    """What to run. Defaults are ``make chaos``'s (issue 14's acceptance scenario)."""

    jobs: int = 10_000
    seconds: float = 600.0
    replicas: int = 2
    python_workers: int = 4
    go_workers: int = 2
    concurrency: int = 20
    redis_down_s: float = 10.0
    standby: bool = False
    faults: tuple[str, ...] = FAULTS
    lease_ttl_s: float = 15.0
    drain_timeout_s: float = 300.0  # after the last fault, for the burn-down to finish
    keep: bool = False
    root: Path | None = None
    on_progress: Callable[[str], None] = field(default=print)


@dataclass
class FaultRecord:
    """One fault on the monotonic clock: injected, lifted (the process started again, the
    database or Redis back), every replica SERVING again (restored), and a job leased after
    the lift succeeded (recovered)."""

    name: str
    injected: float
    lifted: float = 0.0
    restored: float = 0.0
    recovered: float = float("nan")
    detail: str = ""
    led: list[str] = field(default_factory=list)  # loops the killed replica led
    injected_at: datetime | None = None  # the database's time just before the injection


@dataclass
class ChaosResult:
    verdict: Verdict
    faults: list[FaultRecord]
    max_holders: dict[str, int]
    leader_gaps: dict[str, float]
    root: Path

    @property
    def ok(self) -> bool:
        return not self.verdict.problems

    def lines(self) -> list[str]:
        """Every figure as ``name value unit``."""
        out = []
        for name, (value, unit) in self.verdict.figures.items():
            text = f"{value:.0f}" if float(value).is_integer() and unit != "s" else f"{value:.1f}"
            out.append(f"{name} {text} {unit}")
        return out


def _retry(what: str, call: Callable[[], object]) -> object:
    """``call`` until it stops answering UNAVAILABLE (a replica or the database away)."""
    deadline = time.monotonic() + RPC_RETRY_S
    delay = 0.2
    while True:
        try:
            return call()
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]
            retryable = code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
            if not retryable or time.monotonic() > deadline:
                raise
            _log.info("%s: %s, retrying", what, code.name)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def dag(jobs: int, spread_s: float) -> list[resources_pb2.JobSpec]:
    """``jobs`` jobs in groups of five (root -> 3 children -> sink; the remainder standalone
    roots); each group's root not before now + its share of ``spread_s``."""
    specs: list[resources_pb2.JobSpec] = []
    groups = jobs // GROUP
    start = time.time()

    def root(key: str, share: float) -> resources_pb2.JobSpec:
        not_before = timestamp_pb2.Timestamp()
        not_before.FromNanoseconds(int((start + spread_s * share) * 1e9))
        return resources_pb2.JobSpec(key=key, job_type=JOB_TYPE, not_before=not_before)

    for g in range(groups):
        specs.append(root(f"g{g}-root", g / groups))
        children = [f"g{g}-c{i}" for i in range(3)]
        for child in children:
            specs.append(
                resources_pb2.JobSpec(key=child, job_type=JOB_TYPE, depends_on=[f"g{g}-root"])
            )
        specs.append(
            resources_pb2.JobSpec(key=f"g{g}-sink", job_type=JOB_TYPE, depends_on=children)
        )
    for i in range(jobs - len(specs)):
        specs.append(root(f"extra-{i}", 1.0))
    return specs


class ChaosRun:
    """Builds the world, injects the faults, checks the ledger. Use :func:`run_chaos`."""

    def __init__(self, config: ChaosConfig) -> None:
        self.config = config
        self.root = config.root or temp_root()
        self.pg = PrivatePostgres(self.root / "pg")
        self.redis = PrivateRedis(self.root / "redis")
        self.stack: Stack | None = None
        self.workers: Workers | None = None
        self.sampler: Sampler | None = None
        self.faults: list[FaultRecord] = []
        self.verdict = Verdict()
        self.operator = mint_dev_token(
            SECRET, "chaos-op", [TENANT], ["orch:read", "orch:operate"], ttl_s=86400
        )
        self.run_id = ""
        self.schedule_id = ""
        self.schedule_disabled_at: datetime | None = None

    def say(self, text: str) -> None:
        self.config.on_progress(f"[chaos] {text}")

    # -- set-up ---------------------------------------------------------------------------
    def setup(self) -> None:
        cfg = self.config
        self.pg.create()
        self.redis.start()
        if cfg.standby:
            node = self.pg.add_standby()
            self.say(f"streaming standby on port {node.port}; services use {self.pg.url}")
        asyncio.run(migrate(self.pg.url))
        with psycopg.connect(self.pg.url, autocommit=True) as conn:
            conn.execute("INSERT INTO orchestrator.tenants (id) VALUES (%s)", (TENANT,))
        env = {
            "ORCH_DATABASE_URL": self.pg.url,
            "ORCH_REDIS_URL": self.redis.url,
            "ORCH_AUTH_HS256_SECRET": SECRET,
            "ORCH_LEASE_TTL_S": str(cfg.lease_ttl_s),
            "ORCH_SHUTDOWN_GRACE_S": "30",
            "ORCH_LOG_LEVEL": "INFO",
        }
        self.stack = Stack(self.root / "run", cfg.replicas, env)
        self.say(f"starting {len(self.stack.replicas)} service processes (logs: {self.stack.logs})")
        self.stack.start_all()
        self.sampler = Sampler(self.pg.url)
        self.sampler.start()

    def _scheduler(self, channel: grpc.Channel) -> Callable[[str, object], object]:
        stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
        metadata = (("authorization", f"Bearer {self.operator}"),)

        def call(method: str, request: object) -> object:
            return _retry(
                method, lambda: getattr(stub, method)(request, metadata=metadata, timeout=120)
            )

        return call

    def submit(self) -> None:
        assert self.stack is not None
        cfg = self.config
        target = self.stack.target("scheduler")
        with grpc.insecure_channel(channel_target(target), channel_options()) as channel:
            call = self._scheduler(channel)
            schedule = resources_pb2.Schedule(
                name="chaos-every-minute",
                cron="* * * * *",
                run_template=resources_pb2.RunTemplate(
                    name="chaos-tick-{fire_time}",
                    jobs=[resources_pb2.JobSpec(key="tick", job_type=TICK_TYPE)],
                ),
                catch_up=resources_pb2.CATCH_UP_POLICY_ALL,
                overlap=resources_pb2.OVERLAP_POLICY_ALLOW,
                catch_up_window=duration_pb2.Duration(seconds=3600),
                enabled=True,
            )
            created = call("CreateSchedule", scheduler_pb2.CreateScheduleRequest(schedule=schedule))
            self.schedule_id = created.schedule.id  # type: ignore[attr-defined]
            reply = call(
                "CreateRun",
                scheduler_pb2.CreateRunRequest(
                    name="chaos-burn-down",
                    idempotency_key=f"chaos-{uuid.uuid4()}",
                    jobs=dag(cfg.jobs, cfg.seconds * 0.8),
                ),
            )
            self.run_id = reply.run.id  # type: ignore[attr-defined]
        self.say(f"run {self.run_id}: {cfg.jobs} jobs; schedule {self.schedule_id} every minute")

    def start_workers(self) -> None:
        assert self.stack is not None
        cfg = self.config
        token = mint_dev_token(SECRET, "chaos-fleet", [TENANT], ["orch:work"], ttl_s=86400)
        self.workers = Workers(
            self.root / "run", self.stack.target("leases"), token, [JOB_TYPE, TICK_TYPE]
        )
        self.workers.start_python(cfg.python_workers, cfg.concurrency)
        self.workers.start_go(cfg.go_workers, cfg.concurrency)
        self.say(
            f"{cfg.python_workers} Python + {cfg.go_workers} Go workers on {self.workers.target}"
        )

    # -- faults ---------------------------------------------------------------------------
    def _db_now(self) -> datetime:
        deadline = time.monotonic() + RECOVERY_TIMEOUT_S
        while True:
            try:
                with psycopg.connect(self.pg.url, autocommit=True, connect_timeout=5) as conn:
                    row = conn.execute("SELECT now()").fetchone()
                    assert row is not None
                    now: datetime = row[0]
                    return now
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def _recovered(self, record: FaultRecord) -> None:
        """Waits until every replica is SERVING and a job leased after the lift succeeded."""
        assert self.stack is not None
        record.lifted = time.monotonic()
        lifted_at = self._db_now()
        self.stack.wait_serving([r.name for r in self.stack.replicas], RECOVERY_TIMEOUT_S)
        record.restored = time.monotonic()
        deadline = time.monotonic() + RECOVERY_TIMEOUT_S
        delay = 0.05
        with psycopg.connect(self.pg.url, autocommit=True) as conn:
            while True:
                row = conn.execute(
                    "SELECT count(*) FROM orchestrator.jobs WHERE tenant = %s"
                    " AND state = 'succeeded' AND leased_at >= %s",
                    (TENANT, lifted_at),
                ).fetchone()
                if row and row[0]:
                    record.recovered = time.monotonic()
                    return
                if time.monotonic() > deadline:
                    self.verdict.problems.append(
                        f"{record.name}: no job leased after it succeeded in"
                        f" {RECOVERY_TIMEOUT_S:.0f} s"
                    )
                    return
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _restart(
        self, record: FaultRecord, name: str, sig: signal.Signals, leads: tuple[str, ...] = ()
    ) -> int:
        """Signals replica ``name``, waits for it to exit and starts it again; ``leads`` are
        loops it was just seen leading (kept when a last scrape of its metrics fails)."""
        assert self.stack is not None
        record.led = self.stack.led_loops(name) or list(leads)
        record.injected = time.monotonic()
        record.detail = name
        self.stack.signal(name, sig)
        code = self.stack.wait_exit(name)
        self.stack.start(name)
        return code

    def _leader(self, service: str, loop: str) -> str:
        """The replica leading ``loop`` (asked until one answers: after a fault the lock
        may be changing hands)."""
        assert self.stack is not None
        deadline = time.monotonic() + RECOVERY_TIMEOUT_S
        delay = 0.1
        while (leader := self.stack.leader(service, loop)) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no {service} replica reports leading {loop}")
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
        return leader

    def inject(self, fault: str) -> FaultRecord:
        assert self.stack is not None
        record = FaultRecord(fault, time.monotonic(), injected_at=self._db_now())
        if fault == "kill_leases":
            self._restart(record, self.stack.names("leases")[0], signal.SIGKILL)
        elif fault == "kill_schedule_leader":
            leader = self._leader("scheduler", "schedule_firing")
            self._restart(record, leader, signal.SIGKILL, leads=("schedule_firing",))
        elif fault == "rolling_leases":
            victim = self.stack.names("leases")[-1]
            code = self._restart(record, victim, signal.SIGTERM)
            record.detail = f"{victim} (exit {code})"
            self.verdict.expect(code == 0, f"{victim} exited {code} on SIGTERM (drain), not 0")
        elif fault == "restart_postgres":
            self.pg.primary.restart()
        elif fault == "stop_redis":
            self.redis.stop()
            time.sleep(self.config.redis_down_s)  # the outage itself, not a synchronisation
            self.redis.start()
        elif fault == "promote_standby":
            record.detail = f"{self.pg.fail_over():.1f} s without a primary"
        else:
            raise ValueError(
                f"unknown fault {fault!r}; known: {', '.join(FAULTS)}, promote_standby"
            )
        self._recovered(record)
        self.say(
            f"{fault}{' ' + record.detail if record.detail else ''}"
            f"{' (led ' + ','.join(record.led) + ')' if record.led else ''}:"
            f" lifted after {record.lifted - record.injected:.1f} s,"
            f" all SERVING {record.restored - record.lifted:.1f} s and new work done"
            f" {record.recovered - record.lifted:.1f} s later"
        )
        return record

    def run_faults(self, started: float) -> None:
        faults = list(self.config.faults)
        if self.config.standby and "promote_standby" not in faults:
            faults.append("promote_standby")
        for i, fault in enumerate(faults):
            at = started + self.config.seconds * 0.85 * (i + 1) / (len(faults) + 1)
            while (left := at - time.monotonic()) > 0:
                time.sleep(min(left, 1.0))
                self._check_workers()
            self.faults.append(self.inject(fault))

    def _check_workers(self) -> None:
        assert self.workers is not None
        gone = self.workers.exited()
        if gone:
            raise RuntimeError(f"worker processes exited: {gone}")

    # -- the end ----------------------------------------------------------------------------
    def disable_schedule(self) -> None:
        """Stops the schedule (the burn-down's end), so no run is created while the ledger is
        checked; remembers the database's time of it."""
        assert self.stack is not None
        target = self.stack.target("scheduler")
        with grpc.insecure_channel(channel_target(target), channel_options()) as channel:
            self._scheduler(channel)(
                "UpdateSchedule",
                scheduler_pb2.UpdateScheduleRequest(
                    schedule=resources_pb2.Schedule(id=self.schedule_id, enabled=False),
                    update_mask=field_mask_pb2.FieldMask(paths=["enabled"]),
                ),
            )
        self.schedule_disabled_at = self._db_now()

    def wait_burn_down(self, started: float) -> None:
        """Until the run's length has passed, then stops the schedule and waits until every
        job is terminal, bounded by ``drain_timeout_s`` more."""
        end_at = started + self.config.seconds
        while (left := end_at - time.monotonic()) > 0:
            time.sleep(min(left, 1.0))
            self._check_workers()
        self.disable_schedule()
        deadline = time.monotonic() + self.config.drain_timeout_s
        delay = 0.2
        with psycopg.connect(self.pg.url, autocommit=True) as conn:
            while True:
                self._check_workers()
                row = conn.execute(
                    "SELECT count(*) FROM orchestrator.jobs WHERE tenant = %s"
                    " AND state IN ('pending', 'ready', 'leased')",
                    (TENANT,),
                ).fetchone()
                open_jobs = int(row[0]) if row else 0
                if open_jobs == 0:
                    return
                if time.monotonic() > deadline:
                    self.verdict.problems.append(f"{open_jobs} jobs still open at the deadline")
                    return
                time.sleep(delay)
                delay = min(delay * 1.5, 2.0)

    def check(self, started: float) -> None:
        assert self.stack is not None
        assert self.sampler is not None
        v = self.verdict
        with psycopg.connect(self.pg.url, autocommit=True) as conn:
            tick_runs = conn.execute(
                "SELECT count(*) FROM orchestrator.runs WHERE schedule_id = %s", (self.schedule_id,)
            ).fetchone()
            ticks = int(tick_runs[0]) if tick_runs else 0
            check_jobs(conn, TENANT, self.config.jobs + ticks, v)
            # Every fire time due at least FIRE_LAG_S before the schedule was stopped fired.
            assert self.schedule_disabled_at is not None
            check_schedule(conn, self.schedule_id, self.schedule_disabled_at - FIRE_LAG, v)
        reader = mint_dev_token(SECRET, "chaos-auditor", [TENANT], ["orch:read"])
        check_bundle(self.stack.target("audit"), reader, self.run_id, v)
        down = [
            n for n in (r.name for r in self.stack.replicas) if self.stack.health(n) != "SERVING"
        ]
        v.expect(not down, f"replicas not SERVING at the end: {down}")
        holders = self.sampler.max_holders()
        v.figure("chaos_max_leaders_at_once", max(holders.values(), default=0), "leaders")
        v.expect(
            all(n <= 1 for n in holders.values()), f"two leaders of one loop at once: {holders}"
        )
        gaps = self.sampler.gaps()
        for loop in HELD_LOOPS:
            spans = gaps[loop.label]
            v.figure(
                f"chaos_leader_gap_{loop.label}_max",
                max((g.length for g in spans), default=0.0),
                "s",
            )
        for record in self.faults:
            v.figure(f"chaos_{record.name}_outage", record.lifted - record.injected, "s")
            v.figure(f"chaos_{record.name}_restore", record.restored - record.lifted, "s")
            v.figure(f"chaos_{record.name}_recovery", record.recovered - record.lifted, "s")
        intervals = loop_intervals(self.stack.env)
        ends = [r.injected for r in self.faults[1:]] + [time.monotonic()]
        for record, until in zip(self.faults, ends, strict=True):
            for loop in record.led:
                if loop not in gaps:
                    continue
                gap = gap_after(gaps[loop], record.injected, until)
                v.figure(f"chaos_{record.name}_leader_gap_{loop}", gap.length if gap else 0, "s")
                # A new leader within two of the loop's retry intervals: every sample in
                # between saw none for at most that long (the samples are 100 ms apart on
                # a quiet machine, further on a loaded one: the figure above is the bound
                # from the other side).
                bound = 2 * intervals[loop]
                v.expect(
                    gap is None or gap.seen <= bound,
                    f"{record.name}: {loop} had no leader for {gap.seen if gap else 0:.1f} s"
                    f" after its leader {record.detail} went (expected a new one within"
                    f" {bound:.1f} s, twice its {intervals[loop]:.1f} s retry interval)",
                )
        self._expiries_per_fault()
        v.figure("chaos_duration", time.monotonic() - started, "s")

    def _expiries_per_fault(self) -> None:
        """Lease expiries from each fault's injection to the next one's (or the end)."""
        bounds = [r.injected_at for r in self.faults] + [None]
        with psycopg.connect(self.pg.url, autocommit=True) as conn:
            for record, (start, end) in zip(self.faults, itertools.pairwise(bounds), strict=True):
                row = conn.execute(
                    "SELECT count(*) FROM orchestrator.events WHERE tenant = %s"
                    " AND reason = 'lease_expired' AND occurred_at >= %s"
                    " AND (%s::timestamptz IS NULL OR occurred_at < %s)",
                    (TENANT, start, end, end),
                ).fetchone()
                expired = int(row[0]) if row else 0
                self.verdict.figure(f"chaos_{record.name}_leases_expired", expired, "events")

    def teardown(self) -> None:
        if self.workers is not None:
            codes = self.workers.stop()
            bad = {n: c for n, c in codes.items() if c != 0}
            self.verdict.expect(not bad, f"workers did not drain and exit 0 on SIGTERM: {bad}")
        if self.sampler is not None:
            self.sampler.stop()
        if self.stack is not None:
            self.stack.stop_all()
        self.redis.stop()
        self.pg.destroy(remove=not (self.config.keep or self.verdict.problems))


def run_chaos(config: ChaosConfig) -> ChaosResult:
    """Runs the whole scenario; the result holds the figures and every broken invariant."""
    chaos = ChaosRun(config)
    with ExitStack() as cleanup:
        cleanup.callback(chaos.teardown)
        chaos.setup()
        chaos.submit()
        chaos.start_workers()
        started = time.monotonic()
        chaos.run_faults(started)
        chaos.wait_burn_down(started)
        chaos.check(started)
    if not config.keep and not chaos.verdict.problems:
        shutil.rmtree(chaos.root, ignore_errors=True)
    assert chaos.sampler is not None
    gaps = {k: max((g.length for g in v), default=0.0) for k, v in chaos.sampler.gaps().items()}
    return ChaosResult(chaos.verdict, chaos.faults, chaos.sampler.max_holders(), gaps, chaos.root)
