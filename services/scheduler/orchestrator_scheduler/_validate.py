"""Request validation: protobuf requests → validated ledger inputs.

Every problem is collected as a field violation (path in the request, what is wrong and
what is expected) and raised at once as INVALID_ARGUMENT, before anything is written.
"""

from __future__ import annotations

import hashlib
import re
import sys
import uuid
from collections.abc import Sequence
from dataclasses import replace

from google.protobuf import json_format

from orchestrator_core import (
    InvalidArgument,
    RetryPolicy,
    Violations,
    canonical_json,
    new_id,
)
from orchestrator_core.redaction import live_credentials
from orchestrator_grpckit import Principal, optional_datetime
from orchestrator_pg import NewJob, NewRun, SourceFields, TxContext
from stella.orchestrator.v1 import common_pb2, resources_pb2

MAX_PAYLOAD_BYTES = 256 * 1024
MAX_JOBS_PER_REQUEST = 10_000
MAX_LABELS = 64
MAX_TEXT = 256

JOB_TYPE_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,127}$")
JOB_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")
SOURCE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
SOURCE_TYPE_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")
HOST_RE = re.compile(
    r"^(?=.{1,253}(:\d{1,5})?$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:\d{1,5})?$"
)
LABEL_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_./-]{0,62}$")
SOURCE_MUTABLE_FIELDS = (
    "name",
    "source_type",
    "host",
    "base_url",
    "enabled",
    "paused",
    "paused_reason",
    "job_types",
    "labels",
    "max_active",
)
MAX_SOURCE_ACTIVE = 100_000


def optional_id(value: str, field: str, out: Violations) -> uuid.UUID | None:
    """Parses an optional UUID field ('' = absent)."""
    if not value:
        return None
    return required_id(value, field, out)


def required_id(value: str, field: str, out: Violations) -> uuid.UUID | None:
    if not value:
        out.add(field, "is required")
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        shown = value if len(value) <= 64 else value[:61] + "..."
        out.add(
            field, f"must be a UUID such as 0190a6b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b, got '{shown}'"
        )
        return None


def optional_id_or_raise(value: str, field: str) -> uuid.UUID | None:
    """An optional UUID filter ('' = absent), or INVALID_ARGUMENT naming ``field``."""
    out = Violations()
    parsed = optional_id(value, field, out)
    out.raise_if_any(f"invalid {field}")
    return parsed


def parse_id_or_raise(value: str, field: str) -> uuid.UUID:
    out = Violations()
    parsed = required_id(value, field, out)
    out.raise_if_any(f"invalid {field}")
    assert parsed is not None
    return parsed


def no_credentials(value: object, field: str, out: Violations) -> None:
    """Records a violation for each value that looks like a live credential: inputs are
    stored exactly as given, so a secret must not be given (it travels by reference)."""
    for found in live_credentials(value, field):
        out.add(
            found.field,
            f"looks like a live credential ({found.what}); it would be stored and shown as "
            'given — pass secrets by reference instead, e.g. {"secretRef": "vault://kv/feed#key"}',
        )


def _labels(labels: dict[str, str], field: str, out: Violations) -> dict[str, str]:
    no_credentials(labels, field, out)
    if len(labels) > MAX_LABELS:
        out.add(field, f"at most {MAX_LABELS} labels, got {len(labels)}")
    for key, value in labels.items():
        if not LABEL_KEY_RE.match(key):
            out.add(
                f"{field}[{key}]", "label keys are lowercase [a-z0-9_./-], at most 63 characters"
            )
        if len(value) > MAX_TEXT:
            out.add(f"{field}[{key}]", f"label values are at most {MAX_TEXT} characters")
    return dict(labels)


def _text(value: str, field: str, out: Violations, limit: int = MAX_TEXT) -> str:
    if len(value) > limit:
        out.add(field, f"at most {limit} characters, got {len(value)}")
    return value


