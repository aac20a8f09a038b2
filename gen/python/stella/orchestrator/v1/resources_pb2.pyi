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

class CatchUpPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CATCH_UP_POLICY_UNSPECIFIED: _ClassVar[CatchUpPolicy]
    CATCH_UP_POLICY_SKIP: _ClassVar[CatchUpPolicy]
    CATCH_UP_POLICY_ONE: _ClassVar[CatchUpPolicy]
    CATCH_UP_POLICY_ALL: _ClassVar[CatchUpPolicy]

class OverlapPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OVERLAP_POLICY_UNSPECIFIED: _ClassVar[OverlapPolicy]
    OVERLAP_POLICY_SKIP: _ClassVar[OverlapPolicy]
    OVERLAP_POLICY_BUFFER_ONE: _ClassVar[OverlapPolicy]
    OVERLAP_POLICY_ALLOW: _ClassVar[OverlapPolicy]

class BackfillState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKFILL_STATE_UNSPECIFIED: _ClassVar[BackfillState]
    BACKFILL_STATE_PLANNED: _ClassVar[BackfillState]
    BACKFILL_STATE_RUNNING: _ClassVar[BackfillState]
    BACKFILL_STATE_SUCCEEDED: _ClassVar[BackfillState]
    BACKFILL_STATE_FAILED: _ClassVar[BackfillState]
    BACKFILL_STATE_CANCELED: _ClassVar[BackfillState]

class DeadLetterStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEAD_LETTER_STATUS_UNSPECIFIED: _ClassVar[DeadLetterStatus]
    DEAD_LETTER_STATUS_PENDING: _ClassVar[DeadLetterStatus]
    DEAD_LETTER_STATUS_REPLAYED: _ClassVar[DeadLetterStatus]
    DEAD_LETTER_STATUS_RESOLVED: _ClassVar[DeadLetterStatus]
    DEAD_LETTER_STATUS_DISCARDED: _ClassVar[DeadLetterStatus]

class IncidentState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INCIDENT_STATE_UNSPECIFIED: _ClassVar[IncidentState]
    INCIDENT_STATE_OPEN: _ClassVar[IncidentState]
    INCIDENT_STATE_RESOLVED: _ClassVar[IncidentState]

