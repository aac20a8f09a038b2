"""Service configuration read from the environment (one frozen object per process)."""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator_grpckit._env import env_choice, env_number
from orchestrator_grpckit._exceptions import ConfigError
from orchestrator_grpckit._oidc import OidcConfig

# Why a named constant: it must be recognisable in logs and code review, and long enough
# (>= 32 bytes) that PyJWT does not warn about a short HMAC key.
DEV_HS256_SECRET = "stella-orchestrator-INSECURE-dev-secret-do-not-use-in-production"

DEFAULT_BIND_HOST = "127.0.0.1"
# The explicit switch that lets a service listen beyond loopback with built-in development
# key material (docs/configuration.md, "Secure by default").
INSECURE_DEV_ENV = "ORCH_INSECURE_DEV"
DEFAULT_DATABASE_URL = "postgresql://orchestrator:orchestrator@127.0.0.1:5432/orchestrator"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_LOG_LEVEL = "INFO"
DEFAULT_SHUTDOWN_GRACE_S = 10.0
DEFAULT_HEALTH_PROBE_S = 2.0
# Most pooled PostgreSQL connections of one service process. Replicas multiply it: size
# max_connections for the sum over every process (docs/scaling.md).
DEFAULT_DB_POOL_MAX = 20
MAX_DB_POOL = 1000
MAX_SECONDS = 3600.0

# docs/architecture.md §1: gRPC 50051..50054 and metrics 9101..9105 in the order
# gateway, scheduler, leases, ratelimit, audit. The gateway has no gRPC port of its own.
DEFAULT_GRPC_PORTS: Mapping[str, int] = {
    "scheduler": 50051,
    "leases": 50052,
    "ratelimit": 50053,
    "audit": 50054,
}
DEFAULT_METRICS_PORTS: Mapping[str, int] = {
    "gateway": 9101,
    "scheduler": 9102,
    "leases": 9103,
    "ratelimit": 9104,
    "audit": 9105,
}

_log = logging.getLogger("orchestrator_grpckit")
_SERVICE_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


@dataclass(frozen=True)
class EnvVar:
    """One documented environment variable.

    Attributes:
        name: Variable name; ``<SERVICE>`` stands for the upper-cased service name.
        default: Default value as documented (a description when it depends on the service).
        description: What the variable controls.
    """

    name: str
    default: str
    description: str


