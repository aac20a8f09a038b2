"""The gateway's ``Idempotency-Key`` records, shared by every gateway replica.

A record is keyed by (tenant, caller, route, key) and lives in ``orchestrator.idempotency_keys``
(row-level security confines each request to its tenant). Its life:

1. :meth:`IdempotencyStore.begin` claims the key for a request. Exactly one request wins the
   ``INSERT … ON CONFLICT`` (the primary key decides, whichever replica it runs on); it gets a
   ``claim_id`` and holds a lock that runs out after ``lock_s`` unless
   :meth:`~IdempotencyStore.extend` pushes it ahead. Every later request reads the record
   instead: the stored answer, "still in flight", or "another body" (the fingerprint differs).
2. The owner stores its answer with :meth:`~IdempotencyStore.finish`, or forgets the key with
   :meth:`~IdempotencyStore.release` when the answer is not worth keeping (the gateway's rule:
   5xx and 429), so a retry runs again. Both are fenced by ``claim_id``.
3. An owner that died leaves a record without an answer whose lock runs out; the next request
   with the same body takes it over (and runs). A record past ``expires_at`` reads as absent
   and is overwritten by the next claim; :class:`IdempotencyKeyCleaner` deletes such rows.

Time comes from the database (``now()``) unless a test passes ``now``: gateway replicas whose
clocks disagree still agree on locks and expiry.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg.types.json import Jsonb

from orchestrator_core import Unavailable
from orchestrator_pg._db import Database, TxContext
from orchestrator_pg._leadership import LeaderLoop, Leadership
from orchestrator_pg._queries import query

CLEANUP_INTERVAL_S = 3600.0
# Rows deleted per statement by the cleanup: short transactions, no long row locks.
CLEANUP_BATCH_ROWS = 5000
# A claim and the read that may follow it race with a release or an expiry in between; a few
# rounds settle it (each round either claims or reads a row that exists).
_CLAIM_ROUNDS = 5

_log = logging.getLogger("orchestrator.pg.idempotency")

RecordState = Literal["claimed", "answered", "in_flight", "mismatch"]


@dataclass(frozen=True)
class IdempotencyKey:
    """Whose key it is: the tenant and caller (token subject) of the request, the route (path)
    it was sent to and the ``Idempotency-Key`` value."""

    tenant: str
    caller: str
    route: str
    key: str

    def params(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "caller": self.caller, "route": self.route, "key": self.key}


@dataclass(frozen=True)
class StoredAnswer:
    """The first answer: status, the response headers worth replaying, and the body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True)
class IdempotencyRecord:
    """What :meth:`IdempotencyStore.begin` found.

    Attributes:
        state: ``claimed`` (this request owns the key and must answer), ``answered`` (replay
            ``answer``), ``in_flight`` (another request with this body runs now) or
            ``mismatch`` (the key was used with another request body).
        claim_id: The owner's fence, when ``claimed``.
        answer: The stored answer, when ``answered``.
    """

    state: RecordState
    claim_id: uuid.UUID | None = None
    answer: StoredAnswer | None = None


