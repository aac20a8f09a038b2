import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from stella.orchestrator.v1 import common_pb2 as _common_pb2
from stella.orchestrator.v1 import events_pb2 as _events_pb2
from stella.orchestrator.v1 import operations_pb2 as _operations_pb2
from stella.orchestrator.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateSourceRequest(_message.Message):
    __slots__ = ("source", "operator")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    source: _resources_pb2.Source
    operator: _common_pb2.OperatorContext
    def __init__(self, source: _Optional[_Union[_resources_pb2.Source, _Mapping]] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ...) -> None: ...

class CreateSourceResponse(_message.Message):
    __slots__ = ("source",)
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    source: _resources_pb2.Source
    def __init__(self, source: _Optional[_Union[_resources_pb2.Source, _Mapping]] = ...) -> None: ...

class GetSourceRequest(_message.Message):
    __slots__ = ("source_id",)
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    source_id: str
    def __init__(self, source_id: _Optional[str] = ...) -> None: ...

class GetSourceResponse(_message.Message):
    __slots__ = ("source",)
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    source: _resources_pb2.Source
    def __init__(self, source: _Optional[_Union[_resources_pb2.Source, _Mapping]] = ...) -> None: ...

class ListSourcesRequest(_message.Message):
    __slots__ = ("source_type", "enabled", "page_size", "page_token")
    SOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    source_type: str
    enabled: bool
    page_size: int
    page_token: str
    def __init__(self, source_type: _Optional[str] = ..., enabled: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSourcesResponse(_message.Message):
    __slots__ = ("sources", "next_page_token")
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sources: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Source]
    next_page_token: str
    def __init__(self, sources: _Optional[_Iterable[_Union[_resources_pb2.Source, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateSourceRequest(_message.Message):
    __slots__ = ("source", "update_mask", "operator")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    source: _resources_pb2.Source
    update_mask: _field_mask_pb2.FieldMask
    operator: _common_pb2.OperatorContext
    def __init__(self, source: _Optional[_Union[_resources_pb2.Source, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ...) -> None: ...

class UpdateSourceResponse(_message.Message):
    __slots__ = ("source",)
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    source: _resources_pb2.Source
    def __init__(self, source: _Optional[_Union[_resources_pb2.Source, _Mapping]] = ...) -> None: ...

class DeleteSourceRequest(_message.Message):
    __slots__ = ("source_id", "operator")
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    source_id: str
    operator: _common_pb2.OperatorContext
    def __init__(self, source_id: _Optional[str] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ...) -> None: ...

class DeleteSourceResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateRunRequest(_message.Message):
    __slots__ = ("project", "name", "source_id", "correlation_id", "idempotency_key", "labels", "jobs")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    project: str
    name: str
    source_id: str
    correlation_id: str
    idempotency_key: str
    labels: _containers.ScalarMap[str, str]
    jobs: _containers.RepeatedCompositeFieldContainer[_resources_pb2.JobSpec]
    def __init__(self, project: _Optional[str] = ..., name: _Optional[str] = ..., source_id: _Optional[str] = ..., correlation_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., jobs: _Optional[_Iterable[_Union[_resources_pb2.JobSpec, _Mapping]]] = ...) -> None: ...

class CreateRunResponse(_message.Message):
    __slots__ = ("run", "jobs", "existing")
    RUN_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    EXISTING_FIELD_NUMBER: _ClassVar[int]
    run: _resources_pb2.Run
    jobs: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Job]
    existing: bool
    def __init__(self, run: _Optional[_Union[_resources_pb2.Run, _Mapping]] = ..., jobs: _Optional[_Iterable[_Union[_resources_pb2.Job, _Mapping]]] = ..., existing: _Optional[bool] = ...) -> None: ...

class GetRunRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class GetRunResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: _resources_pb2.Run
    def __init__(self, run: _Optional[_Union[_resources_pb2.Run, _Mapping]] = ...) -> None: ...

class ListRunsRequest(_message.Message):
    __slots__ = ("states", "source_id", "project", "page_size", "page_token")
    STATES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[_common_pb2.RunState]
    source_id: str
    project: str
    page_size: int
    page_token: str
    def __init__(self, states: _Optional[_Iterable[_Union[_common_pb2.RunState, str]]] = ..., source_id: _Optional[str] = ..., project: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRunsResponse(_message.Message):
    __slots__ = ("runs", "next_page_token")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Run]
    next_page_token: str
    def __init__(self, runs: _Optional[_Iterable[_Union[_resources_pb2.Run, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetRunDagRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class GetRunDagResponse(_message.Message):
    __slots__ = ("run", "jobs", "edges")
    RUN_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    run: _resources_pb2.Run
    jobs: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Job]
    edges: _containers.RepeatedCompositeFieldContainer[_resources_pb2.DagEdge]
    def __init__(self, run: _Optional[_Union[_resources_pb2.Run, _Mapping]] = ..., jobs: _Optional[_Iterable[_Union[_resources_pb2.Job, _Mapping]]] = ..., edges: _Optional[_Iterable[_Union[_resources_pb2.DagEdge, _Mapping]]] = ...) -> None: ...

class CancelRunRequest(_message.Message):
    __slots__ = ("run_id", "operator")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    operator: _common_pb2.OperatorContext
    def __init__(self, run_id: _Optional[str] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ...) -> None: ...

class CancelRunResponse(_message.Message):
    __slots__ = ("run", "canceled_job_count")
    RUN_FIELD_NUMBER: _ClassVar[int]
    CANCELED_JOB_COUNT_FIELD_NUMBER: _ClassVar[int]
    run: _resources_pb2.Run
    canceled_job_count: int
    def __init__(self, run: _Optional[_Union[_resources_pb2.Run, _Mapping]] = ..., canceled_job_count: _Optional[int] = ...) -> None: ...

class ResumeRunRequest(_message.Message):
    __slots__ = ("run_id", "operator")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    operator: _common_pb2.OperatorContext
    def __init__(self, run_id: _Optional[str] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ...) -> None: ...

class ResumeRunResponse(_message.Message):
    __slots__ = ("run", "retried_job_count", "revived_job_count")
    RUN_FIELD_NUMBER: _ClassVar[int]
    RETRIED_JOB_COUNT_FIELD_NUMBER: _ClassVar[int]
    REVIVED_JOB_COUNT_FIELD_NUMBER: _ClassVar[int]
    run: _resources_pb2.Run
    retried_job_count: int
    revived_job_count: int
    def __init__(self, run: _Optional[_Union[_resources_pb2.Run, _Mapping]] = ..., retried_job_count: _Optional[int] = ..., revived_job_count: _Optional[int] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("job", "run_id")
    JOB_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    job: _resources_pb2.JobSpec
    run_id: str
    def __init__(self, job: _Optional[_Union[_resources_pb2.JobSpec, _Mapping]] = ..., run_id: _Optional[str] = ...) -> None: ...

class SubmitJobResponse(_message.Message):
    __slots__ = ("job", "existing")
    JOB_FIELD_NUMBER: _ClassVar[int]
    EXISTING_FIELD_NUMBER: _ClassVar[int]
    job: _resources_pb2.Job
    existing: bool
    def __init__(self, job: _Optional[_Union[_resources_pb2.Job, _Mapping]] = ..., existing: _Optional[bool] = ...) -> None: ...

class SubmitJobsRequest(_message.Message):
    __slots__ = ("jobs", "run_id")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_resources_pb2.JobSpec]
    run_id: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[_resources_pb2.JobSpec, _Mapping]]] = ..., run_id: _Optional[str] = ...) -> None: ...

class SubmitJobsResponse(_message.Message):
    __slots__ = ("jobs", "existing")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    EXISTING_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Job]
    existing: _containers.RepeatedScalarFieldContainer[bool]
    def __init__(self, jobs: _Optional[_Iterable[_Union[_resources_pb2.Job, _Mapping]]] = ..., existing: _Optional[_Iterable[bool]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _resources_pb2.Job
    def __init__(self, job: _Optional[_Union[_resources_pb2.Job, _Mapping]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("states", "job_type", "run_id", "source_id", "page_size", "page_token")
    STATES_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[_common_pb2.JobState]
    job_type: str
    run_id: str
    source_id: str
    page_size: int
    page_token: str
    def __init__(self, states: _Optional[_Iterable[_Union[_common_pb2.JobState, str]]] = ..., job_type: _Optional[str] = ..., run_id: _Optional[str] = ..., source_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[_resources_pb2.Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id", "operator")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    operator: _common_pb2.OperatorContext
    def __init__(self, job_id: _Optional[str] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ...) -> None: ...

class CancelJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _resources_pb2.Job
    def __init__(self, job: _Optional[_Union[_resources_pb2.Job, _Mapping]] = ...) -> None: ...

class RetryJobRequest(_message.Message):
    __slots__ = ("job_id", "operator")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    operator: _common_pb2.OperatorContext
    def __init__(self, job_id: _Optional[str] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ...) -> None: ...

class RetryJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _resources_pb2.Job
    def __init__(self, job: _Optional[_Union[_resources_pb2.Job, _Mapping]] = ...) -> None: ...

class ListJobEventsRequest(_message.Message):
    __slots__ = ("job_id", "page_size", "page_token")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    page_size: int
    page_token: str
    def __init__(self, job_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_events_pb2.Event]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[_events_pb2.Event, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateQuotaRequest(_message.Message):
    __slots__ = ("quota", "operator")
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    quota: _resources_pb2.Quota
    operator: _common_pb2.OperatorContext
    def __init__(self, quota: _Optional[_Union[_resources_pb2.Quota, _Mapping]] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ...) -> None: ...

class CreateQuotaResponse(_message.Message):
    __slots__ = ("quota",)
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    quota: _resources_pb2.Quota
    def __init__(self, quota: _Optional[_Union[_resources_pb2.Quota, _Mapping]] = ...) -> None: ...

class GetQuotaRequest(_message.Message):
    __slots__ = ("quota_id",)
    QUOTA_ID_FIELD_NUMBER: _ClassVar[int]
    quota_id: str
    def __init__(self, quota_id: _Optional[str] = ...) -> None: ...

class GetQuotaResponse(_message.Message):
    __slots__ = ("quota",)
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    quota: _resources_pb2.Quota
    def __init__(self, quota: _Optional[_Union[_resources_pb2.Quota, _Mapping]] = ...) -> None: ...

class ListQuotasRequest(_message.Message):
    __slots__ = ("job_type", "paused", "page_size", "page_token")
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    job_type: str
    paused: bool
    page_size: int
    page_token: str
    def __init__(self, job_type: _Optional[str] = ..., paused: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListQuotasResponse(_message.Message):
    __slots__ = ("quotas", "next_page_token")
    QUOTAS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    quotas: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Quota]
    next_page_token: str
    def __init__(self, quotas: _Optional[_Iterable[_Union[_resources_pb2.Quota, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateQuotaRequest(_message.Message):
    __slots__ = ("quota", "update_mask", "operator")
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    quota: _resources_pb2.Quota
    update_mask: _field_mask_pb2.FieldMask
    operator: _common_pb2.OperatorContext
    def __init__(self, quota: _Optional[_Union[_resources_pb2.Quota, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ...) -> None: ...

class UpdateQuotaResponse(_message.Message):
    __slots__ = ("quota",)
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    quota: _resources_pb2.Quota
    def __init__(self, quota: _Optional[_Union[_resources_pb2.Quota, _Mapping]] = ...) -> None: ...

class DeleteQuotaRequest(_message.Message):
    __slots__ = ("quota_id", "operator")
    QUOTA_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    quota_id: str
    operator: _common_pb2.OperatorContext
    def __init__(self, quota_id: _Optional[str] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ...) -> None: ...

class DeleteQuotaResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateScheduleRequest(_message.Message):
    __slots__ = ("schedule", "operator")
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    schedule: _resources_pb2.Schedule
    operator: _common_pb2.OperatorContext
    def __init__(self, schedule: _Optional[_Union[_resources_pb2.Schedule, _Mapping]] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ...) -> None: ...

class CreateScheduleResponse(_message.Message):
    __slots__ = ("schedule",)
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    schedule: _resources_pb2.Schedule
    def __init__(self, schedule: _Optional[_Union[_resources_pb2.Schedule, _Mapping]] = ...) -> None: ...

class GetScheduleRequest(_message.Message):
    __slots__ = ("schedule_id",)
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    schedule_id: str
    def __init__(self, schedule_id: _Optional[str] = ...) -> None: ...

class GetScheduleResponse(_message.Message):
    __slots__ = ("schedule",)
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    schedule: _resources_pb2.Schedule
    def __init__(self, schedule: _Optional[_Union[_resources_pb2.Schedule, _Mapping]] = ...) -> None: ...

class ListSchedulesRequest(_message.Message):
    __slots__ = ("enabled", "page_size", "page_token")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    page_size: int
    page_token: str
    def __init__(self, enabled: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSchedulesResponse(_message.Message):
    __slots__ = ("schedules", "next_page_token")
    SCHEDULES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    schedules: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Schedule]
    next_page_token: str
    def __init__(self, schedules: _Optional[_Iterable[_Union[_resources_pb2.Schedule, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateScheduleRequest(_message.Message):
    __slots__ = ("schedule", "update_mask", "operator")
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    schedule: _resources_pb2.Schedule
    update_mask: _field_mask_pb2.FieldMask
    operator: _common_pb2.OperatorContext
    def __init__(self, schedule: _Optional[_Union[_resources_pb2.Schedule, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ...) -> None: ...

class UpdateScheduleResponse(_message.Message):
    __slots__ = ("schedule",)
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    schedule: _resources_pb2.Schedule
    def __init__(self, schedule: _Optional[_Union[_resources_pb2.Schedule, _Mapping]] = ...) -> None: ...

class DeleteScheduleRequest(_message.Message):
    __slots__ = ("schedule_id", "operator")
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    schedule_id: str
    operator: _common_pb2.OperatorContext
    def __init__(self, schedule_id: _Optional[str] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ...) -> None: ...

class DeleteScheduleResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListWatermarksRequest(_message.Message):
    __slots__ = ("source_id", "job_type", "page_size", "page_token")
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    source_id: str
    job_type: str
    page_size: int
    page_token: str
    def __init__(self, source_id: _Optional[str] = ..., job_type: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListWatermarksResponse(_message.Message):
    __slots__ = ("watermarks", "next_page_token")
    WATERMARKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    watermarks: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Watermark]
    next_page_token: str
    def __init__(self, watermarks: _Optional[_Iterable[_Union[_resources_pb2.Watermark, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateBackfillRequest(_message.Message):
    __slots__ = ("source_id", "job_type", "range", "window_size", "priority", "payload", "dry_run", "operator")
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SIZE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    source_id: str
    job_type: str
    range: _common_pb2.TimeWindow
    window_size: _duration_pb2.Duration
    priority: int
    payload: _struct_pb2.Struct
    dry_run: bool
    operator: _common_pb2.OperatorContext
    def __init__(self, source_id: _Optional[str] = ..., job_type: _Optional[str] = ..., range: _Optional[_Union[_common_pb2.TimeWindow, _Mapping]] = ..., window_size: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., priority: _Optional[int] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., dry_run: _Optional[bool] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ...) -> None: ...

class BackfillQuotaImpact(_message.Message):
    __slots__ = ("job_type", "max_queued", "queued", "exceeds_max_queued", "max_per_hour")
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUED_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    EXCEEDS_MAX_QUEUED_FIELD_NUMBER: _ClassVar[int]
    MAX_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    job_type: str
    max_queued: int
    queued: int
    exceeds_max_queued: bool
    max_per_hour: int
    def __init__(self, job_type: _Optional[str] = ..., max_queued: _Optional[int] = ..., queued: _Optional[int] = ..., exceeds_max_queued: _Optional[bool] = ..., max_per_hour: _Optional[int] = ...) -> None: ...

class BackfillPreview(_message.Message):
    __slots__ = ("window_count", "job_count", "suppressed_window_count", "estimated_duration", "limited_by", "quota_impact", "overlapping_backfill_ids")
    WINDOW_COUNT_FIELD_NUMBER: _ClassVar[int]
    JOB_COUNT_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_WINDOW_COUNT_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_DURATION_FIELD_NUMBER: _ClassVar[int]
    LIMITED_BY_FIELD_NUMBER: _ClassVar[int]
    QUOTA_IMPACT_FIELD_NUMBER: _ClassVar[int]
    OVERLAPPING_BACKFILL_IDS_FIELD_NUMBER: _ClassVar[int]
    window_count: int
    job_count: int
    suppressed_window_count: int
    estimated_duration: _duration_pb2.Duration
    limited_by: str
    quota_impact: _containers.RepeatedCompositeFieldContainer[BackfillQuotaImpact]
    overlapping_backfill_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, window_count: _Optional[int] = ..., job_count: _Optional[int] = ..., suppressed_window_count: _Optional[int] = ..., estimated_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., limited_by: _Optional[str] = ..., quota_impact: _Optional[_Iterable[_Union[BackfillQuotaImpact, _Mapping]]] = ..., overlapping_backfill_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateBackfillResponse(_message.Message):
    __slots__ = ("backfill", "existing", "preview")
    BACKFILL_FIELD_NUMBER: _ClassVar[int]
    EXISTING_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_FIELD_NUMBER: _ClassVar[int]
    backfill: _resources_pb2.Backfill
    existing: bool
    preview: BackfillPreview
    def __init__(self, backfill: _Optional[_Union[_resources_pb2.Backfill, _Mapping]] = ..., existing: _Optional[bool] = ..., preview: _Optional[_Union[BackfillPreview, _Mapping]] = ...) -> None: ...

class GetBackfillRequest(_message.Message):
    __slots__ = ("backfill_id",)
    BACKFILL_ID_FIELD_NUMBER: _ClassVar[int]
    backfill_id: str
    def __init__(self, backfill_id: _Optional[str] = ...) -> None: ...

class GetBackfillResponse(_message.Message):
    __slots__ = ("backfill",)
    BACKFILL_FIELD_NUMBER: _ClassVar[int]
    backfill: _resources_pb2.Backfill
    def __init__(self, backfill: _Optional[_Union[_resources_pb2.Backfill, _Mapping]] = ...) -> None: ...

class ListBackfillsRequest(_message.Message):
    __slots__ = ("source_id", "page_size", "page_token")
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    source_id: str
    page_size: int
    page_token: str
    def __init__(self, source_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListBackfillsResponse(_message.Message):
    __slots__ = ("backfills", "next_page_token")
    BACKFILLS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    backfills: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Backfill]
    next_page_token: str
    def __init__(self, backfills: _Optional[_Iterable[_Union[_resources_pb2.Backfill, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelBackfillRequest(_message.Message):
    __slots__ = ("backfill_id", "operator")
    BACKFILL_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    backfill_id: str
    operator: _common_pb2.OperatorContext
    def __init__(self, backfill_id: _Optional[str] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ...) -> None: ...

class CancelBackfillResponse(_message.Message):
    __slots__ = ("backfill",)
    BACKFILL_FIELD_NUMBER: _ClassVar[int]
    backfill: _resources_pb2.Backfill
    def __init__(self, backfill: _Optional[_Union[_resources_pb2.Backfill, _Mapping]] = ...) -> None: ...

class PauseJobsRequest(_message.Message):
    __slots__ = ("job_type", "operator")
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    job_type: str
    operator: _common_pb2.OperatorContext
    def __init__(self, job_type: _Optional[str] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ...) -> None: ...

class PauseJobsResponse(_message.Message):
    __slots__ = ("quota",)
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    quota: _resources_pb2.Quota
    def __init__(self, quota: _Optional[_Union[_resources_pb2.Quota, _Mapping]] = ...) -> None: ...

class ResumeJobsRequest(_message.Message):
    __slots__ = ("job_type", "operator")
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    job_type: str
    operator: _common_pb2.OperatorContext
    def __init__(self, job_type: _Optional[str] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ...) -> None: ...

class ResumeJobsResponse(_message.Message):
    __slots__ = ("quota",)
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    quota: _resources_pb2.Quota
    def __init__(self, quota: _Optional[_Union[_resources_pb2.Quota, _Mapping]] = ...) -> None: ...

class PrioritizeJobRequest(_message.Message):
    __slots__ = ("job_id", "priority", "operator")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    priority: int
    operator: _common_pb2.OperatorContext
    def __init__(self, job_id: _Optional[str] = ..., priority: _Optional[int] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ...) -> None: ...

class PrioritizeJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _resources_pb2.Job
    def __init__(self, job: _Optional[_Union[_resources_pb2.Job, _Mapping]] = ...) -> None: ...

class PrioritizeRunRequest(_message.Message):
    __slots__ = ("run_id", "priority", "operator")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    priority: int
    operator: _common_pb2.OperatorContext
    def __init__(self, run_id: _Optional[str] = ..., priority: _Optional[int] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ...) -> None: ...

class PrioritizeRunResponse(_message.Message):
    __slots__ = ("changed_jobs",)
    CHANGED_JOBS_FIELD_NUMBER: _ClassVar[int]
    changed_jobs: int
    def __init__(self, changed_jobs: _Optional[int] = ...) -> None: ...

class ReplayJobRequest(_message.Message):
    __slots__ = ("job_id", "operator")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    operator: _common_pb2.OperatorContext
    def __init__(self, job_id: _Optional[str] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ...) -> None: ...

class ReplayJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _resources_pb2.Job
    def __init__(self, job: _Optional[_Union[_resources_pb2.Job, _Mapping]] = ...) -> None: ...
