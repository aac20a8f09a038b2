"""Leadership of the leader-only loops: one registry of lock keys, one mechanism.

Every replica of a service runs its leader loops; a PostgreSQL session advisory lock, held on
a connection of its own, makes exactly one replica act. When the leader dies its connection
ends, PostgreSQL releases the lock, and the next replica to try takes it. Each loop has its
own key in :class:`LeaderLoop` — two loops sharing a key would make one starve the other
(this happened: the lease watchdog and the partition maintainer once shared one).

:class:`Leadership` is the only code that takes these locks (migrations excepted: they wait on
a blocking lock rather than contend, see ``_migrate.py``, but their key lives here too). It
connects, tries the lock, re-checks it on every call while it leads (a connection that died
or was terminated loses it), reports ``orch_leader{loop}`` and logs every change.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import logging
import random
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import psycopg
from prometheus_client import Gauge
from psycopg.rows import dict_row

from orchestrator_pg._queries import query

# A check or a lock attempt that takes this long means the connection is wedged (a network
# partition shows no error): it is dropped and leadership given up, never assumed.
LEADERSHIP_QUERY_TIMEOUT_S = 15.0
# How long a replica that does not lead waits before trying the lock again (jittered down by
# up to 20 %): after a leader dies, the next leader comes within about this long.
LEADER_RETRY_S = 1.0

LEADER = Gauge(
    "orch_leader",
    "1 while this process leads the loop (holds its advisory lock), else 0.",
    ["loop"],
)
# Leading Leadership objects per loop in this process: one in a service, several in a test.
_leading: collections.Counter[str] = collections.Counter()

_log = logging.getLogger("orchestrator.pg.leadership")


@enum.unique
class LeaderLoop(enum.Enum):
    """Every leader-only loop and its advisory-lock key ("STORCH" + a number).

    ``enum.unique`` refuses two members with one key at import time. Keys are never reused:
    a replica of an older release may still hold an old key during a rolling update.
    """

    MIGRATIONS = 0x5354_4F52_4348_0001
    EVENT_PARTITIONS = 0x5354_4F52_4348_0002
    SCHEDULE_FIRING = 0x5354_4F52_4348_0003
    # 0x...0004 is retired; never reuse it.
    AUDIT_CHAIN = 0x5354_4F52_4348_0005
    # Was 0x...0002, the partition maintainer's key, so the watchdog starved it.
    LEASE_WATCHDOG = 0x5354_4F52_4348_0006
    # The gateway's cleanup of expired Idempotency-Key records (_idempotency.py).
    IDEMPOTENCY_KEYS = 0x5354_4F52_4348_0007
    # The leases service's queue-depth and dead-letter snapshot (orchestrator_leases).
    QUEUE_METRICS = 0x5354_4F52_4348_0008
    # The scheduler's incident pass: failures in, incidents opened, grown, resolved.
    INCIDENTS = 0x5354_4F52_4348_0009
    # The scheduler's webhook dispatcher: events fanned out to subscriptions, attempts sent.
    WEBHOOKS = 0x5354_4F52_4348_000A
    # The ratelimit service's bucket snapshot: circuit state and rate per {tenant, host}.
    # (0x...000B to 0x...000F are unused.)
    BUCKET_METRICS = 0x5354_4F52_4348_0010

    @property
    def key(self) -> int:
        """The advisory-lock key (a PostgreSQL bigint)."""
        return int(self.value)

    @property
    def label(self) -> str:
        """The loop's name in metrics and logs, e.g. ``lease_watchdog``."""
        return self.name.lower()