class IdempotencyStore:
    """The records over a :class:`Database` (every transaction isolated to the key's tenant).

    Args:
        db: The pool.
    """

    def __init__(self, db: Database) -> None:
        self.db = db.isolated()

    async def begin(
        self,
        key: IdempotencyKey,
        fingerprint: bytes,
        *,
        ttl_s: float,
        lock_s: float,
        now: datetime | None = None,
    ) -> IdempotencyRecord:
        """Claims ``key`` for a request whose body hashes to ``fingerprint``, or reports what
        holds it.

        Args:
            key: The record's key.
            fingerprint: Hash of the request (query and body).
            ttl_s: How long the answer is replayed, from now.
            lock_s: How long the claim holds without :meth:`extend`.
            now: The time (tests); ``None`` is the database's clock.

        Raises:
            Unavailable: The database cannot be reached.
        """
        params = key.params() | {
            "fingerprint": fingerprint,
            "lock_s": float(lock_s),
            "ttl_s": float(ttl_s),
            "now": now,
        }
        for _ in range(_CLAIM_ROUNDS):
            claim_id = uuid.uuid4()
            async with self.db.transaction(TxContext(tenant=key.tenant)) as conn:
                cur = await conn.execute(
                    query("idempotency_keys_claim"), params | {"claim_id": claim_id}
                )
                if await cur.fetchone() is not None:
                    return IdempotencyRecord("claimed", claim_id=claim_id)
                cur = await conn.execute(query("idempotency_keys_get"), params)
                row = await cur.fetchone()
            if row is None:
                continue  # released or expired in between: claim again
            if bytes(row["fingerprint"]) != fingerprint:
                return IdempotencyRecord("mismatch")
            if row["status"] is None:
                return IdempotencyRecord("in_flight")
            headers = tuple((str(name), str(value)) for name, value in row["headers"] or ())
            answer = StoredAnswer(int(row["status"]), headers, bytes(row["body"] or b""))
            return IdempotencyRecord("answered", answer=answer)
        return IdempotencyRecord("in_flight")

    async def extend(
        self,
        key: IdempotencyKey,
        claim_id: uuid.UUID,
        *,
        lock_s: float,
        now: datetime | None = None,
    ) -> bool:
        """Pushes the owner's lock ``lock_s`` ahead; False when the claim was lost."""
        params = key.params() | {"claim_id": claim_id, "lock_s": float(lock_s), "now": now}
        return await self._fenced("idempotency_keys_extend", key, params)

    async def finish(
        self,
        key: IdempotencyKey,
        claim_id: uuid.UUID,
        answer: StoredAnswer,
        *,
        now: datetime | None = None,
    ) -> bool:
        """Stores the owner's answer; False when the claim was lost (nothing changes)."""
        params = key.params() | {
            "claim_id": claim_id,
            "status": answer.status,
            "headers": Jsonb([list(pair) for pair in answer.headers]),
            "body": answer.body,
            "now": now,
        }
        return await self._fenced("idempotency_keys_finish", key, params)

    async def release(self, key: IdempotencyKey, claim_id: uuid.UUID) -> None:
        """Forgets the key if this claim still owns it without an answer."""
        async with self.db.transaction(TxContext(tenant=key.tenant)) as conn:
            await conn.execute(
                query("idempotency_keys_release"), key.params() | {"claim_id": claim_id}
            )

    async def _fenced(self, name: str, key: IdempotencyKey, params: dict[str, Any]) -> bool:
        async with self.db.transaction(TxContext(tenant=key.tenant)) as conn:
            cur = await conn.execute(query(name), params)
            return await cur.fetchone() is not None


class IdempotencyKeyCleaner:
    """Deletes expired records, in the one gateway replica that leads
    :attr:`LeaderLoop.IDEMPOTENCY_KEYS` for the pass (leadership is taken per pass and given
    up after it, like the event partition maintainer).

    Args:
        conninfo: Database URL.
        interval_s: Time between passes.
    """

    def __init__(self, conninfo: str, *, interval_s: float = CLEANUP_INTERVAL_S) -> None:
        self.conninfo = conninfo
        self.interval_s = interval_s

    async def run_once(self, *, now: datetime | None = None) -> int | None:
        """One pass; the number of records deleted, or ``None`` when another replica leads."""
        async with Leadership(self.conninfo, LeaderLoop.IDEMPOTENCY_KEYS) as leadership:
            if not await leadership.ensure():
                return None
            deleted = 0
            while True:
                cur = await leadership.connection.execute(
                    query("idempotency_keys_purge"), {"now": now, "limit": CLEANUP_BATCH_ROWS}
                )
                row = await cur.fetchone()
                batch = int(row["deleted"]) if row else 0
                deleted += batch
                if batch < CLEANUP_BATCH_ROWS:
                    return deleted

    async def run_forever(self) -> None:
        """A pass every ``interval_s`` until cancelled; failures are logged and retried."""
        while True:
            try:
                deleted = await self.run_once()
                if deleted:
                    _log.info("expired idempotency keys deleted", extra={"deleted": deleted})
            except (psycopg.Error, OSError, Unavailable) as exc:
                _log.warning("idempotency key cleanup failed: %s", exc)
            await asyncio.sleep(self.interval_s)