def retry_policy(
    msg: common_pb2.RetryPolicy, field: str, out: Violations, has: bool
) -> RetryPolicy:
    default = RetryPolicy()
    if not has:
        return default
    policy = RetryPolicy(
        max_attempts=msg.max_attempts or default.max_attempts,
        initial_backoff_s=(
            msg.initial_backoff.ToTimedelta().total_seconds()
            if msg.HasField("initial_backoff")
            else default.initial_backoff_s
        ),
        max_backoff_s=(
            msg.max_backoff.ToTimedelta().total_seconds()
            if msg.HasField("max_backoff")
            else default.max_backoff_s
        ),
        multiplier=msg.backoff_multiplier or default.multiplier,
    )
    try:
        policy.validate(field)
    except InvalidArgument as exc:
        out.merge(exc)
    return policy


def job_spec(
    spec: resources_pb2.JobSpec,
    field: str,
    out: Violations,
    *,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
) -> NewJob:
    """One JobSpec → NewJob (violations recorded in ``out``)."""
    if not spec.job_type:
        out.add(f"{field}.job_type", "is required (e.g. 'advisory.ingest')")
    elif not JOB_TYPE_RE.match(spec.job_type):
        out.add(f"{field}.job_type", "must match ^[a-z][a-z0-9_.-]{0,127}$, e.g. 'advisory.ingest'")
    if spec.key and not JOB_KEY_RE.match(spec.key):
        out.add(f"{field}.key", "must match ^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")
    if not -1000 <= spec.priority <= 1000:
        out.add(f"{field}.priority", f"must be -1000..1000, got {spec.priority}")
    payload = json_format.MessageToDict(spec.payload) if spec.HasField("payload") else {}
    digest = ""
    try:
        encoded = canonical_json(payload, f"{field}.payload")
        if len(encoded) > max_payload_bytes:
            out.add(
                f"{field}.payload",
                f"is {len(encoded)} bytes as canonical JSON; the limit is "
                f"{max_payload_bytes} bytes — store large inputs as an artifact and pass its uri",
            )
        digest = "sha256:" + hashlib.sha256(encoded).hexdigest()
    except InvalidArgument as exc:
        out.merge(exc)
    no_credentials(payload, f"{field}.payload", out)
    window_start = (
        optional_datetime(spec.event_time_window, "start")
        if spec.HasField("event_time_window")
        else None
    )
    window_end = (
        optional_datetime(spec.event_time_window, "end")
        if spec.HasField("event_time_window")
        else None
    )
    if spec.HasField("event_time_window") and (
        window_start is None or window_end is None or window_end <= window_start
    ):
        out.add(f"{field}.event_time_window", "needs start and end with start < end")
    depends_on_ids: list[uuid.UUID] = []
    for i, raw in enumerate(spec.depends_on_job_ids):
        parsed = required_id(raw, f"{field}.depends_on_job_ids[{i}]", out)
        if parsed is not None:
            depends_on_ids.append(parsed)
    for i, key in enumerate(spec.depends_on):
        if not key:
            out.add(f"{field}.depends_on[{i}]", "must name the key of another job")
    return NewJob(
        id=uuid.UUID(new_id()),
        job_type=spec.job_type,
        payload=payload,
        payload_digest=digest or "sha256:" + "0" * 64,
        retry_policy=retry_policy(
            spec.retry_policy, f"{field}.retry_policy", out, spec.HasField("retry_policy")
        ),
        key=spec.key,
        project=_text(spec.project, f"{field}.project", out, 128),
        source_id=optional_id(spec.source_id, f"{field}.source_id", out),
        priority=spec.priority,
        idempotency_key=_text(spec.idempotency_key, f"{field}.idempotency_key", out) or None,
        correlation_id=_text(spec.correlation_id, f"{field}.correlation_id", out),
        not_before=optional_datetime(spec, "not_before"),
        event_window_start=window_start,
        event_window_end=window_end,
        trace_parent=_text(spec.trace_parent, f"{field}.trace_parent", out, 128),
        trace_state=_text(spec.trace_state, f"{field}.trace_state", out, 512),
        labels=_labels(dict(spec.labels), f"{field}.labels", out),
        depends_on_keys=tuple(dict.fromkeys(spec.depends_on)),
        depends_on_job_ids=tuple(dict.fromkeys(depends_on_ids)),
    )


