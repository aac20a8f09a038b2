"""Lease spans (orchestrator_leases._tracing): children of the job's trace_parent, ended by
the lease's end, with a completion span; nothing for jobs without a trace. An SDK tracer
provider of the test's own (not the global one) records them in memory."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from orchestrator_leases._tracing import LeaseSpans
from orchestrator_pg import Outcome
from tests.unit.leases._rows import lease_row

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


@pytest.fixture
def recorded() -> Iterator[tuple[LeaseSpans, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield LeaseSpans("w-1", "s-1", tracer=provider.get_tracer("test")), exporter
    provider.shutdown()


def _outcome(row: dict, ok: bool = True, reason: str = "", state: str = "succeeded") -> Outcome:
    return Outcome(row["id"], row["lease_id"], ok, error_reason=reason, new_state=state)


def test_a_completed_lease_is_a_child_of_the_job_trace_with_its_completion(recorded) -> None:
    spans, exporter = recorded
    traced, untraced = lease_row(trace_parent=PARENT, attempt=2), lease_row()
    spans.leased([traced, untraced])
    assert exporter.get_finished_spans() == ()
    spans.reported(str(traced["id"]))
    spans.settled(_outcome(traced), failed=False)
    spans.settled(_outcome(untraced), failed=False)  # no span: no trace to join
    lease, complete = sorted(exporter.get_finished_spans(), key=lambda s: s.name)[::-1]
    assert (lease.name, complete.name) == ("stella.lease", "stella.job.complete")
    assert f"{lease.context.trace_id:032x}" == TRACE_ID
    assert f"{lease.parent.span_id:016x}" == "b7ad6b7169203331"
    assert lease.parent.is_remote
    assert complete.parent.span_id == lease.context.span_id
    assert dict(lease.attributes) == {
        "stella.job.id": str(traced["id"]),
        "stella.job.type": "feed.fetch",
        "stella.job.attempt": 2,
        "stella.tenant": "acme",
        "stella.lease.id": str(traced["lease_id"]),
        "stella.worker.id": "w-1",
        "stella.session.id": "s-1",
        "stella.lease.end": "completed",
    }
    assert complete.attributes["stella.job.outcome"] == "succeeded"
    assert complete.start_time <= complete.end_time


def test_a_refused_failure_a_lost_lease_and_a_closed_stream_end_their_spans(recorded) -> None:
    spans, exporter = recorded
    failed, lost, held = (lease_row(trace_parent=PARENT) for _ in range(3))
    spans.leased([failed, lost, held])
    spans.reported("not-a-uuid")  # malformed reports are ignored
    spans.settled(_outcome(failed, ok=False, reason="lease_lost"), failed=True)
    spans.lost(_outcome(lost, ok=False, reason="lease_lost"))
    spans.close()
    spans.close()  # idempotent
    by_job = {}
    for span in exporter.get_finished_spans():
        by_job.setdefault(span.attributes["stella.job.id"], {})[span.name] = span
    assert by_job[str(failed["id"])]["stella.lease"].attributes["stella.lease.end"] == "failed"
    refused = by_job[str(failed["id"])]["stella.job.complete"]
    assert refused.status.status_code is StatusCode.ERROR
    assert refused.attributes["stella.result.error_reason"] == "lease_lost"
    assert by_job[str(lost["id"])]["stella.lease"].attributes["stella.lease.end"] == "lost"
    assert by_job[str(held["id"])]["stella.lease"].attributes["stella.lease.end"] == "released"
    assert len(exporter.get_finished_spans()) == 4


def test_off_without_a_provider() -> None:
    spans = LeaseSpans("w-1", "s-1")
    spans.leased([lease_row(trace_parent=PARENT, id=uuid.uuid4())])
    assert spans._open == {}
