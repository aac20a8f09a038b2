"""orchestrator_grpckit: the shared grpc.aio server bootstrap of Stella Orchestrator.

Design note. Every service's ``__main__`` does the same five things, so they live here
once (STYLE rule 17):

* configuration from ``ORCH_*`` environment variables (:class:`ServiceConfig`); a service
  bound beyond loopback refuses the built-in development keys unless ``ORCH_INSECURE_DEV=1``
  (:func:`refuse_exposed_dev_defaults`, :func:`exit_on_config_error`);
* identity: bearer JWTs (HS256 or Ed25519) become a :class:`Principal` bound to the RPC
  (:func:`current_principal`), with the tenant chosen from the token, never from a field;
* tracing from the standard ``OTEL_*`` variables (:func:`tracing`, docs/tracing.md);
* one interceptor chain: (server span →) request id → metrics + JSON access log → error mapping
  (``OrchestratorError`` → status + ``google.rpc`` details, the only such place) → auth;
* :class:`GrpcService`: health, reflection, keepalive, Prometheus endpoint, supervised
  background tasks and SIGTERM → NOT_SERVING → graceful stop (:func:`run_service`).

Typical ``__main__``::

    config = ServiceConfig.from_env("scheduler")
    configure_logging(config.log_level, service=config.service_name)
    with tracing(config.service_name):  # flushes queued spans on the way out
        service = GrpcService(config, [(add_SchedulerServiceServicer_to_server, servicer,
                                        "stella.orchestrator.v1.SchedulerService")])
        with exit_on_config_error("scheduler"):
            asyncio.run(run_service(service))

Clients parse error details with :func:`error_details`.
"""

from orchestrator_grpckit._auth import (
    ANY_TENANT,
    AUDIENCE,
    ISSUER,
    TENANT_HEADER,
    TENANT_ID_RE,
    Principal,
    TokenVerifier,
    current_principal,
    generate_ed25519_keypair,
    method_scopes,
    mint_dev_token,
    mint_token_ed25519,
)
from orchestrator_grpckit._config import (
    DEFAULT_DATABASE_URL,
    DEFAULT_GRPC_PORTS,
    DEFAULT_METRICS_PORTS,
    DEFAULT_REDIS_URL,
    DEV_HS256_SECRET,
    ENV_VARS,
    INSECURE_DEV_ENV,
    EnvVar,
    ServiceConfig,
    env_var_table,
    insecure_dev_from_env,
    is_loopback,
    refuse_exposed_dev_defaults,
)
from orchestrator_grpckit._context import current_request_id
from orchestrator_grpckit._dependencies import DEPENDENCY_UP, Dependency, DependencyMonitor
from orchestrator_grpckit._env import env_choice, env_int, env_number
from orchestrator_grpckit._exceptions import BackgroundTaskFailed, ConfigError, GrpcKitError
from orchestrator_grpckit._interceptors import (
    PUBLIC_METHOD_PREFIXES,
    REQUEST_ID_HEADER,
    AuthInterceptor,
    ErrorInterceptor,
    ObservabilityInterceptor,
    RequestIdInterceptor,
    server_interceptors,
)
from orchestrator_grpckit._logging import JsonFormatter, configure_logging
from orchestrator_grpckit._main import BuildService, ServiceParts, service_main, service_of
from orchestrator_grpckit._oidc import OidcConfig
from orchestrator_grpckit._proto import (
    enum_label,
    enum_labels,
    enum_number,
    enum_prefix,
    optional_datetime,
)
from orchestrator_grpckit._server import (
    CONFIG_ERROR_EXIT_STATUS,
    LIVENESS_SERVICE,
    MAX_MESSAGE_BYTES,
    SERVER_OPTIONS,
    AddServicerFn,
    Background,
    BackgroundFactory,
    GrpcService,
    ServiceRegistration,
    exit_on_config_error,
    run_service,
)
from orchestrator_grpckit._status import ERROR_DOMAIN, error_details, status_code_of, to_rpc_status
from orchestrator_grpckit._tracing import (
    NoOrphanClientSpans,
    TracingInterceptor,
    context_from_traceparent,
    current_trace,
    setup_tracing,
    tracing,
    tracing_installed,
)

__all__ = [
    "ANY_TENANT",
    "AUDIENCE",
    "CONFIG_ERROR_EXIT_STATUS",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_GRPC_PORTS",
    "DEFAULT_METRICS_PORTS",
    "DEFAULT_REDIS_URL",
    "DEPENDENCY_UP",
    "DEV_HS256_SECRET",
    "ENV_VARS",
    "ERROR_DOMAIN",
    "INSECURE_DEV_ENV",
    "ISSUER",
    "LIVENESS_SERVICE",
    "MAX_MESSAGE_BYTES",
    "PUBLIC_METHOD_PREFIXES",
    "REQUEST_ID_HEADER",
    "SERVER_OPTIONS",
    "TENANT_HEADER",
    "TENANT_ID_RE",
    "AddServicerFn",
    "AuthInterceptor",
    "Background",
    "BackgroundFactory",
    "BackgroundTaskFailed",
    "BuildService",
    "ConfigError",
    "Dependency",
    "DependencyMonitor",
    "EnvVar",
    "ErrorInterceptor",
    "GrpcKitError",
    "GrpcService",
    "JsonFormatter",
    "NoOrphanClientSpans",
    "ObservabilityInterceptor",
    "OidcConfig",
    "Principal",
    "RequestIdInterceptor",
    "ServiceConfig",
    "ServiceParts",
    "ServiceRegistration",
    "TokenVerifier",
    "TracingInterceptor",
    "configure_logging",
    "context_from_traceparent",
    "current_principal",
    "current_request_id",
    "current_trace",
    "enum_label",
    "enum_labels",
    "enum_number",
    "enum_prefix",
    "env_choice",
    "env_int",
    "env_number",
    "env_var_table",
    "error_details",
    "exit_on_config_error",
    "generate_ed25519_keypair",
    "insecure_dev_from_env",
    "is_loopback",
    "method_scopes",
    "mint_dev_token",
    "mint_token_ed25519",
    "optional_datetime",
    "refuse_exposed_dev_defaults",
    "run_service",
    "server_interceptors",
    "service_main",
    "service_of",
    "setup_tracing",
    "status_code_of",
    "to_rpc_status",
    "tracing",
    "tracing_installed",
]
