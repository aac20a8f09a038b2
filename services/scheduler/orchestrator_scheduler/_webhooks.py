"""The webhook dispatcher: committed events fanned out to subscriptions, then sent, signed,
with retries (docs/webhooks.md).

Where it runs, and why there. A leader-only loop of the scheduler (:attr:`LeaderLoop.WEBHOOKS`)
reads the event outbox after its cursor, as the incident pass does: one reader in seq order
behind the :class:`~orchestrator_pg.EventHorizon` (every event at or below it is committed or
never will be) misses no late commit, and the writers of events pay nothing.

Each wake-up runs two steps:

1. **Fan-out** (one transaction per batch, cursor row locked first): the events after the
   cursor of tenants with an enabled subscription are matched
   (:func:`orchestrator_core.webhooks.matches`) and one delivery per {subscription, event} is
   inserted — unique, so a deposed leader racing the new one inserts nothing twice. A
   subscription receives the events that occurred after it was created; a cursor that does
   not exist yet (the first pass ever) starts before the first of those.
2. **Attempts**: up to :data:`MAX_IN_FLIGHT` due deliveries are claimed (their attempt number
   incremented and committed before any byte is sent, so two dispatchers never send one
   attempt twice) and sent concurrently; each outcome is written fenced on that number. A
   claimed attempt whose outcome never arrives (a crash) is due again after the in-flight
   timeout, as the next attempt; receivers deduplicate on ``webhook-id`` (stable per
   delivery).

SSRF: every attempt resolves the target's host and refuses loopback, private, link-local
(cloud metadata) and other non-global addresses unless ``ORCH_WEBHOOKS_ALLOW_PRIVATE=1``;
redirects are never followed (a 3xx is a failure).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from prometheus_client import Counter, Histogram

from orchestrator_core import Clock, SystemClock
from orchestrator_core.retry import RetryPolicy
from orchestrator_core.webhooks import (
    DEFAULT_DISABLE_POLICY,
    DEFAULT_RETRY_POLICY,
    AttemptResult,
    DisablePolicy,
    Outcome,
    WebhookAttempt,
    classify,
    delivery_body,
    matches,
    next_attempt_delay_s,
    refused_address,
    retry_after_of,
)
from orchestrator_grpckit import env_choice, env_int, env_number
from orchestrator_pg import EventHorizon, LeaderLoop, LeaderOnlyLoop, WebhookStore
from stella_orchestrator.webhooks import sign_webhook

BATCH_EVENTS = 2000
# Attempts sent at once by the leader (one claim); more wait for the next pass.
MAX_IN_FLIGHT = 32
# A claimed attempt without an outcome after this long is taken as lost (its sender died).
INFLIGHT_MARGIN_S = 30.0
PASS_MIN_INTERVAL_S = 0.1
POLL_MIN_S = 0.2
POLL_MAX_S = 0.5
MAX_ERROR_CHARS = 500
USER_AGENT = "stella-orchestrator-webhooks/1"

ATTEMPTS = Counter(
    "orch_webhook_attempts_total",
    "Webhook delivery attempts by outcome (succeeded, retrying, failed).",
    ["outcome"],
)
LATENCY = Histogram(
    "orch_webhook_attempt_seconds",
    "Time from sending a webhook attempt to its answer (or error).",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

_log = logging.getLogger("orchestrator_scheduler.webhooks")


@dataclass(frozen=True)
class WebhookSettings:
    """Tunables of webhook delivery (``ORCH_WEBHOOK*``, docs/configuration.md)."""

    enabled: bool = True
    allow_private: bool = False
    timeout_s: float = 10.0
    retry: RetryPolicy = DEFAULT_RETRY_POLICY
    disable: DisablePolicy = DEFAULT_DISABLE_POLICY
    rotation_grace: timedelta = field(default=timedelta(hours=24))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebhookSettings:
        """Reads the ``ORCH_WEBHOOK*`` variables.

        Raises:
            ConfigError: a value is malformed or out of range.
        """
        env = os.environ if environ is None else environ
        d = DEFAULT_RETRY_POLICY
        initial = env_number(env, "ORCH_WEBHOOK_BACKOFF_S", d.initial_backoff_s, 0.001, 3600)
        return cls(
            enabled=env_choice(env, "ORCH_WEBHOOKS", ("on", "off"), "on") == "on",
            allow_private=env_choice(env, "ORCH_WEBHOOKS_ALLOW_PRIVATE", ("0", "1"), "0") == "1",
            timeout_s=env_number(env, "ORCH_WEBHOOK_TIMEOUT_S", 10.0, 0.1, 60),
            retry=RetryPolicy(
                max_attempts=env_int(env, "ORCH_WEBHOOK_MAX_ATTEMPTS", d.max_attempts, 1, 100),
                initial_backoff_s=initial,
                max_backoff_s=env_number(
                    env,
                    "ORCH_WEBHOOK_BACKOFF_MAX_S",
                    max(d.max_backoff_s, initial),
                    initial,
                    86_400,
                ),
                multiplier=d.multiplier,
            ),
            disable=DisablePolicy(
                streak=env_int(
                    env, "ORCH_WEBHOOK_DISABLE_STREAK", DEFAULT_DISABLE_POLICY.streak, 1, 1_000_000
                ),
                after=timedelta(
                    seconds=env_number(
                        env,
                        "ORCH_WEBHOOK_DISABLE_AFTER_S",
                        DEFAULT_DISABLE_POLICY.after.total_seconds(),
                        0,
                        30 * 86_400,
                    )
                ),
            ),
            rotation_grace=timedelta(
                seconds=env_number(env, "ORCH_WEBHOOK_ROTATION_GRACE_S", 86_400, 0, 30 * 86_400)
            ),
        )


class WebhookDispatcher(LeaderOnlyLoop):
    """Fans events out to subscriptions and sends their attempts (leader only) until cancelled.

    Args:
        store: the webhook store.
        horizon: the settled event seq of this process (started by the service).
        conninfo: database URL (the leader lock's dedicated connection).
        settings: retries, timeouts, SSRF switch, disable rule.
        clock: the injected clock (due times, signatures' timestamps).
        lock_key: another advisory lock key (tests that run several leaders on purpose).
    """

    def __init__(
        self,
        store: WebhookStore,
        horizon: EventHorizon,
        conninfo: str,
        *,
        settings: WebhookSettings | None = None,
        clock: Clock | None = None,
        lock_key: int | None = None,
    ) -> None:
        super().__init__(conninfo, LeaderLoop.WEBHOOKS, lock_key=lock_key)
        self.store = store
        self.horizon = horizon
        self.settings = settings or WebhookSettings()
        self.clock = clock or SystemClock()
        self.cursor = 0
        self.sent = 0

    async def run_forever(self) -> None:
        """Waits for leadership, then runs passes while it lasts, until cancelled."""
        async with httpx.AsyncClient(
            timeout=self.settings.timeout_s,
            follow_redirects=False,
            headers={"user-agent": USER_AGENT},
        ) as client:

            async def wait() -> None:
                await asyncio.sleep(PASS_MIN_INTERVAL_S)
                await self.horizon.wait_beyond(
                    self.cursor, self.rng.uniform(POLL_MIN_S, POLL_MAX_S)
                )

            await self.lead(lambda: self.run_pass(client), wait)

    async def run_pass(self, client: httpx.AsyncClient) -> bool:
        """Fans out every settled event, then sends one claim of due attempts. Returns True
        when the claim was full (more may be due: the caller loops at once)."""
        upto = self.horizon.seq
        if upto >= 0:
            while not await self._fan_out(upto):
                pass
        attempts = await self.store.webhook_attempt_claim(
            self.clock.now(), MAX_IN_FLIGHT, self.settings.timeout_s + INFLIGHT_MARGIN_S
        )
        if attempts:
            await asyncio.gather(*(self._attempt(client, a) for a in attempts))
        self.passes += 1
        return len(attempts) == MAX_IN_FLIGHT

    async def _fan_out(self, upto: int) -> bool:
        """One batch of events into deliveries; True once the cursor reached ``upto``."""
        now = self.clock.now()
        async with self.store.webhook_fanout(now, upto) as (conn, cursor):
            events = []
            if cursor < upto:
                events = await self.store.webhook_events_after(conn, cursor, upto, BATCH_EVENTS)
            caught_up = len(events) < BATCH_EVENTS
            next_cursor = max(cursor, upto) if caught_up else events[-1].seq
            if events:
                tenants = sorted({e.tenant for e in events})
                subs = await self.store.webhook_enabled_of_tenants(conn, tenants)
                pairs = [
                    (s, e, delivery_body(e))
                    for e in events
                    for s in subs
                    if matches(s, e) and (s.created_at is None or e.occurred_at >= s.created_at)
                ]
                await self.store.webhook_delivery_insert_many(conn, pairs, now)
            await self.store.webhook_cursor_set(conn, next_cursor, now)
        self.cursor = next_cursor
        return caught_up

    async def _attempt(self, client: httpx.AsyncClient, attempt: WebhookAttempt) -> None:
        result = await self.send(client, attempt)
        outcome = classify(result, attempt.attempt, self.settings.retry)
        now = self.clock.now()
        next_at = None
        if outcome is Outcome.RETRYING:
            delay = next_attempt_delay_s(
                self.settings.retry, attempt.attempt, self.rng, result.retry_after_s
            )
            next_at = now + timedelta(seconds=delay)
        ATTEMPTS.labels(outcome=outcome.value).inc()
        LATENCY.observe(result.latency_ms / 1000)
        recorded, disabled = await self.store.webhook_attempt_finish(
            attempt,
            outcome=outcome,
            status_code=result.status,
            latency_ms=result.latency_ms,
            error=result.error[:MAX_ERROR_CHARS],
            next_attempt_at=next_at,
            now=now,
            disable=self.settings.disable,
        )
        self.sent += 1
        if not recorded:
            _log.info(
                "webhook attempt %d of delivery %s was stale; its outcome was not recorded",
                attempt.attempt,
                attempt.delivery_id,
            )
        if disabled:
            _log.warning(
                "webhook %s disabled after a failure streak",
                attempt.webhook_id,
                extra={"tenant": attempt.tenant, "webhook_id": str(attempt.webhook_id)},
            )

    async def send(self, client: httpx.AsyncClient, attempt: WebhookAttempt) -> AttemptResult:
        """One signed POST of the attempt's body; never raises for the target's faults."""
        started = time.perf_counter()

        def elapsed_ms() -> int:
            return int((time.perf_counter() - started) * 1000)

        try:
            refused = await self._refused(attempt.url)
        except OSError as exc:  # DNS trouble is transient: retried like a connection error
            return AttemptResult(None, elapsed_ms(), f"connection: cannot resolve: {exc}")
        if refused is not None:
            return AttemptResult(None, elapsed_ms(), f"refused: {refused}")
        timestamp = int(self.clock.now().timestamp())
        headers = {
            "content-type": "application/json",
            **sign_webhook(attempt.secrets, str(attempt.delivery_id), timestamp, attempt.body),
        }
        try:
            response = await client.post(attempt.url, content=attempt.body, headers=headers)
        except httpx.TimeoutException as exc:
            return AttemptResult(None, elapsed_ms(), f"timeout: {type(exc).__name__}")
        except httpx.HTTPError as exc:
            return AttemptResult(None, elapsed_ms(), f"connection: {exc or type(exc).__name__}")
        return AttemptResult(
            response.status_code,
            elapsed_ms(),
            "" if response.is_success else response.text[:MAX_ERROR_CHARS],
            retry_after_of(response.headers),
        )

    async def _refused(self, url: str) -> str | None:
        """Why ``url``'s host may not be called (SSRF), or None.

        Raises:
            OSError: the host does not resolve.
        """
        if self.settings.allow_private:
            return None
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            return refused_address(str(ipaddress.ip_address(host)))
        except ValueError:
            pass  # a name: resolve it
        infos: list[Any] = await asyncio.get_running_loop().getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
        for info in infos:
            reason = refused_address(str(info[4][0]))
            if reason is not None:
                return f"{host} resolves to {reason}"
        return None
