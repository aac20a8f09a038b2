"""Reading a tenant's configuration over gRPC, and applying a kit's configuration to it.

Everything goes through the services' public gRPC APIs with the caller's bearer token, so
the scopes, validation and audit entries are the same as for any other operator change:
sources, schedules, quotas and webhooks through the scheduler, buckets and blackouts through
the ratelimit service. :func:`plan` compares a kit with what the tenant has, record by
natural key (:func:`stella_orchestrator._kit.record_key`); :func:`apply` carries out the plan.
Records the tenant has and the kit lacks are reported and left alone: an import adds and
updates, it never deletes. Applying the same kit twice changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from stella.orchestrator.v1 import (
    common_pb2,
    ratelimit_pb2,
    ratelimit_pb2_grpc,
    resources_pb2,
    scheduler_pb2,
    scheduler_pb2_grpc,
    webhooks_pb2,
    webhooks_pb2_grpc,
)
from stella_orchestrator._kit import FIELDS, KINDS, changed_fields, record_key, sorted_records

PAGE_SIZE: Final = 500
KIT_REASON: Final = "stella orchestrator kit import"
SOURCE_MASKABLE: Final = (
    "name",
    "source_type",
    "host",
    "base_url",
    "enabled",
    "job_types",
    "labels",
    "max_active",
)


@dataclass(frozen=True)
class Record:
    """A record as a kit holds it, and the id it has in the tenant's database."""

    doc: dict[str, Any]
    id: str


@dataclass
class Change:
    """One planned change: ``action`` is create, update or extra (left alone)."""

    kind: str
    action: str
    key: str
    fields: list[str] = field(default_factory=list)
    want: dict[str, Any] | None = None
    have: Record | None = None


class Services:
    """gRPC stubs of the scheduler, webhook and ratelimit services with a bearer token."""

    def __init__(self, scheduler: grpc.aio.Channel, ratelimit: grpc.aio.Channel, token: str):
        self.scheduler = scheduler_pb2_grpc.SchedulerServiceStub(scheduler)
        self.webhooks = webhooks_pb2_grpc.WebhookServiceStub(scheduler)
        self.ratelimit = ratelimit_pb2_grpc.RateLimitServiceStub(ratelimit)
        self.metadata = (("authorization", f"Bearer {token}"),)

    async def call(self, method: Callable[..., Awaitable[Any]], request: Message) -> Any:
        return await method(request, metadata=self.metadata)

    async def pages(self, method: Callable[..., Any], request: Any, items: str) -> list[Any]:
        """Every item of a paged list call."""
        out: list[Any] = []
        request.page_size = PAGE_SIZE
        while True:
            response = await self.call(method, request)
            out.extend(getattr(response, items))
            if not response.next_page_token:
                return out
            request.page_token = response.next_page_token


def _dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _pick(kind: str, values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: values.get(key) for key in FIELDS[kind]}


async def read_config(svc: Services) -> dict[str, list[Record]]:
    """The tenant's configuration as kit records (each with its id in this database)."""
    sources = await svc.pages(
        svc.scheduler.ListSources, scheduler_pb2.ListSourcesRequest(), "sources"
    )
    names = {s.id: s.name for s in sources}
    out: dict[str, list[Record]] = {kind: [] for kind in KINDS}
    for s in sources:
        out["sources"].append(Record(_pick("sources", _dict(s)), s.id))
    for q in await svc.pages(svc.scheduler.ListQuotas, scheduler_pb2.ListQuotasRequest(), "quotas"):
        out["quotas"].append(Record(_pick("quotas", _dict(q)), q.id))
    for sc in await svc.pages(
        svc.scheduler.ListSchedules, scheduler_pb2.ListSchedulesRequest(), "schedules"
    ):
        values = _dict(sc) | {"source": names.get(sc.source_id)}
        out["schedules"].append(Record(_pick("schedules", values), sc.id))
    for w in await svc.pages(
        svc.webhooks.ListWebhooks, webhooks_pb2.ListWebhooksRequest(), "webhooks"
    ):
        values = _dict(w) | {"source": names.get(w.source_id)}
        out["webhooks"].append(Record(_pick("webhooks", values), w.id))
    for b in await svc.pages(
        svc.ratelimit.ListBuckets, ratelimit_pb2.ListBucketsRequest(), "buckets"
    ):
        values = _dict(b) | {"host": b.key.host}
        out["buckets"].append(Record(_pick("buckets", values), b.key.host))
    for bo in await svc.pages(
        svc.ratelimit.ListBlackouts, ratelimit_pb2.ListBlackoutsRequest(), "blackouts"
    ):
        values = _dict(bo) | {"source": names.get(bo.source_id)}
        out["blackouts"].append(Record(_pick("blackouts", values), bo.id))
    return out


