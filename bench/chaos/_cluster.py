"""A private PostgreSQL cluster (and optionally a streaming standby of it) and a private
Redis, each on a free loopback port under a temporary directory.

Why private: the PostgreSQL and Redis that ``scripts/services.sh`` starts are shared by every
test session and developer on the machine; restarting them would fail everyone else's work.
The chaos run restarts, stops and promotes its own. The cluster is created with the
distribution's server binaries (the ones services.sh installs); PostgreSQL refuses to run as
root, so as root every server command runs as the ``postgres`` user (``runuser``), as
services.sh does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench.ports import free_port

# A loaded 2-core machine takes seconds to start or checkpoint a cluster; these are bounds.
PG_START_TIMEOUT_S = 120
PG_STOP_TIMEOUT_S = 120
REDIS_START_TIMEOUT_S = 30
# Settings of the private cluster: enough connections for 10 services x (pool + leader
# connections) + samplers, and the shared cluster's write-heavy tuning (services.sh).
PG_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "max_connections": "400",
    "shared_buffers": "128MB",
    "synchronous_commit": "off",
    "max_wal_size": "1GB",
    "wal_level": "replica",
    "max_wal_senders": "5",
    "hot_standby": "on",
    "fsync": "on",
}


def _pg_bindir() -> Path:
    """The newest installed server's bin directory (Debian: /usr/lib/postgresql/N/bin; PATH
    may hold only some of its programs, as symlinks)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise RuntimeError(
        "no PostgreSQL server binaries (initdb): run `scripts/services.sh start` first"
    )


def _as_server_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


@dataclass
class PgNode:
    """One PostgreSQL server: a data directory and a port."""

    datadir: Path
    port: int
    log: Path
    bindir: Path = field(default_factory=_pg_bindir)

    def _ctl(self, *args: str, timeout_s: float) -> None:
        argv = [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args]
        done = subprocess.run(
            _as_server_user(argv), capture_output=True, text=True, timeout=timeout_s + 30
        )
        if done.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl {' '.join(args)}: {done.stdout}{done.stderr}\n{tail}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.datadir}"
        self._ctl(
            "start", "-w", "-t", str(PG_START_TIMEOUT_S), "-l", str(self.log), "-o", options,
            timeout_s=PG_START_TIMEOUT_S,
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """``fast``: a clean shutdown (a standby receives every WAL record first);
        ``immediate``: a crash, recovered from WAL at the next start."""
        self._ctl(
            "stop", "-w", "-t", str(PG_STOP_TIMEOUT_S), "-m", mode, timeout_s=PG_STOP_TIMEOUT_S
        )

    def restart(self) -> None:
        options = f"-p {self.port} -k {self.datadir}"
        self._ctl(
            "restart", "-w", "-t", str(PG_START_TIMEOUT_S), "-m", "fast", "-l", str(self.log),
            "-o", options, timeout_s=PG_START_TIMEOUT_S + PG_STOP_TIMEOUT_S,
        )  # fmt: skip

    def promote(self) -> None:
        self._ctl("promote", "-w", "-t", str(PG_START_TIMEOUT_S), timeout_s=PG_START_TIMEOUT_S)

    def running(self) -> bool:
        return (self.datadir / "postmaster.pid").exists()

    def in_recovery(self) -> bool:
        with psycopg.connect(self.admin_url("postgres"), autocommit=True) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        return bool(row and row[0])

    def admin_url(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"


class PrivatePostgres:
    """A PostgreSQL cluster of its own (trust authentication on loopback, user ``postgres``)
    with one database, and on request a streaming standby of it on another port.

    ``url`` is what services get: the primary alone, or, once :meth:`add_standby` ran, a
    multi-host URL (``host=a,b port=p1,p2 target_session_attrs=read-write``) under which
    libpq tries both servers and keeps the one that accepts writes.
    """

    def __init__(self, root: Path, dbname: str = "orchestrator") -> None:
        self.root = root
        self.dbname = dbname
        self.primary = PgNode(root / "primary", free_port(), root / "primary.log")
        self.standby: PgNode | None = None

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _own(self.root)
        node = self.primary
        argv = [str(node.bindir / "initdb"), "-D", str(node.datadir), "-A", "trust"]
        argv += ["-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"]
        done = subprocess.run(_as_server_user(argv), capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stdout}{done.stderr}")
        conf = "".join(f"{name} = '{value}'\n" for name, value in PG_SETTINGS.items())
        with (node.datadir / "postgresql.conf").open("a") as f:
            f.write("\n# bench.chaos\n" + conf)
        node.start()
        with psycopg.connect(node.admin_url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.dbname}"')

    @property
    def nodes(self) -> list[PgNode]:
        return [self.primary] + ([self.standby] if self.standby else [])

    @property
    def url(self) -> str:
        if self.standby is None:
            return self.primary.admin_url(self.dbname)
        hosts = ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)
        return f"postgresql://postgres@{hosts}/{self.dbname}?target_session_attrs=read-write"

    def add_standby(self) -> PgNode:
        """A streaming standby of the primary (``pg_basebackup -R``), started and caught up."""
        node = PgNode(self.root / "standby", free_port(), self.root / "standby.log")
        argv = [str(node.bindir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.primary.port)]
        argv += ["-U", "postgres", "-D", str(node.datadir), "-R", "-X", "stream", "-c", "fast"]
        done = subprocess.run(_as_server_user(argv), capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"pg_basebackup failed: {done.stdout}{done.stderr}")
        node.start()
        if not node.in_recovery():
            raise RuntimeError("the standby is not in recovery after pg_basebackup -R")
        self.standby = node
        return node

    def fail_over(self) -> float:
        """Stops the primary (cleanly: the standby has every committed WAL record) and
        promotes the standby; the standby becomes ``primary``. Returns the seconds during
        which no server accepted writes."""
        assert self.standby is not None, "add_standby() first"
        started = time.monotonic()
        self.primary.stop("fast")
        self.standby.promote()
        while self.standby.in_recovery():
            time.sleep(0.1)
        downtime = time.monotonic() - started
        old, self.primary = self.primary, self.standby
        # The old primary stays in the URL (first): it refuses connections now, and libpq
        # moves on to the new one, as it would with a host that is down for good.
        self.standby = old
        return downtime

    def destroy(self, *, remove: bool = True) -> None:
        """Stops every server; ``remove=False`` keeps the data and server logs to look at."""
        for node in self.nodes:
            if node.running():
                with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                    node.stop("immediate")
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """A Redis server of its own (no persistence) that can be stopped and started again on
    the same port."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = 0  # chosen at the first start (then kept: clients reconnect to it)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", ""]
        argv += ["--appendonly", "no", "--dir", str(self.root)]
        with (self.root / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + REDIS_START_TIMEOUT_S
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1) as s,
            ):
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on {self.port}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


def temp_root(prefix: str = "stella-chaos-") -> Path:
    """A fresh directory the server user can enter (PostgreSQL data lives below it)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    return root