class Leadership:
    """One replica's bid to lead one loop, on a dedicated autocommit connection.

    Args:
        conninfo: PostgreSQL URL.
        loop: the loop; its key is the lock.
        key: another key for the same loop (tests that must not contend with a running stack).
    """

    def __init__(self, conninfo: str, loop: LeaderLoop, *, key: int | None = None) -> None:
        self._conninfo = conninfo
        self.loop = loop
        self.key = loop.key if key is None else key
        self._conn: psycopg.AsyncConnection[dict[str, Any]] | None = None
        self._leading = False

    @property
    def is_leader(self) -> bool:
        """Whether the last :meth:`ensure` found this replica leading."""
        return self._leading

    @property
    def connection(self) -> psycopg.AsyncConnection[dict[str, Any]]:
        """The connection that holds the lock (a leader may LISTEN on it).

        Raises:
            RuntimeError: this replica does not lead.
        """
        if not self._leading or self._conn is None:
            raise RuntimeError(f"not the leader of {self.loop.label}")
        return self._conn

    async def ensure(self) -> bool:
        """True when this replica leads now: connects if needed, re-checks a lock it holds,
        tries to take it otherwise. A database error is logged and answers False (the
        connection is dropped, so the lock is not held either); it never raises."""
        try:
            async with asyncio.timeout(LEADERSHIP_QUERY_TIMEOUT_S):
                return await self._ensure()
        except (psycopg.Error, OSError, TimeoutError) as exc:
            _log.warning("leadership of %s unavailable: %s", self.loop.label, exc or type(exc))
            await self._drop()
            self._set(False)
            return False

    async def _ensure(self) -> bool:
        if self._conn is None or self._conn.closed:
            self._set(False)
            self._conn = await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True, row_factory=dict_row
            )
        if self._leading:
            cur = await self._conn.execute(query("leader_check"), {"key": self.key})
            row = await cur.fetchone()
            if row and row["held"]:
                return True
            self._set(False)
        cur = await self._conn.execute(query("leader_try_lock"), {"key": self.key})
        row = await cur.fetchone()
        self._set(bool(row and row["acquired"]))
        return self._leading

    async def listen(self, listen_query: str) -> None:
        """Runs the named ``LISTEN`` query on the leader's connection (e.g. ``event_listen``),
        so a leader wakes on NOTIFY without a connection of its own.

        Raises:
            RuntimeError: this replica does not lead.
        """
        await self.connection.execute(query(listen_query))

    async def wait_for_notification(self, timeout_s: float) -> bool:
        """Waits up to ``timeout_s`` for a notification on the leader's connection; True when
        one came. Notifications that arrived since the last wait end it at once and are all
        consumed (psycopg keeps them; the generator yields the whole backlog before it stops).
        The connection is held only while waiting, so :meth:`ensure` can use it in between; a
        cancelled wait releases it (``aclosing``), or :meth:`release` would hang.
        """
        came = False
        waiting = self.connection.notifies(timeout=timeout_s, stop_after=1)
        async with contextlib.aclosing(waiting) as notifies:
            async for _ in notifies:
                came = True
        return came

    async def release(self) -> None:
        """Gives leadership up and closes the connection (another replica may take over)."""
        if self._conn is not None and not self._conn.closed and self._leading:
            try:
                await self._conn.execute(query("leader_unlock"), {"key": self.key})
            except psycopg.Error as exc:  # closing the connection releases it anyway
                _log.debug("unlock of %s failed: %s", self.loop.label, exc)
        await self._drop()
        self._set(False)

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    def _set(self, leading: bool) -> None:
        label = self.loop.label
        if leading != self._leading:
            _log.info(
                "leadership of %s %s",
                label,
                "acquired" if leading else "lost",
                extra={"loop": label, "leader": leading},
            )
            _leading[label] += 1 if leading else -1
        self._leading = leading
        LEADER.labels(loop=label).set(min(_leading[label], 1))

    async def __aenter__(self) -> Leadership:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release()


class LeaderOnlyLoop:
    """What every leader-only loop holds: its bid for the loop's lock, jitter drawn from a
    generator of its own (the global one belongs to the application) and a count of passes.

    Args:
        conninfo: PostgreSQL URL (the lock needs its own connection).
        loop: the loop; its key is the lock.
        lock_key: another advisory lock key (tests that must not contend with a stack).
    """

    def __init__(self, conninfo: str, loop: LeaderLoop, *, lock_key: int | None = None) -> None:
        self.leadership = Leadership(conninfo, loop, key=lock_key)
        self.rng = random.Random()
        self.passes = 0

    @property
    def is_leader(self) -> bool:
        """Whether this replica led at its last check."""
        return self.leadership.is_leader

    def jittered(self, seconds: float) -> float:
        """``seconds`` shortened by up to 20 %, so standing-by replicas do not retry in step."""
        return seconds * self.rng.uniform(0.8, 1.0)

    async def lead(
        self,
        run_pass: Callable[[], Awaitable[bool]],
        wait: Callable[[], Awaitable[None]],
        *,
        on_not_leading: Callable[[], None] = lambda: None,
        retry_s: float = LEADER_RETRY_S,
    ) -> None:
        """:func:`lead_passes` on this loop's leadership and jitter."""
        await lead_passes(
            self.leadership,
            run_pass,
            wait,
            rng=self.rng,
            on_not_leading=on_not_leading,
            retry_s=retry_s,
        )


async def lead_passes(
    leadership: Leadership,
    run_pass: Callable[[], Awaitable[bool]],
    wait: Callable[[], Awaitable[None]],
    *,
    rng: random.Random,
    on_not_leading: Callable[[], None] = lambda: None,
    retry_s: float = LEADER_RETRY_S,
    error_backoff_s: float = 1.0,
) -> None:
    """The loop of a leader-only pass (incidents, webhooks): holds ``leadership`` (taken and
    re-checked by :meth:`Leadership.ensure`), runs ``run_pass`` while it leads — again at
    once when it returns True (more work is waiting), else after ``wait()`` —, backs off
    after a failed pass (a database error: log, re-check, resume), and calls
    ``on_not_leading`` whenever it does not lead (a replica that lost leadership withdraws
    what it published). Runs until cancelled.
    """
    label = leadership.loop.label
    try:
        async with leadership:
            while True:
                if not await leadership.ensure():
                    on_not_leading()
                    await asyncio.sleep(retry_s * rng.uniform(0.8, 1.0))
                    continue
                try:
                    busy = await run_pass()
                except Exception:
                    _log.exception("%s pass failed", label)
                    on_not_leading()
                    await asyncio.sleep(error_backoff_s)
                    continue
                if not busy:
                    await wait()
    finally:
        on_not_leading()