ENV_VARS: tuple[EnvVar, ...] = (
    EnvVar(
        "ORCH_<SERVICE>_GRPC_PORT",
        "scheduler 50051, leases 50052, ratelimit 50053, audit 50054",
        "gRPC listen port of the service (0 picks a free port).",
    ),
    EnvVar(
        "ORCH_<SERVICE>_METRICS_PORT",
        "gateway 9101, scheduler 9102, leases 9103, ratelimit 9104, audit 9105",
        "Prometheus `/metrics` HTTP port (0 picks a free port).",
    ),
    EnvVar(
        "ORCH_BIND_HOST",
        DEFAULT_BIND_HOST,
        "Interface the gRPC and metrics servers bind. Beyond loopback a service refuses to "
        "start with built-in development key material (see `ORCH_INSECURE_DEV`).",
    ),
    EnvVar("ORCH_DATABASE_URL", DEFAULT_DATABASE_URL, "PostgreSQL ledger connection URL."),
    EnvVar("ORCH_REDIS_URL", DEFAULT_REDIS_URL, "Redis URL (rate-limit buckets)."),
    EnvVar(
        "ORCH_AUTH_HS256_SECRET",
        "a built-in dev secret (loopback only, or with `ORCH_INSECURE_DEV=1`; a warning is logged)",
        "Shared secret that verifies HS256 bearer tokens; set it empty to accept only "
        "Ed25519 tokens.",
    ),
    EnvVar(
        "ORCH_AUTH_ED25519_PUBLIC_KEY_FILE",
        "unset",
        "PEM file with the Ed25519 public key that verifies EdDSA bearer tokens.",
    ),
    EnvVar(
        "ORCH_AUTH_OIDC_ISSUER",
        "unset",
        "`iss` of an OIDC identity provider whose tokens are accepted too, verified against "
        "its JWKS (set with `ORCH_AUTH_OIDC_JWKS_URL`); docs/deploy.md, OIDC.",
    ),
    EnvVar(
        "ORCH_AUTH_OIDC_JWKS_URL",
        "unset",
        "The issuer's JWKS document (`jwks_uri` of its discovery document); cached 300 s, "
        "refetched when a token names an unknown `kid` (key rotation).",
    ),
    EnvVar(
        "ORCH_AUTH_OIDC_AUDIENCE",
        "`stella-orchestrator`",
        "The `aud` the issuer's tokens must carry.",
    ),
    EnvVar(
        "ORCH_AUTH_OIDC_ALGORITHMS",
        "`RS256 ES256 EdDSA`",
        "Signature algorithms accepted from the issuer (never HS*).",
    ),
    EnvVar(
        "ORCH_AUTH_OIDC_TENANTS_CLAIM",
        "`tenants`",
        "Claim of the issuer's tokens that lists the tenants.",
    ),
    EnvVar(
        "ORCH_AUTH_OIDC_SCOPES_CLAIM",
        "`scopes`",
        "Claim holding the scopes: a list, or one space-separated string (OAuth `scope`).",
    ),
    EnvVar(
        INSECURE_DEV_ENV,
        "0",
        "`1` lets a service bound beyond loopback start with the built-in development token "
        "secret or audit signing key, which anyone can use to mint tokens or forge bundles "
        "(a private development network only). With `0` such a service exits with an error "
        "naming the variable to set. Loopback binds need no switch.",
    ),
    EnvVar(
        "ORCH_TLS_CERT_FILE",
        "unset (plaintext gRPC)",
        "PEM certificate chain the gRPC server presents: set with `ORCH_TLS_KEY_FILE` to serve "
        'gRPC over TLS only (workers connect with a CA file, docs/deploy.md "TLS").',
    ),
    EnvVar("ORCH_TLS_KEY_FILE", "unset", "PEM private key of `ORCH_TLS_CERT_FILE`."),
    EnvVar(
        "ORCH_TLS_CLIENT_CA_FILE",
        "unset",
        "PEM CA bundle: with it (and TLS on) every client must present a certificate it "
        "signed (mutual TLS), besides its bearer token.",
    ),
    EnvVar("ORCH_LOG_LEVEL", DEFAULT_LOG_LEVEL, "Log level: DEBUG, INFO, WARNING, ERROR."),
    EnvVar(
        "ORCH_SHUTDOWN_GRACE_S",
        "10",
        "Seconds in-flight RPCs get to finish after SIGTERM before they are cancelled.",
    ),
    EnvVar(
        "ORCH_HEALTH_PROBE_S",
        "2",
        "Seconds between two probes of the service's required dependencies (PostgreSQL); "
        "health is NOT_SERVING while one does not answer (within 5 s, or this if longer).",
    ),
    EnvVar(
        "ORCH_DB_POOL_MAX",
        str(DEFAULT_DB_POOL_MAX),
        "Most pooled PostgreSQL connections of one process; every replica opens its own "
        "pool, so keep the sum over all processes below PostgreSQL's `max_connections` "
        "(docs/scaling.md).",
    ),
)


def env_var_table() -> str:
    """Render the environment variables of every gRPC service as a Markdown table.

    Returns:
        A Markdown table (header, separator and one row per variable), newline terminated.
    """
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for var in ENV_VARS:
        lines.append(f"| `{var.name}` | {_md_default(var.default)} | {var.description} |")
    return "\n".join(lines) + "\n"


def _md_default(default: str) -> str:
    # Literal values are shown as code, prose defaults ("unset", "scheduler 50051, ...") as text.
    return default if " " in default or default == "unset" else f"`{default}`"


