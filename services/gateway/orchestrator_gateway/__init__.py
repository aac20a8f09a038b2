"""orchestrator_gateway: REST/JSON, SSE and WebSocket over the orchestrator's gRPC services,
plus the Console.

Design note
-----------
The gateway is the top layer: it reaches the services only through their gRPC stubs
(scheduler, which also serves EventStreamService; ratelimit; audit), forwarding the caller's
bearer token, so every rule (tenancy, scopes, states) stays in the services; the gateway
checks the token too, to answer 401/403 early and to key rate limits and idempotency by
caller. REST resources are the protobuf messages rendered as JSON
(``_models``: one schema source, the .proto files). Errors are RFC 9457 problem+json
(``_problems``: one gRPC → HTTP table, ``google.rpc`` details carried over). Live feeds
(``_routes.streams``) relay EventStreamService with bounded per-client buffers. The Console is a
static single-page app built from ``console/`` (Preact + esbuild), served at ``/``.
What replicas share goes through the adapters' public API, never a driver: ``Idempotency-Key``
records in PostgreSQL (``_idempotency``, over ``orchestrator_pg.IdempotencyStore``) and
per-caller rate limits in Redis (``_ratelimit``, over ``orchestrator_redis.BucketStore``), so
any replica serves any request.
"""

from orchestrator_gateway._app import API_VERSION, OPENAPI_PATH, create_app
from orchestrator_gateway._routes import API_PREFIX
from orchestrator_gateway._settings import GatewaySettings

__all__ = ["API_PREFIX", "API_VERSION", "OPENAPI_PATH", "GatewaySettings", "create_app"]
