import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from stella.orchestrator.v1 import common_pb2 as _common_pb2
from stella.orchestrator.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListDeadLettersRequest(_message.Message):
    __slots__ = ("status", "error_class", "job_type", "source_id", "retryable", "page_size", "page_token")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_CLASS_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    status: _resources_pb2.DeadLetterStatus
    error_class: _common_pb2.ErrorClass
    job_type: str
    source_id: str
    retryable: bool
    page_size: int
    page_token: str
    def __init__(self, status: _Optional[_Union[_resources_pb2.DeadLetterStatus, str]] = ..., error_class: _Optional[_Union[_common_pb2.ErrorClass, str]] = ..., job_type: _Optional[str] = ..., source_id: _Optional[str] = ..., retryable: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDeadLettersResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[_resources_pb2.DeadLetterEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[_resources_pb2.DeadLetterEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetDeadLetterRequest(_message.Message):
    __slots__ = ("entry_id",)
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    def __init__(self, entry_id: _Optional[str] = ...) -> None: ...

class GetDeadLetterResponse(_message.Message):
    __slots__ = ("entry",)
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    entry: _resources_pb2.DeadLetterEntry
    def __init__(self, entry: _Optional[_Union[_resources_pb2.DeadLetterEntry, _Mapping]] = ...) -> None: ...

class GetDeadLetterStatsRequest(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: _resources_pb2.DeadLetterStatus
    def __init__(self, status: _Optional[_Union[_resources_pb2.DeadLetterStatus, str]] = ...) -> None: ...

class DeadLetterCluster(_message.Message):
    __slots__ = ("error_class", "job_type", "source_id", "count", "retryable_count", "first_failed_at", "last_failed_at", "sample_message")
    ERROR_CLASS_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    FIRST_FAILED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_FAILED_AT_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    error_class: _common_pb2.ErrorClass
    job_type: str
    source_id: str
    count: int
    retryable_count: int
    first_failed_at: _timestamp_pb2.Timestamp
    last_failed_at: _timestamp_pb2.Timestamp
    sample_message: str
    def __init__(self, error_class: _Optional[_Union[_common_pb2.ErrorClass, str]] = ..., job_type: _Optional[str] = ..., source_id: _Optional[str] = ..., count: _Optional[int] = ..., retryable_count: _Optional[int] = ..., first_failed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_failed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sample_message: _Optional[str] = ...) -> None: ...

class GetDeadLetterStatsResponse(_message.Message):
    __slots__ = ("total", "by_error_class", "clusters")
    class ByErrorClassEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    BY_ERROR_CLASS_FIELD_NUMBER: _ClassVar[int]
    CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    total: int
    by_error_class: _containers.ScalarMap[str, int]
    clusters: _containers.RepeatedCompositeFieldContainer[DeadLetterCluster]
    def __init__(self, total: _Optional[int] = ..., by_error_class: _Optional[_Mapping[str, int]] = ..., clusters: _Optional[_Iterable[_Union[DeadLetterCluster, _Mapping]]] = ...) -> None: ...

class ReplayDeadLetterRequest(_message.Message):
    __slots__ = ("entry_id", "operator")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    operator: _common_pb2.OperatorContext
    def __init__(self, entry_id: _Optional[str] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ...) -> None: ...

class ReplayDeadLetterResponse(_message.Message):
    __slots__ = ("entry", "job")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    entry: _resources_pb2.DeadLetterEntry
    job: _resources_pb2.Job
    def __init__(self, entry: _Optional[_Union[_resources_pb2.DeadLetterEntry, _Mapping]] = ..., job: _Optional[_Union[_resources_pb2.Job, _Mapping]] = ...) -> None: ...

class ListIncidentsRequest(_message.Message):
    __slots__ = ("state", "page_size", "page_token")
    STATE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    state: _resources_pb2.IncidentState
    page_size: int
    page_token: str
    def __init__(self, state: _Optional[_Union[_resources_pb2.IncidentState, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListIncidentsResponse(_message.Message):
    __slots__ = ("incidents", "next_page_token")
    INCIDENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    incidents: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Incident]
    next_page_token: str
    def __init__(self, incidents: _Optional[_Iterable[_Union[_resources_pb2.Incident, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetIncidentRequest(_message.Message):
    __slots__ = ("incident_id",)
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    incident_id: str
    def __init__(self, incident_id: _Optional[str] = ...) -> None: ...

class IncidentEvent(_message.Message):
    __slots__ = ("seq", "type", "occurred_at", "actor", "failure_count", "reason")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    FAILURE_COUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    seq: int
    type: str
    occurred_at: _timestamp_pb2.Timestamp
    actor: str
    failure_count: int
    reason: str
    def __init__(self, seq: _Optional[int] = ..., type: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., failure_count: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class GetIncidentResponse(_message.Message):
    __slots__ = ("incident", "timeline")
    INCIDENT_FIELD_NUMBER: _ClassVar[int]
    TIMELINE_FIELD_NUMBER: _ClassVar[int]
    incident: _resources_pb2.Incident
    timeline: _containers.RepeatedCompositeFieldContainer[IncidentEvent]
    def __init__(self, incident: _Optional[_Union[_resources_pb2.Incident, _Mapping]] = ..., timeline: _Optional[_Iterable[_Union[IncidentEvent, _Mapping]]] = ...) -> None: ...

class AcknowledgeIncidentRequest(_message.Message):
    __slots__ = ("incident_id", "operator")
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    incident_id: str
    operator: _common_pb2.OperatorContext
    def __init__(self, incident_id: _Optional[str] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ...) -> None: ...

class AcknowledgeIncidentResponse(_message.Message):
    __slots__ = ("incident",)
    INCIDENT_FIELD_NUMBER: _ClassVar[int]
    incident: _resources_pb2.Incident
    def __init__(self, incident: _Optional[_Union[_resources_pb2.Incident, _Mapping]] = ...) -> None: ...

class ListArtifactsRequest(_message.Message):
    __slots__ = ("job_id", "run_id", "page_size", "page_token")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    run_id: str
    page_size: int
    page_token: str
    def __init__(self, job_id: _Optional[str] = ..., run_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListArtifactsResponse(_message.Message):
    __slots__ = ("artifacts", "next_page_token")
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    artifacts: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Artifact]
    next_page_token: str
    def __init__(self, artifacts: _Optional[_Iterable[_Union[_resources_pb2.Artifact, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetOverviewRequest(_message.Message):
    __slots__ = ("window",)
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    window: _duration_pb2.Duration
    def __init__(self, window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class GetOverviewResponse(_message.Message):
    __slots__ = ("jobs_by_state", "queue_depth", "window", "succeeded_in_window", "dead_in_window", "failed_attempts_in_window", "throughput_per_minute", "failure_rate", "slo_target", "slo_burn_rate", "dead_letter_pending", "active_runs", "head_seq", "as_of")
    class JobsByStateEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    JOBS_BY_STATE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_IN_WINDOW_FIELD_NUMBER: _ClassVar[int]
    DEAD_IN_WINDOW_FIELD_NUMBER: _ClassVar[int]
    FAILED_ATTEMPTS_IN_WINDOW_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_RATE_FIELD_NUMBER: _ClassVar[int]
    SLO_TARGET_FIELD_NUMBER: _ClassVar[int]
    SLO_BURN_RATE_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_PENDING_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_RUNS_FIELD_NUMBER: _ClassVar[int]
    HEAD_SEQ_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    jobs_by_state: _containers.ScalarMap[str, int]
    queue_depth: int
    window: _duration_pb2.Duration
    succeeded_in_window: int
    dead_in_window: int
    failed_attempts_in_window: int
    throughput_per_minute: float
    failure_rate: float
    slo_target: float
    slo_burn_rate: float
    dead_letter_pending: int
    active_runs: int
    head_seq: int
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, jobs_by_state: _Optional[_Mapping[str, int]] = ..., queue_depth: _Optional[int] = ..., window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., succeeded_in_window: _Optional[int] = ..., dead_in_window: _Optional[int] = ..., failed_attempts_in_window: _Optional[int] = ..., throughput_per_minute: _Optional[float] = ..., failure_rate: _Optional[float] = ..., slo_target: _Optional[float] = ..., slo_burn_rate: _Optional[float] = ..., dead_letter_pending: _Optional[int] = ..., active_runs: _Optional[int] = ..., head_seq: _Optional[int] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