def job_batch(
    specs: Sequence[resources_pb2.JobSpec],
    field: str,
    *,
    allow_external_keys: bool = False,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    trace: tuple[str, str] = ("", ""),
) -> list[NewJob]:
    """A batch of JobSpecs: at least one, each valid, keys unique, ``depends_on`` naming keys
    of the batch (or, with ``allow_external_keys``, of the run the batch joins) and acyclic.
    A job whose spec sets no ``trace_parent`` gets ``trace`` (the submitting call's
    ``traceparent`` and ``tracestate``), so its lease and its handler join the submitter's
    trace."""
    out = Violations()
    if not specs:
        out.add(field, "at least one job is required")
    if len(specs) > MAX_JOBS_PER_REQUEST:
        out.add(field, f"at most {MAX_JOBS_PER_REQUEST} jobs per request, got {len(specs)}")
        out.raise_if_any("request too large")
    # a single SubmitJob names paths job.<field>; batches name jobs[i].<field>
    paths = [field] if field == "job" else [f"{field}[{i}]" for i in range(len(specs))]
    jobs = [
        job_spec(s, paths[i], out, max_payload_bytes=max_payload_bytes) for i, s in enumerate(specs)
    ]
    if trace[0]:
        jobs = [
            job if job.trace_parent else replace(job, trace_parent=trace[0], trace_state=trace[1])
            for job in jobs
        ]
    seen: dict[str, int] = {}
    for i, job in enumerate(jobs):
        if not job.key:
            continue  # a keyless job may depend on others; it just cannot be depended on
        if job.key in seen:
            out.add(f"{paths[i]}.key", f"'{job.key}' is already used by {paths[seen[job.key]]}")
        else:
            seen[job.key] = i
    for i, job in enumerate(jobs):
        for dep in job.depends_on_keys:
            if dep == job.key:
                out.add(f"{paths[i]}.depends_on", f"job '{dep}' cannot depend on itself")
            elif dep not in seen and not allow_external_keys:
                out.add(f"{paths[i]}.depends_on", f"no job in this request has key '{dep}'")
    cycle = find_cycle({j.key: [d for d in j.depends_on_keys if d in seen] for j in jobs if j.key})
    if cycle:
        out.add(f"{field}", "depends_on forms a cycle: " + " → ".join(cycle))
    out.raise_if_any("invalid jobs")
    return jobs