def documents(config: Mapping[str, list[Record]]) -> dict[str, list[dict[str, Any]]]:
    """The kit records of a configuration, sorted."""
    return {kind: sorted_records(kind, [r.doc for r in config[kind]]) for kind in KINDS}


def plan(
    want: Mapping[str, list[dict[str, Any]]], have: Mapping[str, list[Record]]
) -> list[Change]:
    """What applying ``want`` to ``have`` would change, kind by kind in apply order."""
    changes: list[Change] = []
    for kind in KINDS:
        existing = {record_key(kind, r.doc): r for r in have.get(kind, [])}
        wanted = {record_key(kind, doc): doc for doc in want.get(kind, [])}
        for key in sorted(wanted):
            doc, current = wanted[key], existing.get(key)
            if current is None:
                changes.append(Change(kind, "create", key, list(doc), doc))
            elif fields := changed_fields(doc, current.doc):
                changes.append(Change(kind, "update", key, fields, doc, current))
        for key in sorted(set(existing) - set(wanted)):
            changes.append(Change(kind, "extra", key, have=existing[key]))
    return changes


def _operator(reason: str = "", ticket: str = "") -> common_pb2.OperatorContext:
    return common_pb2.OperatorContext(reason=reason or KIT_REASON, ticket=ticket)


def _parse(kind_message: type[Message], values: Mapping[str, Any]) -> Any:
    message = kind_message()
    json_format.ParseDict({k: v for k, v in values.items() if v is not None}, message)
    return message


async def apply(svc: Services, changes: list[Change], out: Callable[[str], None]) -> int:
    """Carries out the create and update changes; returns how many it made. New webhook
    secrets are reported through ``out`` (they are shown once, as on creation)."""
    config = await read_config(svc)
    source_ids = {r.doc["name"]: r.id for r in config["sources"]}
    done = 0
    for change in changes:
        if change.action == "extra" or change.want is None:
            continue
        if change.kind == "sources":
            created = await _apply_source(svc, change)
            if created:
                source_ids[change.key] = created
        else:
            await _APPLY[change.kind](svc, change, source_ids, out)
        done += 1
    return done


def _source_id(names: Mapping[str, str], name: str | None) -> str:
    if name is None:
        return ""
    if name not in names:
        raise LookupError(f"source {name!r} is neither in the kit nor in the tenant")
    return names[name]


