"""``/throttles`` and ``/sources/{id}/throttle``: token buckets, operator throttle overrides,
circuit breakers and blackout windows of upstream hosts (RateLimitService)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from orchestrator_gateway._bodies import BucketConfigIn, ThrottleIn
from orchestrator_gateway._models import ApiModel, model_for
from orchestrator_gateway._routes._deps import QuotaAdmin, Tags, Text64, new_router
from orchestrator_gateway._routes._factory import Call, Filter, Rpc, any_of, render
from orchestrator_gateway._routes._resource import Resource
from stella.orchestrator.v1 import common_pb2, ratelimit_pb2, resources_pb2

router = new_router()
Bucket = model_for(ratelimit_pb2.Bucket.DESCRIPTOR)
Throttle = model_for(resources_pb2.Throttle.DESCRIPTOR)
_TAGS: Tags = ["throttles"]


def _limits(noun: str) -> Resource:
    path = f"/throttles/{noun}s"
    return Resource(router, noun, path=path, service="ratelimit", tags=_TAGS, writer=QuotaAdmin)


buckets = _limits("bucket")
# The throttle of a source is the override of its rate-limit key {tenant, host}.
source_throttle = Resource(
    router, "source", service="ratelimit", tags=["sources", *_TAGS], writer=QuotaAdmin
)


class ThrottleResult(ApiModel):
    """The override record and the bucket after it."""

    throttle: Throttle | None  # type: ignore[valid-type]
    bucket: Bucket | None  # type: ignore[valid-type]


def _key(call: Call, host: str) -> ratelimit_pb2.BucketKey:
    # The tenant is always the caller's: a key never names another tenant's bucket.
    return ratelimit_pb2.BucketKey(tenant=call.who.principal.tenant, host=host)


async def _source_key(call: Call) -> ratelimit_pb2.BucketKey:
    source = await call(Rpc("scheduler", "GetSource"))
    return _key(call, str(source.source.host))


@source_throttle.handler(
    "POST", f"{source_throttle.item}/throttle", model=ThrottleResult, body=ThrottleIn
)
async def throttle_source(call: Call) -> dict[str, Any]:
    """Pin the refill rate of the source's rate-limit key {tenant, host} for a while
    (scope orch:quota; reason required). 0 pauses the key."""
    body: ThrottleIn = call.body
    rpc = source_throttle.rpc("Set", "throttle_override")
    request = rpc.request(
        key=await _source_key(call),
        refill_per_second=body.refill_per_second,
        operator=call.operator,
        **call.fields,
    )
    request.until.FromDatetime(datetime.now(UTC) + timedelta(seconds=body.duration_s))
    return render(await call.send(rpc, request), ThrottleResult)


@source_throttle.handler("DELETE", f"{source_throttle.item}/throttle", model=Bucket)
async def unthrottle_source(call: Call) -> dict[str, Any]:
    """Remove the operator override of the source's key (scope orch:quota; reason required)."""
    rpc = source_throttle.rpc("Clear", "throttle_override")
    request = rpc.request(key=await _source_key(call), operator=call.operator)
    return render(await call.send(rpc, request), "bucket")


buckets.list("The tenant's token buckets (tokens, configured and effective rate, pause, circuit).")


@buckets.handler("PUT", f"{buckets.path}/{{host}}", model=Bucket, body=BucketConfigIn)
async def configure_bucket(call: Call) -> dict[str, Any]:
    """Set capacity and refill rate of the bucket of one upstream host (scope orch:quota)."""
    rpc = buckets.rpc("Configure")
    request = rpc.request(
        key=_key(call, call.fields["host"]), **call.body.model_dump(), operator=call.operator
    )
    return render(await call.send(rpc, request), "bucket")


_limits("circuit").list(
    "The tenant's circuit breakers.",
    any_of("state", common_pb2.CircuitState.DESCRIPTOR, max_length=4),
)
_limits("blackout").list("The tenant's blackout windows.", Filter("source_id", Text64))
