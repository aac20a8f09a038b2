"""How the worker SDK and the producer client reach a service: one channel recipe, one
credentials rule and one set of call metadata, so both behave alike behind a load balancer,
with TLS and with a rotating token."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Final

import grpc

from stella_orchestrator.targets import channel_options, channel_target

TENANT_HEADER: Final = "x-stella-tenant"
MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024
DEFAULT_CHANNEL_OPTIONS: Final[tuple[tuple[str, int], ...]] = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # Detect a vanished server within ~40 s even when no call is running (the servers
    # accept pings every 10 s).
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # The channel's own reconnect backoff must not outgrow ours (gRPC's default is 120 s).
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 10_000),
)

Token = str | Callable[[], str]
"""A bearer token, or a function returning one (called for every call or stream)."""


def resolve_credentials(
    credentials: grpc.ChannelCredentials | None,
    tls_ca_file: str | os.PathLike[str] | None,
) -> grpc.ChannelCredentials | None:
    """The channel credentials of ``credentials`` or ``tls_ca_file`` (a PEM CA to trust).

    Raises:
        ValueError: Both are given.
        OSError: ``tls_ca_file`` cannot be read.
    """
    if tls_ca_file is None:
        return credentials
    if credentials is not None:
        raise ValueError("give credentials or tls_ca_file, not both")
    with open(tls_ca_file, "rb") as ca:
        return grpc.ssl_channel_credentials(root_certificates=ca.read())


def call_metadata(token: Token, tenant: str | None) -> tuple[tuple[str, str], ...]:
    """``authorization`` (and ``x-stella-tenant`` when a tenant is chosen) for one call."""
    value = token() if callable(token) else token
    metadata = [("authorization", f"Bearer {value}")]
    if tenant:
        metadata.append((TENANT_HEADER, tenant))
    return tuple(metadata)


def aio_channel(
    target: str,
    options: Sequence[tuple[str, Any]],
    credentials: grpc.ChannelCredentials | None,
) -> grpc.aio.Channel:
    """An asyncio channel to ``target`` (a ``host:port``, a comma list or a gRPC name),
    balanced ``round_robin`` (:mod:`stella_orchestrator.targets`)."""
    resolved, opts = channel_target(target), channel_options(options)
    if credentials is not None:
        return grpc.aio.secure_channel(resolved, credentials, opts)
    return grpc.aio.insecure_channel(resolved, opts)
