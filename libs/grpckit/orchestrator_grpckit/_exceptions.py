"""The exception root of orchestrator_grpckit (bootstrap failures, not RPC errors).

RPC errors are ``orchestrator_core.errors.OrchestratorError``; these are raised to the
process that runs a service, never sent to a client.
"""

from __future__ import annotations


class GrpcKitError(Exception):
    """Root of every exception raised by orchestrator_grpckit itself."""


class ConfigError(GrpcKitError, ValueError):
    """An environment variable or configuration value is malformed."""


class BackgroundTaskFailed(GrpcKitError):
    """A supervised background task of a ``GrpcService`` died, so the service stopped.

    Attributes:
        task_name: Name of the task that died.
    """

    def __init__(self, task_name: str, message: str) -> None:
        super().__init__(message)
        self.task_name = task_name