class ThrottleOrigin(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    THROTTLE_ORIGIN_UNSPECIFIED: _ClassVar[ThrottleOrigin]
    THROTTLE_ORIGIN_UPSTREAM_429: _ClassVar[ThrottleOrigin]
    THROTTLE_ORIGIN_UPSTREAM_503: _ClassVar[ThrottleOrigin]
    THROTTLE_ORIGIN_OPERATOR: _ClassVar[ThrottleOrigin]
    THROTTLE_ORIGIN_RECOVERY: _ClassVar[ThrottleOrigin]
CATCH_UP_POLICY_UNSPECIFIED: CatchUpPolicy
CATCH_UP_POLICY_SKIP: CatchUpPolicy
CATCH_UP_POLICY_ONE: CatchUpPolicy
CATCH_UP_POLICY_ALL: CatchUpPolicy
OVERLAP_POLICY_UNSPECIFIED: OverlapPolicy
OVERLAP_POLICY_SKIP: OverlapPolicy
OVERLAP_POLICY_BUFFER_ONE: OverlapPolicy
OVERLAP_POLICY_ALLOW: OverlapPolicy
BACKFILL_STATE_UNSPECIFIED: BackfillState
BACKFILL_STATE_PLANNED: BackfillState
BACKFILL_STATE_RUNNING: BackfillState
BACKFILL_STATE_SUCCEEDED: BackfillState
BACKFILL_STATE_FAILED: BackfillState
BACKFILL_STATE_CANCELED: BackfillState
DEAD_LETTER_STATUS_UNSPECIFIED: DeadLetterStatus
DEAD_LETTER_STATUS_PENDING: DeadLetterStatus
DEAD_LETTER_STATUS_REPLAYED: DeadLetterStatus
DEAD_LETTER_STATUS_RESOLVED: DeadLetterStatus
DEAD_LETTER_STATUS_DISCARDED: DeadLetterStatus
INCIDENT_STATE_UNSPECIFIED: IncidentState
INCIDENT_STATE_OPEN: IncidentState
INCIDENT_STATE_RESOLVED: IncidentState
THROTTLE_ORIGIN_UNSPECIFIED: ThrottleOrigin
THROTTLE_ORIGIN_UPSTREAM_429: ThrottleOrigin
THROTTLE_ORIGIN_UPSTREAM_503: ThrottleOrigin
THROTTLE_ORIGIN_OPERATOR: ThrottleOrigin
THROTTLE_ORIGIN_RECOVERY: ThrottleOrigin

class Source(_message.Message):
    __slots__ = ("id", "tenant", "name", "source_type", "host", "base_url", "enabled", "paused", "paused_reason", "job_types", "labels", "created_at", "updated_at", "version", "paused_ticket", "max_active")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    PAUSED_REASON_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PAUSED_TICKET_FIELD_NUMBER: _ClassVar[int]
    MAX_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: str
    name: str
    source_type: str
    host: str
    base_url: str
    enabled: bool
    paused: bool
    paused_reason: str
    job_types: _containers.RepeatedScalarFieldContainer[str]
    labels: _containers.ScalarMap[str, str]
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    version: int
    paused_ticket: str
    max_active: int
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ..., name: _Optional[str] = ..., source_type: _Optional[str] = ..., host: _Optional[str] = ..., base_url: _Optional[str] = ..., enabled: _Optional[bool] = ..., paused: _Optional[bool] = ..., paused_reason: _Optional[str] = ..., job_types: _Optional[_Iterable[str]] = ..., labels: _Optional[_Mapping[str, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[int] = ..., paused_ticket: _Optional[str] = ..., max_active: _Optional[int] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("id", "tenant", "project", "name", "source_id", "state", "correlation_id", "idempotency_key", "labels", "job_counts", "created_at", "started_at", "finished_at", "schedule_id", "backfill_id")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class JobCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    JOB_COUNTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    BACKFILL_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: str
    project: str
    name: str
    source_id: str
    state: _common_pb2.RunState
    correlation_id: str
    idempotency_key: str
    labels: _containers.ScalarMap[str, str]
    job_counts: _containers.ScalarMap[str, int]
    created_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    schedule_id: str
    backfill_id: str
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ..., project: _Optional[str] = ..., name: _Optional[str] = ..., source_id: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.RunState, str]] = ..., correlation_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., job_counts: _Optional[_Mapping[str, int]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., schedule_id: _Optional[str] = ..., backfill_id: _Optional[str] = ...) -> None: ...

class JobLease(_message.Message):
    __slots__ = ("lease_id", "worker_id", "lease_expires_at", "leased_at", "last_heartbeat_at")
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    LEASED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_AT_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    worker_id: str
    lease_expires_at: _timestamp_pb2.Timestamp
    leased_at: _timestamp_pb2.Timestamp
    last_heartbeat_at: _timestamp_pb2.Timestamp
    def __init__(self, lease_id: _Optional[str] = ..., worker_id: _Optional[str] = ..., lease_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., leased_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_heartbeat_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("id", "tenant", "project", "run_id", "source_id", "job_type", "key", "state", "reason", "priority", "idempotency_key", "correlation_id", "payload", "payload_digest", "depends_on", "retry_policy", "attempt", "not_before", "lease", "event_time_window", "replay_of", "last_error", "progress", "trace_parent", "created_at", "updated_at", "started_at", "finished_at", "labels", "trace_state", "result", "result_digest")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_DIGEST_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    RETRY_POLICY_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_WINDOW_FIELD_NUMBER: _ClassVar[int]
    REPLAY_OF_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    TRACE_PARENT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    TRACE_STATE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    RESULT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: str
    project: str
    run_id: str
    source_id: str
    job_type: str
    key: str
    state: _common_pb2.JobState
    reason: str
    priority: int
    idempotency_key: str
    correlation_id: str
    payload: _struct_pb2.Struct
    payload_digest: str
    depends_on: _containers.RepeatedScalarFieldContainer[str]
    retry_policy: _common_pb2.RetryPolicy
    attempt: int
    not_before: _timestamp_pb2.Timestamp
    lease: JobLease
    event_time_window: _common_pb2.TimeWindow
    replay_of: str
    last_error: _common_pb2.JobError
    progress: _common_pb2.Progress
    trace_parent: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    labels: _containers.ScalarMap[str, str]
    trace_state: str
    result: _struct_pb2.Struct
    result_digest: str
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ..., project: _Optional[str] = ..., run_id: _Optional[str] = ..., source_id: _Optional[str] = ..., job_type: _Optional[str] = ..., key: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.JobState, str]] = ..., reason: _Optional[str] = ..., priority: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., correlation_id: _Optional[str] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., payload_digest: _Optional[str] = ..., depends_on: _Optional[_Iterable[str]] = ..., retry_policy: _Optional[_Union[_common_pb2.RetryPolicy, _Mapping]] = ..., attempt: _Optional[int] = ..., not_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., lease: _Optional[_Union[JobLease, _Mapping]] = ..., event_time_window: _Optional[_Union[_common_pb2.TimeWindow, _Mapping]] = ..., replay_of: _Optional[str] = ..., last_error: _Optional[_Union[_common_pb2.JobError, _Mapping]] = ..., progress: _Optional[_Union[_common_pb2.Progress, _Mapping]] = ..., trace_parent: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., trace_state: _Optional[str] = ..., result: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., result_digest: _Optional[str] = ...) -> None: ...

