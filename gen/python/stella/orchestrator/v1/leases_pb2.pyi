import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from stella.orchestrator.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AckKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACK_KIND_UNSPECIFIED: _ClassVar[AckKind]
    ACK_KIND_HEARTBEAT: _ClassVar[AckKind]
    ACK_KIND_PROGRESS: _ClassVar[AckKind]
    ACK_KIND_ARTIFACT: _ClassVar[AckKind]
    ACK_KIND_COMPLETION: _ClassVar[AckKind]
    ACK_KIND_FAILURE: _ClassVar[AckKind]
ACK_KIND_UNSPECIFIED: AckKind
ACK_KIND_HEARTBEAT: AckKind
ACK_KIND_PROGRESS: AckKind
ACK_KIND_ARTIFACT: AckKind
ACK_KIND_COMPLETION: AckKind
ACK_KIND_FAILURE: AckKind

class WorkRequest(_message.Message):
    __slots__ = ("hello", "batch", "drain")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    DRAIN_FIELD_NUMBER: _ClassVar[int]
    hello: WorkerHello
    batch: WorkerBatch
    drain: WorkerDrain
    def __init__(self, hello: _Optional[_Union[WorkerHello, _Mapping]] = ..., batch: _Optional[_Union[WorkerBatch, _Mapping]] = ..., drain: _Optional[_Union[WorkerDrain, _Mapping]] = ...) -> None: ...