def is_loopback(host: str) -> bool:
    """True when ``host`` names only this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def refuse_exposed_dev_defaults(
    service_name: str, bind_host: str, dev_defaults: Collection[str], *, insecure_dev: bool
) -> None:
    """Refuse to serve beyond loopback with built-in development key material.

    The development HS256 secret and audit signing key are in this public repository: on a
    reachable address they let anyone mint tokens or forge audit bundles. Every service
    calls this once at startup, before it binds.

    Args:
        service_name: Named in the message.
        bind_host: The interface the service is about to bind.
        dev_defaults: The variables whose built-in development value is in use
            (e.g. ``ORCH_AUTH_HS256_SECRET``); empty when every key is the operator's own.
        insecure_dev: ``ORCH_INSECURE_DEV=1``: the operator accepts the risk.

    Raises:
        ConfigError: ``bind_host`` is not loopback, some dev default is in use and the
            insecure switch is off; the message names what to set.
    """
    if not dev_defaults or is_loopback(bind_host):
        return
    names = " and ".join(sorted(dev_defaults))
    if insecure_dev:
        _log.warning(
            "%s serves on %s with the built-in development value of %s because %s=1: "
            "that value is public, keep the network private",
            service_name,
            bind_host,
            names,
            INSECURE_DEV_ENV,
            extra={"service": service_name},
        )
        return
    raise ConfigError(
        f"{service_name} refuses to start: ORCH_BIND_HOST={bind_host} is not loopback but "
        f"{names} is not set, so the built-in development key (public in the source) would "
        f'be used. Set {names} (docs/configuration.md, "Secure by default"), bind '
        f"127.0.0.1, or set {INSECURE_DEV_ENV}=1 for a private development network."
    )


def insecure_dev_from_env(env: Mapping[str, str]) -> bool:
    """``ORCH_INSECURE_DEV`` as a bool (``0`` or ``1``, default ``0``).

    Raises:
        ConfigError: any other value.
    """
    return env_choice(env, INSECURE_DEV_ENV, ("0", "1"), "0") == "1"


def _service_prefix(service_name: str) -> str:
    return "ORCH_" + service_name.upper().replace("-", "_") + "_"


@dataclass(frozen=True)
class ServiceConfig:
    """Runtime configuration shared by every gRPC service.

    Build it with :meth:`from_env` in a service's ``__main__``; tests build it directly.

    Attributes:
        service_name: Short service name (``scheduler``, ``leases``, ...); used in env var
            names, logs and metrics.
        grpc_port: gRPC listen port; 0 binds a free port (see ``GrpcService.port``).
        metrics_port: Prometheus HTTP port; 0 binds a free port, ``None`` disables it.
        bind_host: Interface both servers bind.
        database_url: PostgreSQL URL.
        redis_url: Redis URL.
        auth_hs256_secret: HS256 token secret, or ``None`` to accept no HS256 tokens.
        auth_ed25519_public_key_file: PEM public key for EdDSA tokens, or ``None``.
        log_level: Log level name.
        shutdown_grace_s: Grace period for in-flight RPCs on shutdown.
        health_probe_s: Interval (and timeout) of the required-dependency health probe.
        db_pool_max: Most pooled PostgreSQL connections of this process.
        insecure_dev: ``ORCH_INSECURE_DEV=1``: may serve beyond loopback with built-in
            development keys (:meth:`refuse_exposed_dev_defaults`).
        tls_cert_file: PEM certificate chain of the gRPC server; with ``tls_key_file`` the
            server speaks TLS only. ``None``: plaintext.
        tls_key_file: PEM private key of ``tls_cert_file``.
        tls_client_ca_file: PEM CA bundle that client certificates must chain to (mutual
            TLS), or ``None``.
        oidc: An OIDC issuer whose tokens are accepted too (``ORCH_AUTH_OIDC_*``), or
            ``None``.
    """

    service_name: str
    grpc_port: int
    metrics_port: int | None = None
    bind_host: str = DEFAULT_BIND_HOST
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    auth_hs256_secret: str | None = field(default=DEV_HS256_SECRET, repr=False)
    auth_ed25519_public_key_file: Path | None = None
    log_level: str = DEFAULT_LOG_LEVEL
    shutdown_grace_s: float = DEFAULT_SHUTDOWN_GRACE_S
    health_probe_s: float = DEFAULT_HEALTH_PROBE_S
    db_pool_max: int = DEFAULT_DB_POOL_MAX
    insecure_dev: bool = False
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None
    oidc: OidcConfig | None = None

    def __post_init__(self) -> None:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ConfigError(
                "ORCH_TLS_CERT_FILE and ORCH_TLS_KEY_FILE are set together or not at all"
            )
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ConfigError(
                "ORCH_TLS_CLIENT_CA_FILE needs ORCH_TLS_CERT_FILE and ORCH_TLS_KEY_FILE"
            )

    @property
    def uses_dev_secret(self) -> bool:
        """True when HS256 tokens are verified with the built-in, public dev secret."""
        return self.auth_hs256_secret == DEV_HS256_SECRET

    def refuse_exposed_dev_defaults(self, *dev_defaults: str) -> None:
        """Raise unless the service may start with its development defaults where it binds.

        Args:
            dev_defaults: Variables of the service's own whose built-in development value is
                in use besides the HS256 secret (audit: ``ORCH_AUDIT_SIGNING_KEY_FILE``).

        Raises:
            ConfigError: See :func:`refuse_exposed_dev_defaults`.
        """
        names = {*dev_defaults, *(["ORCH_AUTH_HS256_SECRET"] if self.uses_dev_secret else [])}
        refuse_exposed_dev_defaults(
            self.service_name, self.bind_host, names, insecure_dev=self.insecure_dev
        )

    @property
    def grpc_address(self) -> str:
        """``host:port`` the gRPC server binds (IPv6 hosts are bracketed)."""
        host = f"[{self.bind_host}]" if ":" in self.bind_host else self.bind_host
        return f"{host}:{self.grpc_port}"

    def tls_pem(self) -> tuple[bytes, bytes, bytes | None] | None:
        """Read the TLS files.

        Returns:
            ``(certificate chain, private key, client CA or None)`` as PEM bytes, or ``None``
            when TLS is off.

        Raises:
            ConfigError: A file cannot be read.
        """
        if self.tls_cert_file is None or self.tls_key_file is None:
            return None
        client_ca = self.tls_client_ca_file
        return (
            _read_file("ORCH_TLS_CERT_FILE", self.tls_cert_file),
            _read_file("ORCH_TLS_KEY_FILE", self.tls_key_file),
            None if client_ca is None else _read_file("ORCH_TLS_CLIENT_CA_FILE", client_ca),
        )

    def ed25519_public_key_pem(self) -> bytes | None:
        """Read the Ed25519 public key file.

        Returns:
            The PEM bytes, or ``None`` when no key file is configured.

        Raises:
            ConfigError: The file cannot be read.
        """
        if self.auth_ed25519_public_key_file is None:
            return None
        return _read_file("ORCH_AUTH_ED25519_PUBLIC_KEY_FILE", self.auth_ed25519_public_key_file)

    @classmethod
    def from_env(
        cls,
        service_name: str,
        default_grpc_port: int | None = None,
        default_metrics_port: int | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> ServiceConfig:
        """Load the configuration of one service from environment variables.

        Args:
            service_name: ``scheduler``, ``leases``, ``ratelimit``, ``audit`` or another
                lower-case name; it selects ``ORCH_<SERVICE>_GRPC_PORT`` and
                ``ORCH_<SERVICE>_METRICS_PORT``.
            default_grpc_port: Port used when the variable is unset; defaults to the
                architecture.md §1 port of a known service.
            default_metrics_port: Same for the metrics port.
            environ: Mapping to read instead of ``os.environ`` (tests).

        Returns:
            The frozen configuration.

        Raises:
            ConfigError: A variable is malformed, or no port is known for the service.
        """
        env = os.environ if environ is None else environ
        if not _SERVICE_NAME_RE.match(service_name):
            raise ConfigError(
                f"service name {service_name!r} must match {_SERVICE_NAME_RE.pattern}"
            )
        prefix = _service_prefix(service_name)
        grpc_default = (
            default_grpc_port
            if default_grpc_port is not None
            else DEFAULT_GRPC_PORTS.get(service_name)
        )
        metrics_default = (
            default_metrics_port
            if default_metrics_port is not None
            else DEFAULT_METRICS_PORTS.get(service_name)
        )
        grpc_port = _port(env, prefix + "GRPC_PORT", grpc_default)
        if grpc_port is None:
            raise ConfigError(
                f"{prefix}GRPC_PORT is not set and {service_name!r} has no default gRPC port"
            )
        key_file = env.get("ORCH_AUTH_ED25519_PUBLIC_KEY_FILE", "").strip()
        # An empty secret means "HS256 disabled" (Ed25519 only), which is how production
        # deployments that sign with a private key run.
        secret = env.get("ORCH_AUTH_HS256_SECRET", DEV_HS256_SECRET)
        return cls(
            service_name=service_name,
            grpc_port=grpc_port,
            metrics_port=_port(env, prefix + "METRICS_PORT", metrics_default),
            bind_host=env.get("ORCH_BIND_HOST", DEFAULT_BIND_HOST).strip() or DEFAULT_BIND_HOST,
            database_url=env.get("ORCH_DATABASE_URL", DEFAULT_DATABASE_URL),
            redis_url=env.get("ORCH_REDIS_URL", DEFAULT_REDIS_URL),
            auth_hs256_secret=secret or None,
            auth_ed25519_public_key_file=Path(key_file) if key_file else None,
            log_level=_log_level(env.get("ORCH_LOG_LEVEL", DEFAULT_LOG_LEVEL)),
            shutdown_grace_s=env_number(
                env, "ORCH_SHUTDOWN_GRACE_S", DEFAULT_SHUTDOWN_GRACE_S, 0, MAX_SECONDS
            ),
            health_probe_s=env_number(
                env, "ORCH_HEALTH_PROBE_S", DEFAULT_HEALTH_PROBE_S, 0.05, MAX_SECONDS
            ),
            db_pool_max=int(
                env_number(env, "ORCH_DB_POOL_MAX", DEFAULT_DB_POOL_MAX, 2, MAX_DB_POOL)
            ),
            insecure_dev=insecure_dev_from_env(env),
            oidc=OidcConfig.from_env(env),
            tls_cert_file=_path(env, "ORCH_TLS_CERT_FILE"),
            tls_key_file=_path(env, "ORCH_TLS_KEY_FILE"),
            tls_client_ca_file=_path(env, "ORCH_TLS_CLIENT_CA_FILE"),
        )


def _read_file(name: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{name}={path}: cannot read the file ({exc.strerror})") from exc


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "").strip()
    return Path(raw) if raw else None


def _port(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer port") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{name}={port} is outside 0..65535")
    return port


def _log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level == "WARN":
        level = "WARNING"
    if level not in _LOG_LEVELS:
        # Checked here rather than by logging.setLevel so a typo fails at startup with the
        # variable's name instead of deep inside logging.
        raise ConfigError(f"ORCH_LOG_LEVEL={raw!r} must be one of {', '.join(_LOG_LEVELS)}")
    return level
