"""Tunables of the scheduler service, read from the environment.

| variable | default | meaning |
|---|---|---|
| ``ORCH_MAX_PAYLOAD_BYTES`` | ``262144`` | Largest job payload accepted (canonical JSON bytes). |
| ``ORCH_EVENTS_RETENTION_DAYS`` | ``0`` | Drop event partitions older than this (0: keep all). |
| ``ORCH_SCHEDULES_FIRING`` | ``on`` | ``on``: this replica takes part in firing schedules. |
| ``ORCH_STREAM_KEEPALIVE_S`` | ``15`` | Idle time before a live event stream sends a keep-alive. |
| ``ORCH_RATELIMIT_KEY_PREFIX`` | ``orch:rl:`` | Redis key prefix of the buckets (estimates). |
| ``ORCH_INCIDENT_THRESHOLD`` | ``5`` | Failures of a cluster within the window open an incident. |
| ``ORCH_INCIDENT_WINDOW_S`` | ``300`` | How close together those failures must be (seconds). |
| ``ORCH_INCIDENT_QUIET_S`` | ``600`` | Seconds without a failure before an incident resolves. |

Webhook delivery reads ``ORCH_WEBHOOKS`` (``on``/``off``), ``ORCH_WEBHOOKS_ALLOW_PRIVATE``,
``ORCH_WEBHOOK_TIMEOUT_S``, ``ORCH_WEBHOOK_MAX_ATTEMPTS``, ``ORCH_WEBHOOK_BACKOFF_S``,
``ORCH_WEBHOOK_BACKOFF_MAX_S``, ``ORCH_WEBHOOK_DISABLE_STREAK``, ``ORCH_WEBHOOK_DISABLE_AFTER_S``
and ``ORCH_WEBHOOK_ROTATION_GRACE_S`` (``_webhooks.WebhookSettings``, docs/webhooks.md).

The incident defaults apply to every tenant without its own policy
(``stella orchestrator tenants incident-policy``).

Ports, the database and Redis come from :class:`orchestrator_grpckit.ServiceConfig`
(scheduler: gRPC ``50051``, metrics ``9102``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from orchestrator_core.incidents import DEFAULT_POLICY, MAX_THRESHOLD, IncidentPolicy
from orchestrator_grpckit import env_choice, env_int, env_number
from orchestrator_redis import DEFAULT_PREFIX
from orchestrator_scheduler._events import KEEPALIVE_S
from orchestrator_scheduler._validate import MAX_PAYLOAD_BYTES
from orchestrator_scheduler._webhooks import WebhookSettings

MAX_PAYLOAD_LIMIT = 64 * 1024 * 1024
MAX_RETENTION_DAYS = 36_500
MAX_INCIDENT_WINDOW_S = 86_400  # the per-tenant override's bounds (incident_policies)
MAX_INCIDENT_QUIET_S = 604_800


@dataclass(frozen=True)
class SchedulerSettings:
    """Tunables of one scheduler process (the variables of the module docstring)."""

    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    events_retention_days: int = 0
    schedule_firing: bool = True
    stream_keepalive_s: float = KEEPALIVE_S
    ratelimit_key_prefix: str = DEFAULT_PREFIX
    incident_policy: IncidentPolicy = DEFAULT_POLICY
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SchedulerSettings:
        """Reads the variables of the module docstring.

        Raises:
            ConfigError: a value is malformed or out of range.
        """
        env = os.environ if environ is None else environ
        return cls(
            max_payload_bytes=env_int(
                env, "ORCH_MAX_PAYLOAD_BYTES", MAX_PAYLOAD_BYTES, 1, MAX_PAYLOAD_LIMIT
            ),
            events_retention_days=env_int(
                env, "ORCH_EVENTS_RETENTION_DAYS", 0, 0, MAX_RETENTION_DAYS
            ),
            schedule_firing=env_choice(env, "ORCH_SCHEDULES_FIRING", ("on", "off"), "on") == "on",
            stream_keepalive_s=env_number(env, "ORCH_STREAM_KEEPALIVE_S", KEEPALIVE_S, 0.01, 3600),
            ratelimit_key_prefix=env.get("ORCH_RATELIMIT_KEY_PREFIX", "") or DEFAULT_PREFIX,
            incident_policy=IncidentPolicy(
                threshold=env_int(
                    env, "ORCH_INCIDENT_THRESHOLD", DEFAULT_POLICY.threshold, 1, MAX_THRESHOLD
                ),
                window=timedelta(
                    seconds=env_number(
                        env,
                        "ORCH_INCIDENT_WINDOW_S",
                        DEFAULT_POLICY.window.total_seconds(),
                        1,
                        MAX_INCIDENT_WINDOW_S,
                    )
                ),
                quiet=timedelta(
                    seconds=env_number(
                        env,
                        "ORCH_INCIDENT_QUIET_S",
                        DEFAULT_POLICY.quiet.total_seconds(),
                        1,
                        MAX_INCIDENT_QUIET_S,
                    )
                ),
            ),
            webhooks=WebhookSettings.from_env(env),
        )