class WorkerHello(_message.Message):
    __slots__ = ("worker_id", "job_types", "capacity", "sdk", "sdk_version", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPES_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    SDK_FIELD_NUMBER: _ClassVar[int]
    SDK_VERSION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    job_types: _containers.RepeatedScalarFieldContainer[str]
    capacity: int
    sdk: str
    sdk_version: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, worker_id: _Optional[str] = ..., job_types: _Optional[_Iterable[str]] = ..., capacity: _Optional[int] = ..., sdk: _Optional[str] = ..., sdk_version: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class WorkerBatch(_message.Message):
    __slots__ = ("heartbeats", "progress", "artifacts", "completions", "failures", "credits")
    HEARTBEATS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    COMPLETIONS_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    heartbeats: _containers.RepeatedCompositeFieldContainer[Heartbeat]
    progress: _containers.RepeatedCompositeFieldContainer[ProgressReport]
    artifacts: _containers.RepeatedCompositeFieldContainer[ArtifactRecord]
    completions: _containers.RepeatedCompositeFieldContainer[Completion]
    failures: _containers.RepeatedCompositeFieldContainer[Failure]
    credits: int
    def __init__(self, heartbeats: _Optional[_Iterable[_Union[Heartbeat, _Mapping]]] = ..., progress: _Optional[_Iterable[_Union[ProgressReport, _Mapping]]] = ..., artifacts: _Optional[_Iterable[_Union[ArtifactRecord, _Mapping]]] = ..., completions: _Optional[_Iterable[_Union[Completion, _Mapping]]] = ..., failures: _Optional[_Iterable[_Union[Failure, _Mapping]]] = ..., credits: _Optional[int] = ...) -> None: ...

class WorkerDrain(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("job_id", "lease_id", "progress")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    lease_id: str
    progress: _common_pb2.Progress
    def __init__(self, job_id: _Optional[str] = ..., lease_id: _Optional[str] = ..., progress: _Optional[_Union[_common_pb2.Progress, _Mapping]] = ...) -> None: ...

class ProgressReport(_message.Message):
    __slots__ = ("job_id", "lease_id", "progress")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    lease_id: str
    progress: _common_pb2.Progress
    def __init__(self, job_id: _Optional[str] = ..., lease_id: _Optional[str] = ..., progress: _Optional[_Union[_common_pb2.Progress, _Mapping]] = ...) -> None: ...

class ArtifactRecord(_message.Message):
    __slots__ = ("job_id", "lease_id", "name", "media_type", "size_bytes", "digest", "uri")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    lease_id: str
    name: str
    media_type: str
    size_bytes: int
    digest: str
    uri: str
    def __init__(self, job_id: _Optional[str] = ..., lease_id: _Optional[str] = ..., name: _Optional[str] = ..., media_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., digest: _Optional[str] = ..., uri: _Optional[str] = ...) -> None: ...

class Completion(_message.Message):
    __slots__ = ("job_id", "lease_id", "result", "result_digest", "artifacts")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    RESULT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    lease_id: str
    result: _struct_pb2.Struct
    result_digest: str
    artifacts: _containers.RepeatedCompositeFieldContainer[ArtifactRecord]
    def __init__(self, job_id: _Optional[str] = ..., lease_id: _Optional[str] = ..., result: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., result_digest: _Optional[str] = ..., artifacts: _Optional[_Iterable[_Union[ArtifactRecord, _Mapping]]] = ...) -> None: ...

class Failure(_message.Message):
    __slots__ = ("job_id", "lease_id", "error")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    lease_id: str
    error: _common_pb2.JobError
    def __init__(self, job_id: _Optional[str] = ..., lease_id: _Optional[str] = ..., error: _Optional[_Union[_common_pb2.JobError, _Mapping]] = ...) -> None: ...

class WorkResponse(_message.Message):
    __slots__ = ("welcome", "assignments", "results", "cancel", "drain")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    DRAIN_FIELD_NUMBER: _ClassVar[int]
    welcome: ServerWelcome
    assignments: AssignmentBatch
    results: ResultBatch
    cancel: CancelJobs
    drain: ServerDrain
    def __init__(self, welcome: _Optional[_Union[ServerWelcome, _Mapping]] = ..., assignments: _Optional[_Union[AssignmentBatch, _Mapping]] = ..., results: _Optional[_Union[ResultBatch, _Mapping]] = ..., cancel: _Optional[_Union[CancelJobs, _Mapping]] = ..., drain: _Optional[_Union[ServerDrain, _Mapping]] = ...) -> None: ...

class ServerWelcome(_message.Message):
    __slots__ = ("session_id", "lease_ttl", "heartbeat_interval", "max_batch")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_TTL_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    lease_ttl: _duration_pb2.Duration
    heartbeat_interval: _duration_pb2.Duration
    max_batch: int
    def __init__(self, session_id: _Optional[str] = ..., lease_ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., heartbeat_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_batch: _Optional[int] = ...) -> None: ...

class AssignmentBatch(_message.Message):
    __slots__ = ("assignments",)
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    assignments: _containers.RepeatedCompositeFieldContainer[Assignment]
    def __init__(self, assignments: _Optional[_Iterable[_Union[Assignment, _Mapping]]] = ...) -> None: ...

class Assignment(_message.Message):
    __slots__ = ("job_id", "run_id", "tenant", "project", "job_type", "lease_id", "lease_expires_at", "attempt", "max_attempts", "idempotency_key", "correlation_id", "payload", "payload_digest", "trace_parent", "trace_state", "event_time_window", "source_id", "key")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_DIGEST_FIELD_NUMBER: _ClassVar[int]
    TRACE_PARENT_FIELD_NUMBER: _ClassVar[int]
    TRACE_STATE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_WINDOW_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    run_id: str
    tenant: str
    project: str
    job_type: str
    lease_id: str
    lease_expires_at: _timestamp_pb2.Timestamp
    attempt: int
    max_attempts: int
    idempotency_key: str
    correlation_id: str
    payload: _struct_pb2.Struct
    payload_digest: str
    trace_parent: str
    trace_state: str
    event_time_window: _common_pb2.TimeWindow
    source_id: str
    key: str
    def __init__(self, job_id: _Optional[str] = ..., run_id: _Optional[str] = ..., tenant: _Optional[str] = ..., project: _Optional[str] = ..., job_type: _Optional[str] = ..., lease_id: _Optional[str] = ..., lease_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempt: _Optional[int] = ..., max_attempts: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., correlation_id: _Optional[str] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., payload_digest: _Optional[str] = ..., trace_parent: _Optional[str] = ..., trace_state: _Optional[str] = ..., event_time_window: _Optional[_Union[_common_pb2.TimeWindow, _Mapping]] = ..., source_id: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class ResultBatch(_message.Message):
    __slots__ = ("acks",)
    ACKS_FIELD_NUMBER: _ClassVar[int]
    acks: _containers.RepeatedCompositeFieldContainer[ResultAck]
    def __init__(self, acks: _Optional[_Iterable[_Union[ResultAck, _Mapping]]] = ...) -> None: ...

class ResultAck(_message.Message):
    __slots__ = ("job_id", "lease_id", "ok", "error_reason", "lease_expires_at", "kind")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_REASON_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    lease_id: str
    ok: bool
    error_reason: str
    lease_expires_at: _timestamp_pb2.Timestamp
    kind: AckKind
    def __init__(self, job_id: _Optional[str] = ..., lease_id: _Optional[str] = ..., ok: _Optional[bool] = ..., error_reason: _Optional[str] = ..., lease_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[_Union[AckKind, str]] = ...) -> None: ...

class CancelJobs(_message.Message):
    __slots__ = ("job_ids", "reason")
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_ids: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    def __init__(self, job_ids: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ...) -> None: ...

class ServerDrain(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class ClaimRequest(_message.Message):
    __slots__ = ("worker_id", "job_types", "max_jobs", "wait")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPES_FIELD_NUMBER: _ClassVar[int]
    MAX_JOBS_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    job_types: _containers.RepeatedScalarFieldContainer[str]
    max_jobs: int
    wait: _duration_pb2.Duration
    def __init__(self, worker_id: _Optional[str] = ..., job_types: _Optional[_Iterable[str]] = ..., max_jobs: _Optional[int] = ..., wait: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ClaimResponse(_message.Message):
    __slots__ = ("assignments",)
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    assignments: _containers.RepeatedCompositeFieldContainer[Assignment]
    def __init__(self, assignments: _Optional[_Iterable[_Union[Assignment, _Mapping]]] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("heartbeats",)
    HEARTBEATS_FIELD_NUMBER: _ClassVar[int]
    heartbeats: _containers.RepeatedCompositeFieldContainer[Heartbeat]
    def __init__(self, heartbeats: _Optional[_Iterable[_Union[Heartbeat, _Mapping]]] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("acks", "cancel_job_ids")
    ACKS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    acks: _containers.RepeatedCompositeFieldContainer[ResultAck]
    cancel_job_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, acks: _Optional[_Iterable[_Union[ResultAck, _Mapping]]] = ..., cancel_job_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CompleteRequest(_message.Message):
    __slots__ = ("completions",)
    COMPLETIONS_FIELD_NUMBER: _ClassVar[int]
    completions: _containers.RepeatedCompositeFieldContainer[Completion]
    def __init__(self, completions: _Optional[_Iterable[_Union[Completion, _Mapping]]] = ...) -> None: ...

class CompleteResponse(_message.Message):
    __slots__ = ("acks",)
    ACKS_FIELD_NUMBER: _ClassVar[int]
    acks: _containers.RepeatedCompositeFieldContainer[ResultAck]
    def __init__(self, acks: _Optional[_Iterable[_Union[ResultAck, _Mapping]]] = ...) -> None: ...

class FailRequest(_message.Message):
    __slots__ = ("failures",)
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    failures: _containers.RepeatedCompositeFieldContainer[Failure]
    def __init__(self, failures: _Optional[_Iterable[_Union[Failure, _Mapping]]] = ...) -> None: ...

class FailResponse(_message.Message):
    __slots__ = ("acks",)
    ACKS_FIELD_NUMBER: _ClassVar[int]
    acks: _containers.RepeatedCompositeFieldContainer[ResultAck]
    def __init__(self, acks: _Optional[_Iterable[_Union[ResultAck, _Mapping]]] = ...) -> None: ...

class RecordArtifactsRequest(_message.Message):
    __slots__ = ("artifacts",)
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    artifacts: _containers.RepeatedCompositeFieldContainer[ArtifactRecord]
    def __init__(self, artifacts: _Optional[_Iterable[_Union[ArtifactRecord, _Mapping]]] = ...) -> None: ...

class RecordArtifactsResponse(_message.Message):
    __slots__ = ("acks",)
    ACKS_FIELD_NUMBER: _ClassVar[int]
    acks: _containers.RepeatedCompositeFieldContainer[ResultAck]
    def __init__(self, acks: _Optional[_Iterable[_Union[ResultAck, _Mapping]]] = ...) -> None: ...
