"""Values of the bucket store: keys, configs, policies, grants and states, plus Redis key
naming. Validation happens here, before any I/O, so bad input never reaches a script."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from orchestrator_redis._errors import InvalidBucketArgument

__all__ = [
    "AdaptivePolicy",
    "BucketConfig",
    "BucketKey",
    "BucketState",
    "CircuitPolicy",
    "DenyReason",
    "Grant",
    "RedisKeys",
    "redis_keys",
]

DenyReason = Literal["", "tokens", "paused", "circuit_open"]
CircuitState = Literal["closed", "open", "half_open"]

# Characters that would break the {tenant} hash tag that keeps a tenant's keys in one slot.
_HASH_TAG_CHARS = frozenset("{}")


def _finite(field: str, value: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise InvalidBucketArgument(field, f"must be a finite number, got {value!r}")


@dataclass(frozen=True, slots=True)
class BucketKey:
    """One bucket: a tenant and the source host its jobs call.

    Attributes:
        tenant: Tenant id; non-empty, without ``{`` or ``}`` (they delimit the hash tag).
        host: Source host; ``""`` is the tenant's default bucket, whose config the tenant's
            host buckets inherit.

    Raises:
        InvalidBucketArgument: the tenant is empty or contains ``{``/``}``.
    """

    tenant: str
    host: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.tenant, str) or not self.tenant:
            raise InvalidBucketArgument("tenant", "must be a non-empty string")
        if _HASH_TAG_CHARS & set(self.tenant):
            raise InvalidBucketArgument("tenant", "must not contain '{' or '}'")
        if not isinstance(self.host, str):
            raise InvalidBucketArgument("host", "must be a string")


@dataclass(frozen=True, slots=True)
class BucketConfig:
    """The configured shape of a bucket.

    Attributes:
        capacity: Most tokens the bucket holds (the largest burst); at least 1.
        refill_per_s: Configured refill rate in tokens per second; greater than 0. The
            effective rate may be lower (adaptive decrease, operator override).

    Raises:
        InvalidBucketArgument: a value is out of range or not finite.
    """

    capacity: float
    refill_per_s: float

    def __post_init__(self) -> None:
        _finite("capacity", self.capacity)
        _finite("refill_per_s", self.refill_per_s)
        if self.capacity < 1:
            raise InvalidBucketArgument("capacity", f"must be >= 1, got {self.capacity!r}")
        if self.refill_per_s <= 0:
            raise InvalidBucketArgument("refill_per_s", f"must be > 0, got {self.refill_per_s!r}")


# The store default of buckets with neither their own config nor a tenant default, unless
# ORCH_RATELIMIT_DEFAULT_BUCKET says otherwise: so large it never binds. An unconfigured
# {tenant, host} then only waits for what an upstream asked (a 429/503 Retry-After pause)
# and for open circuits; configure a bucket (per source host or per tenant) to cap a rate.
NON_BINDING = BucketConfig(1e9, 1e9)


def parse_default_bucket(text: str) -> BucketConfig:
    """The store default from its setting: ``none`` (or empty) is :data:`NON_BINDING`;
    ``CAPACITY/REFILL_PER_S`` (e.g. ``10/5``) a binding default for every unconfigured
    bucket.

    Raises:
        InvalidBucketArgument: neither form, or numbers out of range.
    """
    raw = text.strip().lower()
    if raw in ("", "none", "unlimited"):
        return NON_BINDING
    capacity, sep, rate = raw.partition("/")
    try:
        numbers = (float(capacity), float(rate)) if sep else None
    except ValueError:
        numbers = None
    if numbers is None:
        raise InvalidBucketArgument(
            "default_bucket", f"must be 'none' or CAPACITY/REFILL_PER_S like '10/5', got {text!r}"
        )
    return BucketConfig(*numbers)


@dataclass(frozen=True, slots=True)
class CircuitPolicy:
    """When a bucket's circuit breaker opens and for how long.

    The breaker counts results in tumbling windows of ``window_s`` seconds (a window starts
    at the first result reported after the previous one ended). Closed → open when, in the
    current window, ``failures / total >= failure_ratio`` and ``total >= min_volume``. Open
    → half_open after ``open_s``. Half-open lets one probe token out (another after
    ``open_s`` if no verdict came): a reported success closes the circuit, a failure opens
    it again for ``open_s``.

    Raises:
        InvalidBucketArgument: a value is out of range.
    """

    failure_ratio: float = 0.5
    min_volume: int = 20
    window_s: float = 30.0
    open_s: float = 15.0

    def __post_init__(self) -> None:
        for field in ("failure_ratio", "min_volume", "window_s", "open_s"):
            _finite(field, getattr(self, field))
        if not 0 < self.failure_ratio <= 1:
            raise InvalidBucketArgument("failure_ratio", "must be in (0, 1]")
        if self.min_volume < 1 or int(self.min_volume) != self.min_volume:
            raise InvalidBucketArgument("min_volume", "must be an integer >= 1")
        if self.window_s <= 0:
            raise InvalidBucketArgument("window_s", "must be > 0")
        if self.open_s <= 0:
            raise InvalidBucketArgument("open_s", "must be > 0")


@dataclass(frozen=True, slots=True)
class AdaptivePolicy:
    """How a bucket learns an upstream's rate from its answers (docs/ratelimits.md).

    The bucket keeps a learnt rate ``L`` (0 until the first throttle). The rate in force is
    ``min(configured, L)`` for a host's own config (the operator's ceiling) and ``L`` for an
    inherited one (store or tenant default: a guess, which ``L`` may exceed).

    * Goodput ``G``: successes per second of busy time, over a window restarted at the end
      of each pause and kept between ``goodput_window_s / 2`` and ``goodput_window_s`` long
      (a window 8 times longer stands in while the short one is younger than
      ``min_goodput_window_s``).
    * Decrease, once per episode: a throttle (429, or 5xx with Retry-After) while the bucket
      is not paused sets ``L = max(min_refill_per_s, goodput_margin * min(rate, G))``, or
      ``decrease_factor * rate`` when no goodput is known; pauses the bucket for the
      Retry-After (plus jitter) and empties it. Reports during that pause change nothing.
      Never below a rate the upstream has sustained (its goodput over an episode, less its
      burst); the full case list is in docs/ratelimits.md.
    * Probe: a ``record_results`` with successes, while the goodput is at least 70% of the
      rate (the bucket binds), grows the rate by ``probe_per_s`` of itself per second since
      the previous step (``slow_start_per_s`` before the first throttle: a default far below
      the upstream's rate climbs fast).
    * Hold: no upward probing within ``probe_hold_s`` of a decrease that had a goodput
      sample behind it (a rate just learnt holds before the next probe past the ceiling
      costs another pause).
    * Burst: once a rate is learnt the bucket holds at most ``burst_s`` seconds of it (at
      least 1 token, at most a configured capacity, at most the burst learnt from the
      upstream: what a flood got through before its 429, halved when a 429 comes while the
      bucket sends no faster than the upstream has sustained).

    Raises:
        InvalidBucketArgument: a value is out of range.
    """

    decrease_factor: float = 0.5
    min_refill_per_s: float = 0.1
    probe_per_s: float = 0.02
    goodput_margin: float = 0.9
    slow_start_per_s: float = 1.0
    burst_s: float = 0.25
    goodput_window_s: float = 4.0
    min_goodput_window_s: float = 0.5
    gentle_decrease: float = 0.85
    probe_hold_s: float = 10.0

    def __post_init__(self) -> None:
        for name in (
            "decrease_factor",
            "min_refill_per_s",
            "probe_per_s",
            "goodput_margin",
            "slow_start_per_s",
            "burst_s",
            "goodput_window_s",
            "min_goodput_window_s",
            "gentle_decrease",
            "probe_hold_s",
        ):
            _finite(name, getattr(self, name))
        for name in ("decrease_factor", "goodput_margin", "gentle_decrease"):
            if not 0 < getattr(self, name) <= 1:
                raise InvalidBucketArgument(name, "must be in (0, 1]")
        for name in ("min_refill_per_s", "burst_s", "goodput_window_s", "min_goodput_window_s"):
            if getattr(self, name) <= 0:
                raise InvalidBucketArgument(name, "must be > 0")
        for name in ("probe_per_s", "slow_start_per_s", "probe_hold_s"):
            if getattr(self, name) < 0:
                raise InvalidBucketArgument(name, "must be >= 0")


@dataclass(frozen=True, slots=True)
class Grant:
    """The answer to one acquire request.

    Attributes:
        key: The bucket asked.
        requested: Tokens asked for.
        granted: Tokens granted, ``0 <= granted <= requested`` (partial grants happen).
        retry_after_s: Seconds until the rest (``requested - granted``, at most a full
            bucket) can go; 0 when all was granted.
        remaining: Tokens left in the bucket after this grant (may be fractional).
        deny_reason: Why not all was granted: ``""`` (all granted), ``"tokens"`` (not enough
            tokens), ``"paused"`` (throttled upstream or stopped by an operator override),
            ``"circuit_open"`` (open circuit, or a half-open circuit whose probe is out).
        refill_per_s: The refill rate in force (tokens/s), so a caller can spread what it
            defers (one token's worth of time apart) instead of retrying it all at once.
    """

    key: BucketKey
    requested: int
    granted: int
    retry_after_s: float
    remaining: float
    deny_reason: DenyReason
    refill_per_s: float = 0.0


@dataclass(frozen=True, slots=True)
class BucketState:
    """A bucket as of ``now``.

    Attributes:
        key: The bucket.
        capacity: Configured (or inherited) capacity.
        refill_per_s: Configured (or inherited) refill rate.
        effective_refill_per_s: The rate in force: the override's if one is active, else
            the adaptive fraction * ``refill_per_s``.
        tokens: Tokens available now.
        paused_until: End of a throttle pause (or of a zero-rate override), None if not
            paused.
        reason: Why it is throttled: the throttle reason while paused, else the override's
            reason while one is active, else ``""``.
        circuit: ``"closed"``, ``"open"`` or ``"half_open"``.
        updated_at: Latest ``now`` the bucket has seen (epoch seconds).
        changed: For a throttle report, whether it started an episode (False: the bucket
            was already paused, the report changed nothing); True otherwise.
    """

    key: BucketKey
    capacity: float
    refill_per_s: float
    effective_refill_per_s: float
    tokens: float
    paused_until: float | None
    reason: str
    circuit: CircuitState
    updated_at: float
    changed: bool = True


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """The Redis keys of one bucket; all share the ``{tenant}`` hash tag (one cluster slot).

    Attributes:
        config: Hash of the tenant's configs and overrides (persistent).
        index: Set of the tenant's hosts that have a bucket hash (expires when idle).
        bucket: Hash of the bucket's state (expires when idle).
    """

    config: str
    index: str
    bucket: str


def validate_prefix(prefix: str) -> str:
    """Checks a key prefix: a string without hash-tag braces.

    Raises:
        InvalidBucketArgument: the prefix contains ``{`` or ``}``.
    """
    if not isinstance(prefix, str) or _HASH_TAG_CHARS & set(prefix):
        raise InvalidBucketArgument("prefix", "must be a string without '{' or '}'")
    return prefix


def tenant_keys(prefix: str, tenant: str) -> tuple[str, str]:
    """The config hash and index set names of a tenant."""
    return f"{prefix}c:{{{tenant}}}", f"{prefix}i:{{{tenant}}}"


def redis_keys(prefix: str, key: BucketKey) -> RedisKeys:
    """Names the Redis keys of a bucket: ``{prefix}b:{tenant}:{host}`` and the tenant's
    ``{prefix}c:{tenant}`` / ``{prefix}i:{tenant}`` (braces literal: the hash tag)."""
    config, index = tenant_keys(prefix, key.tenant)
    return RedisKeys(config, index, f"{prefix}b:{{{key.tenant}}}:{key.host}")
