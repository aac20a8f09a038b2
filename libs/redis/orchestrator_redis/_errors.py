"""The exception root of the Redis adapter (STYLE rule 13)."""

from __future__ import annotations

__all__ = ["InvalidBucketArgument", "OrchestratorRedisError", "RedisUnavailable"]


class OrchestratorRedisError(Exception):
    """Root of every error ``orchestrator_redis`` raises on purpose."""


class RedisUnavailable(OrchestratorRedisError):
    """Redis cannot be reached (connection refused, timeout, loading); ``__cause__`` holds
    the redis-py error. Callers apply their explicit Redis-down policy (docs/architecture.md §4)."""


class InvalidBucketArgument(OrchestratorRedisError, ValueError):
    """A bucket key, config, policy or call argument is out of range.

    Attributes:
        field: The offending argument, e.g. ``"capacity"``.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