def find_cycle(graph: dict[str, list[str]]) -> list[str]:
    """A cycle in ``{node: [parents]}`` as a closed path (first == last), or []."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        color[node] = grey
        stack.append(node)
        for parent in graph.get(node, ()):
            if color.get(parent, black) == grey:
                return [*stack[stack.index(parent) :], parent]
            if color.get(parent) == white:
                found = visit(parent)
                if found:
                    return found
        stack.pop()
        color[node] = black
        return []

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 4 * len(graph) + 100))
    for node in sorted(graph):
        if color[node] == white:
            found = visit(node)
            if found:
                return found
    return []


def new_run(
    project: str,
    name: str,
    source_id: str,
    correlation_id: str,
    idempotency_key: str,
    labels: dict[str, str],
) -> NewRun:
    out = Violations()
    run = NewRun(
        id=uuid.UUID(new_id()),
        project=_text(project, "project", out, 128),
        name=_text(name, "name", out),
        source_id=optional_id(source_id, "source_id", out),
        correlation_id=_text(correlation_id, "correlation_id", out),
        idempotency_key=_text(idempotency_key, "idempotency_key", out) or None,
        labels=_labels(labels, "labels", out),
    )
    out.raise_if_any("invalid run")
    return run


def source_fields(src: resources_pb2.Source, field: str, paths: Sequence[str]) -> SourceFields:
    """Validates the named fields of a Source (all of them on create)."""
    out = Violations()
    wanted = set(paths)
    if "name" in wanted and not SOURCE_NAME_RE.match(src.name):
        out.add(
            f"{field}.name", "is required and must match ^[a-z0-9][a-z0-9._-]{0,62}$, e.g. 'nvd'"
        )
    if "source_type" in wanted and not SOURCE_TYPE_RE.match(src.source_type):
        out.add(f"{field}.source_type", "is required, lowercase, e.g. 'nvd', 'osv', 'ghsa', 'csaf'")
    if "host" in wanted and not HOST_RE.match(src.host):
        out.add(
            f"{field}.host",
            "is required: the upstream host name (optionally :port), "
            "lowercase, e.g. 'services.nvd.nist.gov'",
        )
    if "base_url" in wanted:
        _text(src.base_url, f"{field}.base_url", out, 2048)
        if src.base_url and not src.base_url.startswith(("http://", "https://")):
            out.add(f"{field}.base_url", "must be an http(s) URL")
        no_credentials(src.base_url, f"{field}.base_url", out)
    if "paused_reason" in wanted:
        _text(src.paused_reason, f"{field}.paused_reason", out)
    if "job_types" in wanted:
        for i, jt in enumerate(src.job_types):
            if not JOB_TYPE_RE.match(jt):
                out.add(f"{field}.job_types[{i}]", "must match ^[a-z][a-z0-9_.-]{0,127}$")
    labels = _labels(dict(src.labels), f"{field}.labels", out) if "labels" in wanted else {}
    if "max_active" in wanted and not 0 <= src.max_active <= MAX_SOURCE_ACTIVE:
        out.add(f"{field}.max_active", f"must be 0 (no cap) to {MAX_SOURCE_ACTIVE}")
    out.raise_if_any("invalid source")
    return SourceFields(
        name=src.name,
        source_type=src.source_type,
        host=src.host,
        base_url=src.base_url,
        enabled=src.enabled,
        paused=src.paused,
        paused_reason=src.paused_reason,
        job_types=tuple(src.job_types),
        labels=labels,
        max_active=src.max_active or None,
    )


def update_mask(
    paths: Sequence[str],
    mutable: Sequence[str] = SOURCE_MUTABLE_FIELDS,
    example: str = "enabled",
) -> list[str]:
    """Validates an Update* mask (UpdateSource's by default) against the resource's
    ``mutable`` fields; an empty mask is refused (say what changes, e.g. ``example``).
    Returns the paths without repeats, in order."""
    out = Violations()
    if not paths:
        out.add("update_mask", f"name the fields to change, e.g. paths: ['{example}']")
    for i, path in enumerate(paths):
        if path not in mutable:
            out.add(
                f"update_mask.paths[{i}]",
                f"'{path}' cannot be updated; updatable: {', '.join(mutable)}",
            )
    out.raise_if_any("invalid update_mask")
    return list(dict.fromkeys(paths))


MAX_REASON = 256
MAX_TICKET = 128


def operator_context(
    operator: common_pb2.OperatorContext, *, reason_required: bool = False
) -> None:
    """Checks an operator's reason and ticket (recorded in audit entries)."""
    out = Violations()
    if reason_required and not operator.reason.strip():
        out.add("operator.reason", "is required for this action: say why (it is audited)")
    _text(operator.reason, "operator.reason", out, MAX_REASON)
    _text(operator.ticket, "operator.ticket", out, MAX_TICKET)
    out.raise_if_any("invalid operator context")


def request_context(
    principal: Principal,
    operator: common_pb2.OperatorContext | None = None,
    *,
    reason_required: bool = False,
) -> TxContext:
    """The transaction context of a request: the caller's tenant and identity and, when the
    request carries one, the operator's reason and ticket (checked; recorded in audit
    entries)."""
    if operator is not None:
        operator_context(operator, reason_required=reason_required)
    return TxContext(
        tenant=principal.tenant,
        actor_subject=principal.subject,
        actor_scopes=tuple(sorted(principal.scopes)),
        reason=operator.reason if operator is not None else "",
        ticket=operator.ticket if operator is not None else "",
    )


def pause_fields(
    fields: SourceFields,
    paused: bool,
    operator: common_pb2.OperatorContext,
    *,
    required: bool = False,
) -> SourceFields:
    """Pausing records the operator's reason and ticket on the source; resuming clears
    them. A pause (or, with ``required``, a resume) without a reason is refused."""
    if not paused and not required:
        return fields
    operator_context(operator, reason_required=True)
    if paused:
        return replace(fields, paused_reason=operator.reason, paused_ticket=operator.ticket)
    return replace(fields, paused_reason="", paused_ticket="")
