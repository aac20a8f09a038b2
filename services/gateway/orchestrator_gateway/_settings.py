"""Gateway configuration from ``ORCH_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator_grpckit import (
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    DEV_HS256_SECRET,
    ConfigError,
    OidcConfig,
    env_number,
    insecure_dev_from_env,
    refuse_exposed_dev_defaults,
)

DEFAULT_HTTP_PORT = 8080
# Bounds of the numeric settings (all sizes, ports or durations).
POSITIVE = 1e-9
LARGEST = 1e12
DEFAULT_METRICS_PORT = 9105
DEFAULT_SCHEDULER_TARGET = "127.0.0.1:50051"
DEFAULT_RATELIMIT_TARGET = "127.0.0.1:50053"
DEFAULT_AUDIT_TARGET = "127.0.0.1:50054"
DEFAULT_RATE_PER_S = 50.0
DEFAULT_RATE_BURST = 200
DEFAULT_STREAM_BUFFER = 1000
DEFAULT_IDEMPOTENCY_TTL_S = 24 * 3600.0
DEFAULT_IDEMPOTENCY_WAIT_S = 20.0
DEFAULT_GRPC_TIMEOUT_S = 10.0
DEFAULT_REDIS_TIMEOUT_S = 0.5
DEFAULT_RATELIMIT_KEY_PREFIX = "orch:gw:"
DEFAULT_DB_POOL_MAX = 10


@dataclass(frozen=True)
class GatewaySettings:
    """Runtime configuration of the gateway.

    Attributes:
        http_port: HTTP listen port (REST, SSE, WebSocket, Console, ``/metrics``).
        bind_host: Interface to bind.
        scheduler_target: The scheduler (also serves events and operations): ``host:port``,
            a comma list of replicas or a gRPC name such as ``dns:///scheduler:50051``;
            calls are balanced ``round_robin`` over every address.
        ratelimit_target: The ratelimit service, in the same forms.
        audit_target: The audit service, in the same forms.
        auth_hs256_secret: HS256 secret for bearer tokens, or ``None``.
        auth_ed25519_public_key_file: PEM public key for EdDSA tokens, or ``None``.
        database_url: PostgreSQL URL (``Idempotency-Key`` records, shared by all replicas).
        db_pool_max: Most pooled PostgreSQL connections of one replica.
        redis_url: Redis URL (per-caller rate limits, shared by all replicas).
        redis_timeout_s: Redis connect and socket timeout (then the limit fails open).
        ratelimit_key_prefix: Redis key prefix of the per-caller buckets.
        rate_per_s: Requests per second allowed per caller (tenant + subject).
        rate_burst: Burst size of that per-caller token bucket.
        stream_buffer: Events buffered per SSE/WebSocket client before it is cut.
        idempotency_ttl_s: How long an ``Idempotency-Key`` answer is replayed.
        idempotency_wait_s: How long a duplicate waits for the first request's answer
            before it is answered 409.
        grpc_timeout_s: Deadline of each unary gRPC call.
        console_dir: Directory of the built Console (``index.html`` and assets).
        oidc: An OIDC issuer whose tokens are accepted too (``ORCH_AUTH_OIDC_*``).
        insecure_dev: ``ORCH_INSECURE_DEV=1``: may serve beyond loopback with the built-in
            development HS256 secret.
    """

    http_port: int = DEFAULT_HTTP_PORT
    bind_host: str = "127.0.0.1"
    scheduler_target: str = DEFAULT_SCHEDULER_TARGET
    ratelimit_target: str = DEFAULT_RATELIMIT_TARGET
    audit_target: str = DEFAULT_AUDIT_TARGET
    auth_hs256_secret: str | None = field(default=DEV_HS256_SECRET, repr=False)
    auth_ed25519_public_key_file: Path | None = None
    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)
    db_pool_max: int = DEFAULT_DB_POOL_MAX
    redis_url: str = field(default=DEFAULT_REDIS_URL, repr=False)
    redis_timeout_s: float = DEFAULT_REDIS_TIMEOUT_S
    ratelimit_key_prefix: str = DEFAULT_RATELIMIT_KEY_PREFIX
    rate_per_s: float = DEFAULT_RATE_PER_S
    rate_burst: int = DEFAULT_RATE_BURST
    stream_buffer: int = DEFAULT_STREAM_BUFFER
    idempotency_ttl_s: float = DEFAULT_IDEMPOTENCY_TTL_S
    idempotency_wait_s: float = DEFAULT_IDEMPOTENCY_WAIT_S
    grpc_timeout_s: float = DEFAULT_GRPC_TIMEOUT_S
    console_dir: Path = Path(__file__).resolve().parent / "console"
    insecure_dev: bool = False
    oidc: OidcConfig | None = None

    def refuse_exposed_dev_defaults(self) -> None:
        """Raise unless the gateway may serve where it binds with the keys it has.

        Raises:
            ConfigError: Bound beyond loopback with the development HS256 secret and
                without ``ORCH_INSECURE_DEV=1``.
        """
        dev = ["ORCH_AUTH_HS256_SECRET"] if self.auth_hs256_secret == DEV_HS256_SECRET else []
        refuse_exposed_dev_defaults("gateway", self.bind_host, dev, insecure_dev=self.insecure_dev)

    def ed25519_public_key_pem(self) -> bytes | None:
        if self.auth_ed25519_public_key_file is None:
            return None
        try:
            return self.auth_ed25519_public_key_file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read ORCH_AUTH_ED25519_PUBLIC_KEY_FILE: {exc}") from exc

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GatewaySettings:
        """Read the settings; unset variables take the defaults above.

        Raises:
            ConfigError: A number is malformed.
        """
        env = os.environ if environ is None else environ

        def number(name: str, default: float) -> float:
            # Every number here is a size, a port or a duration: zero or less is a mistake.
            return env_number(env, name, default, POSITIVE, LARGEST)

        key_file = env.get("ORCH_AUTH_ED25519_PUBLIC_KEY_FILE", "").strip()
        secret = env.get("ORCH_AUTH_HS256_SECRET", DEV_HS256_SECRET)
        return cls(
            http_port=int(number("ORCH_GATEWAY_HTTP_PORT", DEFAULT_HTTP_PORT)),
            bind_host=env.get("ORCH_BIND_HOST", "127.0.0.1").strip() or "127.0.0.1",
            scheduler_target=env.get("ORCH_SCHEDULER_TARGET", "")
            or f"127.0.0.1:{env.get('ORCH_SCHEDULER_GRPC_PORT', '50051')}",
            ratelimit_target=env.get("ORCH_RATELIMIT_TARGET", "")
            or f"127.0.0.1:{env.get('ORCH_RATELIMIT_GRPC_PORT', '50053')}",
            audit_target=env.get("ORCH_AUDIT_TARGET", "")
            or f"127.0.0.1:{env.get('ORCH_AUDIT_GRPC_PORT', '50054')}",
            auth_hs256_secret=secret or None,
            auth_ed25519_public_key_file=Path(key_file) if key_file else None,
            oidc=OidcConfig.from_env(env),
            database_url=env.get("ORCH_DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL,
            db_pool_max=int(number("ORCH_GATEWAY_DB_POOL_MAX", DEFAULT_DB_POOL_MAX)),
            redis_url=env.get("ORCH_REDIS_URL", "").strip() or DEFAULT_REDIS_URL,
            redis_timeout_s=number("ORCH_GATEWAY_REDIS_TIMEOUT_S", DEFAULT_REDIS_TIMEOUT_S),
            ratelimit_key_prefix=env.get("ORCH_GATEWAY_RATELIMIT_KEY_PREFIX", "").strip()
            or DEFAULT_RATELIMIT_KEY_PREFIX,
            rate_per_s=number("ORCH_GATEWAY_RATE_PER_S", DEFAULT_RATE_PER_S),
            rate_burst=int(number("ORCH_GATEWAY_RATE_BURST", DEFAULT_RATE_BURST)),
            stream_buffer=int(number("ORCH_GATEWAY_STREAM_BUFFER", DEFAULT_STREAM_BUFFER)),
            idempotency_ttl_s=number("ORCH_GATEWAY_IDEMPOTENCY_TTL_S", DEFAULT_IDEMPOTENCY_TTL_S),
            idempotency_wait_s=number(
                "ORCH_GATEWAY_IDEMPOTENCY_WAIT_S", DEFAULT_IDEMPOTENCY_WAIT_S
            ),
            grpc_timeout_s=number("ORCH_GATEWAY_GRPC_TIMEOUT_S", DEFAULT_GRPC_TIMEOUT_S),
            insecure_dev=insecure_dev_from_env(env),
        )