class JobSpec(_message.Message):
    __slots__ = ("key", "job_type", "source_id", "project", "priority", "payload", "idempotency_key", "correlation_id", "retry_policy", "depends_on", "depends_on_job_ids", "not_before", "event_time_window", "labels", "trace_parent", "trace_state")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEY_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    RETRY_POLICY_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_WINDOW_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    TRACE_PARENT_FIELD_NUMBER: _ClassVar[int]
    TRACE_STATE_FIELD_NUMBER: _ClassVar[int]
    key: str
    job_type: str
    source_id: str
    project: str
    priority: int
    payload: _struct_pb2.Struct
    idempotency_key: str
    correlation_id: str
    retry_policy: _common_pb2.RetryPolicy
    depends_on: _containers.RepeatedScalarFieldContainer[str]
    depends_on_job_ids: _containers.RepeatedScalarFieldContainer[str]
    not_before: _timestamp_pb2.Timestamp
    event_time_window: _common_pb2.TimeWindow
    labels: _containers.ScalarMap[str, str]
    trace_parent: str
    trace_state: str
    def __init__(self, key: _Optional[str] = ..., job_type: _Optional[str] = ..., source_id: _Optional[str] = ..., project: _Optional[str] = ..., priority: _Optional[int] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., correlation_id: _Optional[str] = ..., retry_policy: _Optional[_Union[_common_pb2.RetryPolicy, _Mapping]] = ..., depends_on: _Optional[_Iterable[str]] = ..., depends_on_job_ids: _Optional[_Iterable[str]] = ..., not_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., event_time_window: _Optional[_Union[_common_pb2.TimeWindow, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., trace_parent: _Optional[str] = ..., trace_state: _Optional[str] = ...) -> None: ...

class DagEdge(_message.Message):
    __slots__ = ("run_id", "parent_job_id", "child_job_id", "tenant")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    CHILD_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    parent_job_id: str
    child_job_id: str
    tenant: str
    def __init__(self, run_id: _Optional[str] = ..., parent_job_id: _Optional[str] = ..., child_job_id: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class Artifact(_message.Message):
    __slots__ = ("id", "tenant", "job_id", "run_id", "name", "media_type", "size_bytes", "digest", "uri", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: str
    job_id: str
    run_id: str
    name: str
    media_type: str
    size_bytes: int
    digest: str
    uri: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ..., job_id: _Optional[str] = ..., run_id: _Optional[str] = ..., name: _Optional[str] = ..., media_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., digest: _Optional[str] = ..., uri: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Quota(_message.Message):
    __slots__ = ("id", "tenant", "job_type", "max_active", "max_per_hour", "burst", "max_queued", "paused", "created_at", "updated_at", "reason", "ticket")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    MAX_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    MAX_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    BURST_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUED_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TICKET_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: str
    job_type: str
    max_active: int
    max_per_hour: int
    burst: int
    max_queued: int
    paused: bool
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    reason: str
    ticket: str
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ..., job_type: _Optional[str] = ..., max_active: _Optional[int] = ..., max_per_hour: _Optional[int] = ..., burst: _Optional[int] = ..., max_queued: _Optional[int] = ..., paused: _Optional[bool] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., ticket: _Optional[str] = ...) -> None: ...

class RunTemplate(_message.Message):
    __slots__ = ("name", "jobs", "project", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    jobs: _containers.RepeatedCompositeFieldContainer[JobSpec]
    project: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., jobs: _Optional[_Iterable[_Union[JobSpec, _Mapping]]] = ..., project: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Schedule(_message.Message):
    __slots__ = ("id", "tenant", "name", "cron", "source_id", "run_template", "catch_up", "overlap", "catch_up_window", "enabled", "next_fire_at", "last_fire_at", "created_at", "updated_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    CATCH_UP_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_FIELD_NUMBER: _ClassVar[int]
    CATCH_UP_WINDOW_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    NEXT_FIRE_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_FIRE_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: str
    name: str
    cron: str
    source_id: str
    run_template: RunTemplate
    catch_up: CatchUpPolicy
    overlap: OverlapPolicy
    catch_up_window: _duration_pb2.Duration
    enabled: bool
    next_fire_at: _timestamp_pb2.Timestamp
    last_fire_at: _timestamp_pb2.Timestamp
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ..., name: _Optional[str] = ..., cron: _Optional[str] = ..., source_id: _Optional[str] = ..., run_template: _Optional[_Union[RunTemplate, _Mapping]] = ..., catch_up: _Optional[_Union[CatchUpPolicy, str]] = ..., overlap: _Optional[_Union[OverlapPolicy, str]] = ..., catch_up_window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., enabled: _Optional[bool] = ..., next_fire_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_fire_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Watermark(_message.Message):
    __slots__ = ("tenant", "source_id", "job_type", "high_watermark", "updated_at", "last_job_id")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    HIGH_WATERMARK_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    source_id: str
    job_type: str
    high_watermark: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    last_job_id: str
    def __init__(self, tenant: _Optional[str] = ..., source_id: _Optional[str] = ..., job_type: _Optional[str] = ..., high_watermark: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_job_id: _Optional[str] = ...) -> None: ...

class Backfill(_message.Message):
    __slots__ = ("id", "tenant", "source_id", "job_type", "range", "window_size", "priority", "state", "reason", "ticket", "window_count", "job_count", "suppressed_window_count", "succeeded_job_count", "created_by", "created_at", "run_id", "updated_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SIZE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TICKET_FIELD_NUMBER: _ClassVar[int]
    WINDOW_COUNT_FIELD_NUMBER: _ClassVar[int]
    JOB_COUNT_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_WINDOW_COUNT_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_JOB_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: str
    source_id: str
    job_type: str
    range: _common_pb2.TimeWindow
    window_size: _duration_pb2.Duration
    priority: int
    state: BackfillState
    reason: str
    ticket: str
    window_count: int
    job_count: int
    suppressed_window_count: int
    succeeded_job_count: int
    created_by: str
    created_at: _timestamp_pb2.Timestamp
    run_id: str
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ..., source_id: _Optional[str] = ..., job_type: _Optional[str] = ..., range: _Optional[_Union[_common_pb2.TimeWindow, _Mapping]] = ..., window_size: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., priority: _Optional[int] = ..., state: _Optional[_Union[BackfillState, str]] = ..., reason: _Optional[str] = ..., ticket: _Optional[str] = ..., window_count: _Optional[int] = ..., job_count: _Optional[int] = ..., suppressed_window_count: _Optional[int] = ..., succeeded_job_count: _Optional[int] = ..., created_by: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., run_id: _Optional[str] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DeadLetterEntry(_message.Message):
    __slots__ = ("id", "tenant", "job_id", "job_type", "source_id", "run_id", "error_class", "last_error", "attempts", "retryable", "failed_at", "status", "resolved_by", "resolution_reason", "reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_CLASS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    FAILED_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_BY_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_REASON_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: str
    job_id: str
    job_type: str
    source_id: str
    run_id: str
    error_class: _common_pb2.ErrorClass
    last_error: _common_pb2.JobError
    attempts: int
    retryable: bool
    failed_at: _timestamp_pb2.Timestamp
    status: DeadLetterStatus
    resolved_by: str
    resolution_reason: str
    reason: str
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ..., job_id: _Optional[str] = ..., job_type: _Optional[str] = ..., source_id: _Optional[str] = ..., run_id: _Optional[str] = ..., error_class: _Optional[_Union[_common_pb2.ErrorClass, str]] = ..., last_error: _Optional[_Union[_common_pb2.JobError, _Mapping]] = ..., attempts: _Optional[int] = ..., retryable: _Optional[bool] = ..., failed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[_Union[DeadLetterStatus, str]] = ..., resolved_by: _Optional[str] = ..., resolution_reason: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class Incident(_message.Message):
    __slots__ = ("id", "tenant", "error_class", "source_id", "job_type", "state", "reason_code", "first_seen_at", "last_seen_at", "failure_count", "sample_job_ids", "resolved_at", "acknowledged_at", "acknowledged_by", "acknowledge_reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ERROR_CLASS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_CODE_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_AT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_AT_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_BY_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGE_REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: str
    error_class: _common_pb2.ErrorClass
    source_id: str
    job_type: str
    state: IncidentState
    reason_code: str
    first_seen_at: _timestamp_pb2.Timestamp
    last_seen_at: _timestamp_pb2.Timestamp
    failure_count: int
    sample_job_ids: _containers.RepeatedScalarFieldContainer[str]
    resolved_at: _timestamp_pb2.Timestamp
    acknowledged_at: _timestamp_pb2.Timestamp
    acknowledged_by: str
    acknowledge_reason: str
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ..., error_class: _Optional[_Union[_common_pb2.ErrorClass, str]] = ..., source_id: _Optional[str] = ..., job_type: _Optional[str] = ..., state: _Optional[_Union[IncidentState, str]] = ..., reason_code: _Optional[str] = ..., first_seen_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., failure_count: _Optional[int] = ..., sample_job_ids: _Optional[_Iterable[str]] = ..., resolved_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., acknowledged_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., acknowledged_by: _Optional[str] = ..., acknowledge_reason: _Optional[str] = ...) -> None: ...

class Throttle(_message.Message):
    __slots__ = ("id", "tenant", "source_id", "host", "refill_per_second", "capacity", "effective_refill_per_second", "paused_until", "reason", "ticket", "origin", "created_by", "created_at", "expires_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    REFILL_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_REFILL_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    PAUSED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TICKET_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: str
    source_id: str
    host: str
    refill_per_second: float
    capacity: int
    effective_refill_per_second: float
    paused_until: _timestamp_pb2.Timestamp
    reason: str
    ticket: str
    origin: ThrottleOrigin
    created_by: str
    created_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ..., source_id: _Optional[str] = ..., host: _Optional[str] = ..., refill_per_second: _Optional[float] = ..., capacity: _Optional[int] = ..., effective_refill_per_second: _Optional[float] = ..., paused_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., ticket: _Optional[str] = ..., origin: _Optional[_Union[ThrottleOrigin, str]] = ..., created_by: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
