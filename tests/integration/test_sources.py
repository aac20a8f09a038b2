"""The source registry over gRPC: CRUD round trip, uniqueness, paging, masked updates,
deletion rules and the source.* events every change writes."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf import field_mask_pb2

from orchestrator_grpckit import error_details
from stella.orchestrator.v1 import common_pb2, resources_pb2, scheduler_pb2

pytestmark = pytest.mark.integration


def _marker() -> str:
    return f"s{uuid.uuid4().hex[:16]}"


def _source(name: str, source_type: str = "nvd", **kwargs) -> resources_pb2.Source:
    fields = {
        "host": "services.nvd.nist.gov",
        "base_url": "https://services.nvd.nist.gov/rest/json/cves/2.0",
        "enabled": True,
        **kwargs,
    }
    return resources_pb2.Source(name=name, source_type=source_type, **fields)


async def _create(scheduler, source: resources_pb2.Source) -> resources_pb2.Source:
    reply = await scheduler.CreateSource(scheduler_pb2.CreateSourceRequest(source=source))
    return reply.source


async def _get(scheduler, source_id: str) -> resources_pb2.Source:
    return (await scheduler.GetSource(scheduler_pb2.GetSourceRequest(source_id=source_id))).source


async def _update(
    scheduler,
    source: resources_pb2.Source,
    *paths: str,
    operator: common_pb2.OperatorContext | None = None,
) -> resources_pb2.Source:
    reply = await scheduler.UpdateSource(
        scheduler_pb2.UpdateSourceRequest(
            source=source,
            update_mask=field_mask_pb2.FieldMask(paths=list(paths)),
            operator=operator,
        )
    )
    return reply.source


async def _refused(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


def _source_events(db, source_id: str) -> list[tuple]:
    return db.execute(
        "SELECT type, actor_subject, actor_scopes, (data->>'version')::int, tenant"
        " FROM orchestrator.events WHERE source_id = %s AND job_id IS NULL AND run_id IS NULL"
        " ORDER BY seq",
        (source_id,),
    ).fetchall()


async def test_create_get_list_update_delete_round_trip(scheduler, db):
    m = _marker()
    kind = f"t{m}"
    sent = _source(
        m,
        kind,
        job_types=["advisory.ingest", "vex.ingest"],
        labels={"team": "sec"},
        # server-assigned fields are ignored on create
        id=str(uuid.uuid4()),
        tenant="globex",
        version=42,
    )
    created = await _create(scheduler, sent)
    assert created.id
    assert created.id != sent.id
    uuid.UUID(created.id)
    assert created.tenant == "acme"
    assert created.version == 1
    assert (created.name, created.source_type, created.host, created.base_url) == (
        m,
        kind,
        sent.host,
        sent.base_url,
    )
    assert created.enabled
    assert not created.paused
    assert list(created.job_types) == ["advisory.ingest", "vex.ingest"]
    assert dict(created.labels) == {"team": "sec"}
    assert created.HasField("created_at")
    assert created.updated_at == created.created_at

    assert await _get(scheduler, created.id) == created
    listed = await scheduler.ListSources(scheduler_pb2.ListSourcesRequest(source_type=kind))
    assert list(listed.sources) == [created]
    assert listed.next_page_token == ""

    updated = await _update(
        scheduler, resources_pb2.Source(id=created.id, enabled=False), "enabled"
    )
    assert not updated.enabled
    assert updated.version == 2
    assert await _get(scheduler, created.id) == updated
    enabled_only = await scheduler.ListSources(
        scheduler_pb2.ListSourcesRequest(source_type=kind, enabled=True)
    )
    assert list(enabled_only.sources) == []
    disabled_only = await scheduler.ListSources(
        scheduler_pb2.ListSourcesRequest(source_type=kind, enabled=False)
    )
    assert [s.id for s in disabled_only.sources] == [created.id]

    await scheduler.DeleteSource(scheduler_pb2.DeleteSourceRequest(source_id=created.id))
    err = await _refused(scheduler.GetSource(scheduler_pb2.GetSourceRequest(source_id=created.id)))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    info = error_details(err)["ResourceInfo"]
    assert (info.resource_type, info.resource_name) == ("source", created.id)
    listed = await scheduler.ListSources(scheduler_pb2.ListSourcesRequest(source_type=kind))
    assert list(listed.sources) == []
    for call in (
        scheduler.DeleteSource(scheduler_pb2.DeleteSourceRequest(source_id=created.id)),
        scheduler.UpdateSource(
            scheduler_pb2.UpdateSourceRequest(
                source=resources_pb2.Source(id=created.id, enabled=True),
                update_mask=field_mask_pb2.FieldMask(paths=["enabled"]),
            )
        ),
    ):
        err = await _refused(call)
        assert err.code() == grpc.StatusCode.NOT_FOUND
    # a deleted source can no longer be named by new work
    err = await _refused(
        scheduler.SubmitJob(
            scheduler_pb2.SubmitJobRequest(
                job=resources_pb2.JobSpec(job_type="advisory.ingest", source_id=created.id)
            )
        )
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert error_details(err)["ResourceInfo"].resource_name == created.id


async def test_duplicate_name_is_already_exists(scheduler, stranger, db):
    m = _marker()
    first = await _create(scheduler, _source(m))
    err = await _refused(
        scheduler.CreateSource(
            scheduler_pb2.CreateSourceRequest(source=_source(m, "osv", host="api.osv.dev"))
        )
    )
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS, err.details()
    info = error_details(err)["ErrorInfo"]
    assert info.reason == "SOURCE_NAME_TAKEN"
    assert info.metadata["name"] == m
    (count,) = db.execute(
        "SELECT count(*) FROM orchestrator.sources WHERE tenant = 'acme' AND name = %s", (m,)
    ).fetchone()
    assert count == 1
    # renaming another source onto the name is refused too, and changes nothing
    other = await _create(scheduler, _source(f"{m}-other"))
    err = await _refused(
        scheduler.UpdateSource(
            scheduler_pb2.UpdateSourceRequest(
                source=resources_pb2.Source(id=other.id, name=m),
                update_mask=field_mask_pb2.FieldMask(paths=["name"]),
            )
        )
    )
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS, err.details()
    assert await _get(scheduler, other.id) == other
    # names are unique per tenant only
    theirs = await _create(stranger, _source(m))
    assert theirs.tenant == "globex"
    assert theirs.id != first.id
    # and a deleted source's name is free again
    await scheduler.DeleteSource(scheduler_pb2.DeleteSourceRequest(source_id=first.id))
    again = await _create(scheduler, _source(m))
    assert again.id != first.id
    assert again.version == 1


async def test_list_pages_in_stable_id_order(scheduler, stranger):
    m = _marker()
    kind = f"t{m}"
    ids = [(await _create(scheduler, _source(f"{m}-{i}", kind))).id for i in range(7)]
    # noise: other types in acme and the same type in another tenant
    await _create(scheduler, _source(f"{m}-noise", f"{kind}x"))
    await _create(stranger, _source(f"{m}-theirs", kind))
    pages: list[list[str]] = []
    token = ""
    for _ in range(5):
        reply = await scheduler.ListSources(
            scheduler_pb2.ListSourcesRequest(source_type=kind, page_size=3, page_token=token)
        )
        pages.append([s.id for s in reply.sources])
        assert all(s.source_type == kind and s.tenant == "acme" for s in reply.sources)
        token = reply.next_page_token
        if not token:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    flat = [i for p in pages for i in p]
    assert flat == sorted(flat) == sorted(ids)
    assert len(set(flat)) == 7
    # the same listing in one page agrees, and its token is empty
    whole = await scheduler.ListSources(
        scheduler_pb2.ListSourcesRequest(source_type=kind, page_size=7)
    )
    assert [s.id for s in whole.sources] == flat
    assert whole.next_page_token == ""
    # paging is stable while rows are added: a new source shows up at the end
    first = await scheduler.ListSources(
        scheduler_pb2.ListSourcesRequest(source_type=kind, page_size=3)
    )
    late = (await _create(scheduler, _source(f"{m}-late", kind))).id
    rest = await scheduler.ListSources(
        scheduler_pb2.ListSourcesRequest(
            source_type=kind, page_size=10, page_token=first.next_page_token
        )
    )
    assert [s.id for s in first.sources] + [s.id for s in rest.sources] == [*flat, late]


async def test_update_mask_changes_only_named_fields_and_bumps_version(scheduler):
    m = _marker()
    created = await _create(
        scheduler, _source(m, job_types=["advisory.ingest"], labels={"team": "sec"})
    )
    # every field differs, but only 'enabled' and 'labels' are named
    change = resources_pb2.Source(
        id=created.id,
        name=f"{m}-renamed",
        source_type="osv",
        host="api.osv.dev",
        base_url="https://api.osv.dev/v1",
        enabled=False,
        paused=True,
        paused_reason="x",
        job_types=["vex.ingest"],
        labels={"team": "platform", "tier": "1"},
    )
    updated = await _update(scheduler, change, "enabled", "labels")
    assert updated.version == created.version + 1
    assert not updated.enabled
    assert dict(updated.labels) == {"team": "platform", "tier": "1"}
    for unchanged in (
        "id",
        "tenant",
        "name",
        "source_type",
        "host",
        "base_url",
        "paused",
        "paused_reason",
        "job_types",
        "created_at",
    ):
        assert getattr(updated, unchanged) == getattr(created, unchanged), unchanged
    assert updated.updated_at.ToDatetime() >= created.updated_at.ToDatetime()

    second = await _update(scheduler, change, "host", "base_url", "job_types")
    assert second.version == created.version + 2
    assert (second.host, second.base_url, list(second.job_types)) == (
        "api.osv.dev",
        "https://api.osv.dev/v1",
        ["vex.ingest"],
    )
    assert (second.name, second.source_type, second.enabled) == (m, "nvd", False)
    assert await _get(scheduler, created.id) == second

    # the named fields are validated; nothing changes when they are bad
    err = await _refused(
        scheduler.UpdateSource(
            scheduler_pb2.UpdateSourceRequest(
                source=resources_pb2.Source(id=created.id, host="Not A Host!"),
                update_mask=field_mask_pb2.FieldMask(paths=["host"]),
            )
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for v in error_details(err)["BadRequest"].field_violations}
    assert fields == {"source.host"}
    assert await _get(scheduler, created.id) == second


async def test_update_with_stale_version_is_aborted(scheduler):
    """Source.version: 'On update, a non-zero value must equal the stored version or the call
    fails with ABORTED.'"""
    m = _marker()
    created = await _create(scheduler, _source(m))
    current = await _update(
        scheduler,
        resources_pb2.Source(id=created.id, enabled=False, version=created.version),
        "enabled",
    )
    assert current.version == 2
    err = await _refused(
        scheduler.UpdateSource(
            scheduler_pb2.UpdateSourceRequest(
                source=resources_pb2.Source(id=created.id, enabled=True, version=created.version),
                update_mask=field_mask_pb2.FieldMask(paths=["enabled"]),
            )
        )
    )
    assert err.code() == grpc.StatusCode.ABORTED, err.details()
    assert await _get(scheduler, created.id) == current


