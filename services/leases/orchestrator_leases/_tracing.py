"""Lease and completion spans of one Work stream (docs/tracing.md).

A job carries its submitter's trace as a W3C ``traceparent`` (the scheduler stores it). When
the dispatcher hands the job to this session, a ``stella.lease`` span starts as a child of
that trace; it ends when the lease does: the worker's completion or failure is applied (a
``stella.job.complete`` child span covers the report from its arrival to the applied
write), the lease is lost, or the stream closes and releases it. The worker's handler span
is a sibling under the same parent, started by the SDK from the same ``trace_parent``.

Jobs without a ``trace_parent`` get no spans (a lease must not start a trace of its own:
that would be one root trace per job for every untraced producer), and with tracing off
this class does nothing at all.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from orchestrator_grpckit import context_from_traceparent, tracing_installed
from orchestrator_pg import Outcome, Row

_tracer = trace.get_tracer("orchestrator_leases")


class LeaseSpans:
    """The open ``stella.lease`` spans of one session, by job id.

    Args:
        worker_id: The worker's id (an attribute of every span).
        session_id: The Work stream's id.
        tracer: The tracer (default: the global provider's, when one is installed).
    """

    def __init__(self, worker_id: str, session_id: str, tracer: trace.Tracer | None = None) -> None:
        self._on = tracer is not None or tracing_installed()
        self._tracer = tracer or _tracer
        self._worker_id = worker_id
        self._session_id = session_id
        self._open: dict[uuid.UUID, Any] = {}
        self._reported_ns: dict[uuid.UUID, int] = {}

    def leased(self, rows: Sequence[Row]) -> None:
        """Start a lease span for each delivered row that carries a trace."""
        if not self._on:
            return
        for row in rows:
            if not row["trace_parent"]:
                continue
            self._open[row["id"]] = self._tracer.start_span(
                "stella.lease",
                context=context_from_traceparent(row["trace_parent"], row["trace_state"]),
                kind=SpanKind.INTERNAL,
                attributes={
                    "stella.job.id": str(row["id"]),
                    "stella.job.type": row["job_type"],
                    "stella.job.attempt": row["attempt"],
                    "stella.tenant": row["tenant"],
                    "stella.lease.id": str(row["lease_id"]),
                    "stella.worker.id": self._worker_id,
                    "stella.session.id": self._session_id,
                },
            )

    def reported(self, job_id: str) -> None:
        """A completion or failure of ``job_id`` arrived (the completion span starts)."""
        if not self._on or not self._open:
            return
        try:
            key = uuid.UUID(job_id)
        except ValueError:
            return
        if key in self._open:
            self._reported_ns[key] = time.time_ns()

    def settled(self, outcome: Outcome, *, failed: bool) -> None:
        """The report on ``outcome.job_id`` was applied (or refused): end its spans."""
        span = self._open.pop(outcome.job_id, None)
        started_ns = self._reported_ns.pop(outcome.job_id, None)
        if span is None:
            return
        parent = trace.set_span_in_context(span)
        complete = self._tracer.start_span(
            "stella.job.complete",
            context=parent,
            kind=SpanKind.INTERNAL,
            start_time=started_ns,
            attributes={
                "stella.job.id": str(outcome.job_id),
                "stella.job.outcome": "failed" if failed else "succeeded",
                "stella.job.state": outcome.new_state,
                "stella.result.ok": outcome.ok,
            },
        )
        if not outcome.ok:
            complete.set_attribute("stella.result.error_reason", outcome.error_reason)
            complete.set_status(Status(StatusCode.ERROR, outcome.error_reason))
        complete.end()
        span.set_attribute("stella.lease.end", "failed" if failed else "completed")
        span.end()

    def lost(self, outcome: Outcome) -> None:
        """A heartbeat or progress write found the lease gone."""
        span = self._open.pop(outcome.job_id, None)
        self._reported_ns.pop(outcome.job_id, None)
        if span is not None:
            span.set_attribute("stella.lease.end", "lost")
            span.set_status(Status(StatusCode.ERROR, outcome.error_reason or "lease_lost"))
            span.end()

    def close(self) -> None:
        """The stream closed: the leases still open are released."""
        for span in self._open.values():
            span.set_attribute("stella.lease.end", "released")
            span.end()
        self._open.clear()
        self._reported_ns.clear()
