"""``Idempotency-Key`` on REST POSTs, shared by every gateway replica through PostgreSQL.

A POST under ``/api/`` with ``Idempotency-Key`` from a caller with a valid token is recorded
under (tenant, token subject, path, key) with a SHA-256 of its query and body, in
``orchestrator.idempotency_keys`` (``orchestrator_pg.IdempotencyStore``), for ``ttl_s``:

* The first request claims the key (the primary key decides, on whichever replica), runs,
  and stores its answer — status, headers (``X-RateLimit-*`` excepted) and body — before the
  last byte goes out, so a client that repeats the moment it has the answer gets the replay.
* A repeat with the same body, on any replica, gets that answer with
  ``Idempotent-Replayed: true``. A repeat that arrives while the first still runs waits for
  its answer (polling the record, up to ``wait_s``) and then replays it; only a first request
  still running after ``wait_s`` makes it 409 with ``Retry-After``. Never a second run.
* The same key with another body (or query) is 422 ``IDEMPOTENCY_KEY_REUSED``.
* Answers of 5xx and 429, and requests that ended without an answer, are forgotten, so a
  retry after an outage runs again.
* While the first request runs its replica pushes the record's lock ahead every
  ``LOCK_S / 3``; if that replica dies the lock runs out after ``LOCK_S`` and the next
  repeat takes the key over and runs.
* PostgreSQL unreachable: 503 with ``Retry-After`` (the gateway cannot promise a single run
  without the record; the services behind it need the database anyway).

Requests without a valid token are not recorded: the routes answer them 401 anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import time
import uuid

from prometheus_client import Counter

from orchestrator_core import InvalidArgument, Unavailable
from orchestrator_gateway._middleware import (
    API_PREFIX,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    header,
    identify,
    send_problem,
)
from orchestrator_grpckit import TokenVerifier
from orchestrator_pg import IdempotencyKey, IdempotencyStore, StoredAnswer

MAX_IDEMPOTENCY_KEY_CHARS = 255
MAX_BODY_BYTES = 1024 * 1024
# How long a claim holds without being renewed: a dead replica's key is free after this.
LOCK_S = 15.0
# A waiting duplicate re-reads the record after this, doubling up to the cap (with jitter).
WAIT_POLL_FIRST_S = 0.02
WAIT_POLL_MAX_S = 0.25

_log = logging.getLogger("orchestrator_gateway.idempotency")

OUTCOMES = Counter(
    "orchestrator_gateway_idempotency_total",
    "POSTs with Idempotency-Key by outcome: ran, replayed, waited (then replayed), "
    "mismatch (422), in_flight (409), unavailable (503).",
    ["outcome"],
)


class IdempotencyMiddleware:
    """Replays the answer of a POST repeated with the same ``Idempotency-Key``.

    Args:
        app: The wrapped application.
        verifier: Identifies the caller.
        store: The shared records.
        ttl_s: How long an answer is replayed.
        wait_s: How long a duplicate waits for the first request's answer.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: TokenVerifier,
        store: IdempotencyStore,
        ttl_s: float,
        wait_s: float,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.store = store
        self.ttl_s = ttl_s
        self.wait_s = wait_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = header(scope, b"idempotency-key") if scope["type"] == "http" else None
        if key is None or scope["method"] != "POST" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
            await send_problem(
                send,
                400,
                f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters",
                path,
                reason="IDEMPOTENCY_KEY_INVALID",
                errors=[{"field": "Idempotency-Key", "description": "1..255 characters"}],
            )
            return
        caller = identify(self.verifier, scope)
        if not caller.authenticated or "\x00" in path:
            # Not recordable (no tenant; a NUL that PostgreSQL text cannot hold): the routes
            # refuse such requests anyway.
            await self.app(scope, receive, send)
            return
        # Read the whole body: it is hashed, then handed to the route unchanged.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                await send_problem(send, 413, "request body too large", path)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        fingerprint = hashlib.sha256(scope.get("query_string", b"") + b"\0" + body).digest()
        record_key = IdempotencyKey(caller.tenant, caller.subject, path, key)
        try:
            await self._handle(scope, receive, send, record_key, fingerprint, body)
        except InvalidArgument as exc:
            await send_problem(
                send, 400, f"invalid request: {exc}", path, reason="IDEMPOTENCY_KEY_INVALID"
            )
        except Unavailable as exc:
            OUTCOMES.labels("unavailable").inc()
            _log.warning("Idempotency-Key store unavailable: %s", exc)
            await send_problem(
                send,
                503,
                "the Idempotency-Key store is unavailable; retry",
                path,
                reason="IDEMPOTENCY_STORE_UNAVAILABLE",
                retry_after_s=1.0,
                headers={"Retry-After": "1"},
            )

    async def _handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        key: IdempotencyKey,
        fingerprint: bytes,
        body: bytes,
    ) -> None:
        path = key.route
        deadline = time.monotonic() + self.wait_s
        poll_s = WAIT_POLL_FIRST_S
        waited = False
        while True:
            record = await self.store.begin(key, fingerprint, ttl_s=self.ttl_s, lock_s=LOCK_S)
            if record.state == "claimed":
                assert record.claim_id is not None
                OUTCOMES.labels("ran").inc()
                await self._run(scope, receive, send, key, record.claim_id, body)
                return
            if record.state == "mismatch":
                OUTCOMES.labels("mismatch").inc()
                await send_problem(
                    send,
                    422,
                    "this Idempotency-Key was used with a different request body",
                    path,
                    slug="idempotency-key-reused",
                    reason="IDEMPOTENCY_KEY_REUSED",
                )
                return
            if record.state == "answered":
                assert record.answer is not None
                OUTCOMES.labels("waited" if waited else "replayed").inc()
                await send(
                    {
                        "type": "http.response.start",
                        "status": record.answer.status,
                        "headers": [
                            *(
                                (k.encode("latin-1"), v.encode("latin-1"))
                                for k, v in record.answer.headers
                            ),
                            (b"idempotent-replayed", b"true"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": record.answer.body})
                return
            # In flight elsewhere: wait for its answer (or for the key to come free).
            left = deadline - time.monotonic()
            if left <= 0:
                OUTCOMES.labels("in_flight").inc()
                await send_problem(
                    send,
                    409,
                    "a request with this Idempotency-Key is still being processed",
                    path,
                    slug="idempotency-key-in-flight",
                    reason="IDEMPOTENCY_KEY_IN_FLIGHT",
                    headers={"Retry-After": "1"},
                )
                return
            waited = True
            await asyncio.sleep(min(left, poll_s * random.uniform(0.5, 1.0)))
            poll_s = min(poll_s * 2, WAIT_POLL_MAX_S)

    async def _run(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        key: IdempotencyKey,
        claim_id: uuid.UUID,
        body: bytes,
    ) -> None:
        """Runs the request as the key's owner and stores (or forgets) its answer."""
        delivered = False

        async def replay_receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        status = 0
        headers: list[tuple[str, str]] = []
        parts: list[bytes] = []
        settled = False

        async def settle() -> None:
            # Before the last byte goes out: a client may repeat the request the moment it has
            # the answer, and must then get the replay, not wait.
            nonlocal settled
            settled = True
            if status and status < 500 and status != 429:
                answer = StoredAnswer(status, tuple(headers), b"".join(parts))
                if not await self.store.finish(key, claim_id, answer):
                    _log.warning("Idempotency-Key claim lost before the answer was stored")
            else:
                await self.store.release(key, claim_id)

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers[:] = [
                    (k.decode("latin-1"), v.decode("latin-1"))
                    for k, v in message.get("headers", [])
                    if not k.lower().startswith(b"x-ratelimit-")
                ]
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
                if not message.get("more_body", False):
                    try:
                        await settle()
                    except Unavailable as exc:
                        # The answer still goes out; the key stays claimed until its lock
                        # runs out, then a repeat runs again.
                        _log.warning("Idempotency-Key answer not stored: %s", exc)
            await send(message)

        renewer = asyncio.create_task(self._renew(key, claim_id), name="idempotency-renew")
        try:
            await self.app(scope, replay_receive, capture)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            if not settled:
                status = 0  # no complete answer: forget the key
                try:
                    await settle()
                except Unavailable as exc:
                    _log.warning("Idempotency-Key not released: %s", exc)

    async def _renew(self, key: IdempotencyKey, claim_id: uuid.UUID) -> None:
        """Keeps the claim's lock ahead while the request runs (a long request is not taken
        over); a failed renewal is retried on the next tick."""
        while True:
            await asyncio.sleep(LOCK_S / 3)
            try:
                if not await self.store.extend(key, claim_id, lock_s=LOCK_S):
                    return
            except Unavailable as exc:
                _log.warning("Idempotency-Key lock not renewed: %s", exc)