async def test_delete_with_open_jobs_is_failed_precondition(scheduler, db):
    m = _marker()
    source = await _create(scheduler, _source(m))
    job = (
        await scheduler.SubmitJob(
            scheduler_pb2.SubmitJobRequest(
                job=resources_pb2.JobSpec(job_type=f"{m}.ingest", source_id=source.id)
            )
        )
    ).job
    assert job.source_id == source.id
    err = await _refused(
        scheduler.DeleteSource(scheduler_pb2.DeleteSourceRequest(source_id=source.id))
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
    details = error_details(err)
    assert details["ErrorInfo"].reason == "SOURCE_HAS_OPEN_JOBS"
    (violation,) = details["PreconditionFailure"].violations
    assert (violation.type, violation.subject) == ("SOURCE_OPEN_JOBS", f"sources/{source.id}")
    assert "1 open jobs" in violation.description
    assert await _get(scheduler, source.id) == source
    assert [t for t, *_ in _source_events(db, source.id)] == ["source.created"]
    # once its jobs are terminal the source can go
    await scheduler.CancelJob(scheduler_pb2.CancelJobRequest(job_id=job.id))
    await scheduler.DeleteSource(scheduler_pb2.DeleteSourceRequest(source_id=source.id))
    err = await _refused(scheduler.GetSource(scheduler_pb2.GetSourceRequest(source_id=source.id)))
    assert err.code() == grpc.StatusCode.NOT_FOUND


async def test_every_change_writes_a_source_event_with_the_actor(scheduler, db):
    m = _marker()
    created = await _create(scheduler, _source(m))
    await _update(scheduler, resources_pb2.Source(id=created.id, enabled=False), "enabled")
    await _update(scheduler, resources_pb2.Source(id=created.id, labels={"a": "b"}), "labels")
    await scheduler.DeleteSource(scheduler_pb2.DeleteSourceRequest(source_id=created.id))
    events = _source_events(db, created.id)
    assert [(t, v) for t, _a, _s, v, _t in events] == [
        ("source.created", 1),
        ("source.updated", 2),
        ("source.updated", 3),
        ("source.deleted", 4),
    ]
    for _type, actor, scopes, _version, tenant in events:
        assert actor == "tester"
        assert tenant == "acme"
        assert "orch:operate" in scopes
    # a refused change writes no event
    await _refused(
        scheduler.UpdateSource(
            scheduler_pb2.UpdateSourceRequest(
                source=resources_pb2.Source(id=created.id, enabled=True),
                update_mask=field_mask_pb2.FieldMask(paths=["enabled"]),
            )
        )
    )
    assert len(_source_events(db, created.id)) == 4


async def test_pausing_requires_an_operator_reason(scheduler, db):
    """UpdateSourceRequest.operator: 'Justification recorded in the audit trail (required when
    pausing or resuming).'"""
    m = _marker()
    created = await _create(scheduler, _source(m))
    err = await _refused(
        scheduler.UpdateSource(
            scheduler_pb2.UpdateSourceRequest(
                source=resources_pb2.Source(id=created.id, paused=True),
                update_mask=field_mask_pb2.FieldMask(paths=["paused"]),
            )
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert await _get(scheduler, created.id) == created
    paused = await _update(
        scheduler,
        resources_pb2.Source(id=created.id, paused=True, paused_reason="upstream 5xx"),
        "paused",
        "paused_reason",
        operator=common_pb2.OperatorContext(reason="upstream 5xx", ticket="OPS-7"),
    )
    assert paused.paused
    assert paused.paused_reason == "upstream 5xx"


async def test_disabled_source_accepts_no_new_jobs(scheduler, db):
    """Source.enabled: 'Disabled sources accept no new jobs.'"""
    m = _marker()
    source = await _create(scheduler, _source(m, enabled=False))
    assert not source.enabled
    err = await _refused(
        scheduler.SubmitJob(
            scheduler_pb2.SubmitJobRequest(
                job=resources_pb2.JobSpec(job_type=f"{m}.ingest", source_id=source.id)
            )
        )
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
    (count,) = db.execute(
        "SELECT count(*) FROM orchestrator.jobs WHERE source_id = %s", (source.id,)
    ).fetchone()
    assert count == 0


async def test_source_max_active_is_set_cleared_and_validated(scheduler, db):
    created = await _create(scheduler, _source(_marker()))
    assert created.max_active == 0  # no cap by default
    capped = await _update(
        scheduler, resources_pb2.Source(id=created.id, max_active=4), "max_active"
    )
    assert capped.max_active == 4
    (stored,) = db.execute(
        "SELECT max_active FROM orchestrator.sources WHERE id = %s", (created.id,)
    ).fetchone()
    assert stored == 4
    err = await _refused(
        scheduler.UpdateSource(
            scheduler_pb2.UpdateSourceRequest(
                source=resources_pb2.Source(id=created.id, max_active=-1),
                update_mask=field_mask_pb2.FieldMask(paths=["max_active"]),
            )
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in error_details(err)["BadRequest"].field_violations} == {
        "source.max_active"
    }
    cleared = await _update(
        scheduler, resources_pb2.Source(id=created.id, max_active=0), "max_active"
    )
    assert cleared.max_active == 0
    (stored,) = db.execute(
        "SELECT max_active FROM orchestrator.sources WHERE id = %s", (created.id,)
    ).fetchone()
    assert stored is None