def _by_source_id(doc: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """The record with its source name replaced by the source's id in this database."""
    values = {k: v for k, v in doc.items() if k != "source"}
    values["source_id"] = _source_id(names, doc["source"])
    return values


async def _apply_source(svc: Services, change: Change) -> str:
    doc = dict(change.want or {})
    operator = _operator(doc["paused_reason"], doc["paused_ticket"]) if doc["paused"] else None
    values = {k: doc[k] for k in (*SOURCE_MASKABLE, "paused")}
    source = _parse(resources_pb2.Source, values)
    if change.action == "create":
        request = scheduler_pb2.CreateSourceRequest(source=source, operator=operator or _operator())
        response = await svc.call(svc.scheduler.CreateSource, request)
        return str(response.source.id)
    assert change.have is not None
    source.id = change.have.id
    mask = [f for f in change.fields if f in SOURCE_MASKABLE]
    if {"paused", "paused_reason", "paused_ticket"} & set(change.fields):
        mask.append("paused")
    update = scheduler_pb2.UpdateSourceRequest(source=source, operator=operator or _operator())
    update.update_mask.paths.extend(mask)
    await svc.call(svc.scheduler.UpdateSource, update)
    return ""


async def _apply_schedule(
    svc: Services, change: Change, names: Mapping[str, str], out: Callable[[str], None]
) -> None:
    doc = dict(change.want or {})
    values = _by_source_id(doc, names)
    schedule = _parse(resources_pb2.Schedule, values)
    if change.action == "create":
        await svc.call(
            svc.scheduler.CreateSchedule,
            scheduler_pb2.CreateScheduleRequest(schedule=schedule, operator=_operator()),
        )
        return
    assert change.have is not None
    schedule.id = change.have.id
    request = scheduler_pb2.UpdateScheduleRequest(schedule=schedule, operator=_operator())
    request.update_mask.paths.extend("source_id" if f == "source" else f for f in change.fields)
    await svc.call(svc.scheduler.UpdateSchedule, request)


async def _apply_quota(
    svc: Services, change: Change, names: Mapping[str, str], out: Callable[[str], None]
) -> None:
    doc = dict(change.want or {})
    operator = _operator(doc["reason"], doc["ticket"])
    quota = _parse(
        resources_pb2.Quota, {k: v for k, v in doc.items() if k not in ("reason", "ticket")}
    )
    if change.action == "create":
        request = scheduler_pb2.CreateQuotaRequest(quota=quota, operator=operator)
        await svc.call(svc.scheduler.CreateQuota, request)
        return
    assert change.have is not None
    quota.id = change.have.id
    # reason and ticket record the change itself: a change of them alone re-sets `paused`
    mask = [f for f in change.fields if f not in ("reason", "ticket")] or ["paused"]
    update = scheduler_pb2.UpdateQuotaRequest(quota=quota, operator=operator)
    update.update_mask.paths.extend(mask)
    await svc.call(svc.scheduler.UpdateQuota, update)


async def _apply_bucket(
    svc: Services, change: Change, names: Mapping[str, str], out: Callable[[str], None]
) -> None:
    doc = dict(change.want or {})
    request = ratelimit_pb2.ConfigureBucketRequest(
        key=ratelimit_pb2.BucketKey(host=doc["host"]),
        capacity=int(doc["capacity"]),
        refill_per_second=float(doc["refill_per_second"]),
        operator=_operator(),
    )
    await svc.call(svc.ratelimit.ConfigureBucket, request)


async def _apply_blackout(
    svc: Services, change: Change, names: Mapping[str, str], out: Callable[[str], None]
) -> None:
    # a blackout's key is its whole record: it is created, never updated
    doc = dict(change.want or {})
    values = _by_source_id(doc, names)
    blackout = _parse(ratelimit_pb2.Blackout, values)
    request = ratelimit_pb2.SetBlackoutRequest(
        blackout=blackout, operator=_operator(doc["reason"], doc["ticket"])
    )
    await svc.call(svc.ratelimit.SetBlackout, request)


async def _apply_webhook(
    svc: Services, change: Change, names: Mapping[str, str], out: Callable[[str], None]
) -> None:
    doc = dict(change.want or {})
    source_id = _source_id(names, doc["source"])
    if change.action == "create":
        created = await svc.call(
            svc.webhooks.CreateWebhook,
            webhooks_pb2.CreateWebhookRequest(
                url=doc["url"],
                event_types=doc["event_types"],
                source_id=source_id,
                job_type=doc["job_type"],
                description=doc["description"],
                operator=_operator(),
            ),
        )
        out(f"webhook {doc['url']}: new signing secret (shown once): {created.secret}")
        if doc["enabled"]:
            return
        webhook_id, fields = created.webhook.id, ["enabled"]
    else:
        assert change.have is not None
        webhook_id, fields = change.have.id, change.fields
    request = webhooks_pb2.UpdateWebhookRequest(webhook_id=webhook_id, operator=_operator())
    for name in fields:
        if name == "source":
            request.source_id = source_id
        elif name == "event_types":
            request.event_types.extend(doc["event_types"])
        else:
            setattr(request, name, doc[name])
    await svc.call(svc.webhooks.UpdateWebhook, request)


_APPLY: Final = {
    "schedules": _apply_schedule,
    "quotas": _apply_quota,
    "buckets": _apply_bucket,
    "blackouts": _apply_blackout,
    "webhooks": _apply_webhook,
}
