"""Redis adapter of Stella Orchestrator: adaptive token buckets and circuit breakers.

Design note
-----------
* One bucket per ``{tenant, source host}`` (docs/architecture.md §4); host ``""`` is the
  tenant's default bucket, whose config the tenant's host buckets inherit (else the store
  default).
* The token bucket math lives in ``lua/buckets.lua``, one ``-- name:`` header per script,
  loaded by name (:func:`orchestrator_redis._lua.script`), sent with ``SCRIPT LOAD`` once and
  run with ``EVALSHA`` (reloaded after ``NOSCRIPT``). Python never builds Lua from strings.
* Time is always the caller's ``now`` (epoch seconds): scripts never read Redis ``TIME``, so
  tests move time instead of sleeping.
* Keys share the ``{tenant}`` hash tag (one cluster slot per tenant):
  ``{prefix}b:{tenant}:{host}`` bucket hash (expires after :data:`IDLE_TTL_S` idle),
  ``{prefix}i:{tenant}`` index set of live hosts, ``{prefix}c:{tenant}`` configs and
  overrides (persistent).
* Refill: ``tokens = min(capacity, tokens + effective_rate * elapsed)``; nothing accrues
  while paused; grants are whole tokens, partial grants allowed. Learnt rates and circuit rules:
  :class:`AdaptivePolicy`, :class:`CircuitPolicy`.
* :meth:`BucketStore.acquire` is batched: one script call per tenant, all in one pipeline,
  one round trip. Unreachable Redis raises :class:`RedisUnavailable`; the fail-open/closed
  policy belongs to the caller.
"""

from orchestrator_redis._bench import BENCH_TENANT, acquire_decisions_per_s
from orchestrator_redis._errors import (
    InvalidBucketArgument,
    OrchestratorRedisError,
    RedisUnavailable,
)
from orchestrator_redis._jitter import PAUSE_JITTER_FRACTION, pause_jitter_s
from orchestrator_redis._model import (
    NON_BINDING,
    AdaptivePolicy,
    BucketConfig,
    BucketKey,
    BucketState,
    CircuitPolicy,
    DenyReason,
    Grant,
    RedisKeys,
    parse_default_bucket,
    redis_keys,
)
from orchestrator_redis._store import (
    DEFAULT_PREFIX,
    IDLE_TTL_S,
    STOPPED_RETRY_AFTER_S,
    BucketStore,
)

__all__ = [
    "BENCH_TENANT",
    "DEFAULT_PREFIX",
    "IDLE_TTL_S",
    "NON_BINDING",
    "PAUSE_JITTER_FRACTION",
    "STOPPED_RETRY_AFTER_S",
    "AdaptivePolicy",
    "BucketConfig",
    "BucketKey",
    "BucketState",
    "BucketStore",
    "CircuitPolicy",
    "DenyReason",
    "Grant",
    "InvalidBucketArgument",
    "OrchestratorRedisError",
    "RedisKeys",
    "RedisUnavailable",
    "acquire_decisions_per_s",
    "parse_default_bucket",
    "pause_jitter_s",
    "redis_keys",
]
