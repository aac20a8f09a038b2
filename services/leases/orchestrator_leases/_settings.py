"""Tunables of the leases service, read from the environment.

| variable | default | meaning |
|---|---|---|
| ``ORCH_LEASE_TTL_S`` | ``30`` | Length of every lease; workers heartbeat every third of it. |
| ``ORCH_CLAIM_BATCH`` | ``100`` | Most jobs one claim statement leases (across waiting sessions). |
| ``ORCH_WATCHDOG_INTERVAL_S`` | ``1`` | How often the leader watchdog expires overdue leases. |
| ``ORCH_COMPLETER_FLUSH_MS`` | ``2`` | How long the completer gathers reports before one flush. |

Ports and the database come from :class:`orchestrator_grpckit.ServiceConfig` (leases: gRPC
``50052``, metrics ``9103``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator_grpckit import ConfigError

DEFAULT_LEASE_TTL_S = 30.0
DEFAULT_CLAIM_BATCH = 100
DEFAULT_WATCHDOG_INTERVAL_S = 1.0
DEFAULT_COMPLETER_FLUSH_MS = 2.0
MAX_CLAIM_BATCH = 500


@dataclass(frozen=True)
class LeaseSettings:
    """Tunables of one leases process.

    Attributes:
        lease_ttl_s: lease length; heartbeats are asked for every ``lease_ttl_s / 3``.
        claim_batch: most jobs leased by one claim statement.
        watchdog_interval_s: pause between watchdog passes of the leader.
        completer_flush_ms: linger time of the completer before a flush.
    """

    lease_ttl_s: float = DEFAULT_LEASE_TTL_S
    claim_batch: int = DEFAULT_CLAIM_BATCH
    watchdog_interval_s: float = DEFAULT_WATCHDOG_INTERVAL_S
    completer_flush_ms: float = DEFAULT_COMPLETER_FLUSH_MS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LeaseSettings:
        """Reads ``ORCH_LEASE_TTL_S``, ``ORCH_CLAIM_BATCH``, ``ORCH_WATCHDOG_INTERVAL_S`` and
        ``ORCH_COMPLETER_FLUSH_MS``.

        Raises:
            ConfigError: a value is not a number in its range.
        """
        env = os.environ if environ is None else environ
        ttl = _number(env, "ORCH_LEASE_TTL_S", DEFAULT_LEASE_TTL_S, 0.5, 3600)
        batch = int(_number(env, "ORCH_CLAIM_BATCH", DEFAULT_CLAIM_BATCH, 1, MAX_CLAIM_BATCH))
        interval = _number(env, "ORCH_WATCHDOG_INTERVAL_S", DEFAULT_WATCHDOG_INTERVAL_S, 0.05, 3600)
        flush = _number(env, "ORCH_COMPLETER_FLUSH_MS", DEFAULT_COMPLETER_FLUSH_MS, 0, 1000)
        return cls(ttl, batch, interval, flush)


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:  # also rejects NaN
        raise ConfigError(f"{name}={raw!r} must be between {low:g} and {high:g}")
    return value
