import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from stella.orchestrator.v1 import common_pb2 as _common_pb2
from stella.orchestrator.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Weekday(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WEEKDAY_UNSPECIFIED: _ClassVar[Weekday]
    WEEKDAY_MONDAY: _ClassVar[Weekday]
    WEEKDAY_TUESDAY: _ClassVar[Weekday]
    WEEKDAY_WEDNESDAY: _ClassVar[Weekday]
    WEEKDAY_THURSDAY: _ClassVar[Weekday]
    WEEKDAY_FRIDAY: _ClassVar[Weekday]
    WEEKDAY_SATURDAY: _ClassVar[Weekday]
    WEEKDAY_SUNDAY: _ClassVar[Weekday]
WEEKDAY_UNSPECIFIED: Weekday
WEEKDAY_MONDAY: Weekday
WEEKDAY_TUESDAY: Weekday
WEEKDAY_WEDNESDAY: Weekday
WEEKDAY_THURSDAY: Weekday
WEEKDAY_FRIDAY: Weekday
WEEKDAY_SATURDAY: Weekday
WEEKDAY_SUNDAY: Weekday

class BucketKey(_message.Message):
    __slots__ = ("tenant", "host")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    host: str
    def __init__(self, tenant: _Optional[str] = ..., host: _Optional[str] = ...) -> None: ...

class Bucket(_message.Message):
    __slots__ = ("key", "capacity", "refill_per_second", "effective_refill_per_second", "tokens", "paused_until", "reason", "circuit_state", "updated_at", "override_until")
    KEY_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    REFILL_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_REFILL_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    PAUSED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CIRCUIT_STATE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    OVERRIDE_UNTIL_FIELD_NUMBER: _ClassVar[int]
    key: BucketKey
    capacity: int
    refill_per_second: float
    effective_refill_per_second: float
    tokens: float
    paused_until: _timestamp_pb2.Timestamp
    reason: str
    circuit_state: _common_pb2.CircuitState
    updated_at: _timestamp_pb2.Timestamp
    override_until: _timestamp_pb2.Timestamp
    def __init__(self, key: _Optional[_Union[BucketKey, _Mapping]] = ..., capacity: _Optional[int] = ..., refill_per_second: _Optional[float] = ..., effective_refill_per_second: _Optional[float] = ..., tokens: _Optional[float] = ..., paused_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., circuit_state: _Optional[_Union[_common_pb2.CircuitState, str]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., override_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AcquireRequestItem(_message.Message):
    __slots__ = ("key", "tokens", "source_id", "partial")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    key: BucketKey
    tokens: int
    source_id: str
    partial: bool
    def __init__(self, key: _Optional[_Union[BucketKey, _Mapping]] = ..., tokens: _Optional[int] = ..., source_id: _Optional[str] = ..., partial: _Optional[bool] = ...) -> None: ...

class AcquireRequest(_message.Message):
    __slots__ = ("items", "now")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NOW_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[AcquireRequestItem]
    now: _timestamp_pb2.Timestamp
    def __init__(self, items: _Optional[_Iterable[_Union[AcquireRequestItem, _Mapping]]] = ..., now: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AcquireGrant(_message.Message):
    __slots__ = ("key", "granted", "retry_after", "available_at", "remaining", "deny_reason", "granted_tokens")
    KEY_FIELD_NUMBER: _ClassVar[int]
    GRANTED_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_AT_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    DENY_REASON_FIELD_NUMBER: _ClassVar[int]
    GRANTED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    key: BucketKey
    granted: bool
    retry_after: _duration_pb2.Duration
    available_at: _timestamp_pb2.Timestamp
    remaining: float
    deny_reason: str
    granted_tokens: int
    def __init__(self, key: _Optional[_Union[BucketKey, _Mapping]] = ..., granted: _Optional[bool] = ..., retry_after: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., available_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., remaining: _Optional[float] = ..., deny_reason: _Optional[str] = ..., granted_tokens: _Optional[int] = ...) -> None: ...

class AcquireResponse(_message.Message):
    __slots__ = ("grants",)
    GRANTS_FIELD_NUMBER: _ClassVar[int]
    grants: _containers.RepeatedCompositeFieldContainer[AcquireGrant]
    def __init__(self, grants: _Optional[_Iterable[_Union[AcquireGrant, _Mapping]]] = ...) -> None: ...

class ReportThrottleRequest(_message.Message):
    __slots__ = ("key", "error_class", "retry_after", "reason", "operator", "source_id", "job_id")
    KEY_FIELD_NUMBER: _ClassVar[int]
    ERROR_CLASS_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    key: BucketKey
    error_class: _common_pb2.ErrorClass
    retry_after: _duration_pb2.Duration
    reason: str
    operator: _common_pb2.OperatorContext
    source_id: str
    job_id: str
    def __init__(self, key: _Optional[_Union[BucketKey, _Mapping]] = ..., error_class: _Optional[_Union[_common_pb2.ErrorClass, str]] = ..., retry_after: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., reason: _Optional[str] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ..., source_id: _Optional[str] = ..., job_id: _Optional[str] = ...) -> None: ...

class ReportThrottleResponse(_message.Message):
    __slots__ = ("bucket", "throttle")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    THROTTLE_FIELD_NUMBER: _ClassVar[int]
    bucket: Bucket
    throttle: _resources_pb2.Throttle
    def __init__(self, bucket: _Optional[_Union[Bucket, _Mapping]] = ..., throttle: _Optional[_Union[_resources_pb2.Throttle, _Mapping]] = ...) -> None: ...

class ConfigureBucketRequest(_message.Message):
    __slots__ = ("key", "capacity", "refill_per_second", "operator")
    KEY_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    REFILL_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    key: BucketKey
    capacity: int
    refill_per_second: float
    operator: _common_pb2.OperatorContext
    def __init__(self, key: _Optional[_Union[BucketKey, _Mapping]] = ..., capacity: _Optional[int] = ..., refill_per_second: _Optional[float] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ...) -> None: ...

class ConfigureBucketResponse(_message.Message):
    __slots__ = ("bucket",)
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    bucket: Bucket
    def __init__(self, bucket: _Optional[_Union[Bucket, _Mapping]] = ...) -> None: ...

class GetBucketRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: BucketKey
    def __init__(self, key: _Optional[_Union[BucketKey, _Mapping]] = ...) -> None: ...

class GetBucketResponse(_message.Message):
    __slots__ = ("bucket",)
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    bucket: Bucket
    def __init__(self, bucket: _Optional[_Union[Bucket, _Mapping]] = ...) -> None: ...

class ListBucketsRequest(_message.Message):
    __slots__ = ("tenant", "page_size", "page_token")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    page_size: int
    page_token: str
    def __init__(self, tenant: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListBucketsResponse(_message.Message):
    __slots__ = ("buckets", "next_page_token")
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    buckets: _containers.RepeatedCompositeFieldContainer[Bucket]
    next_page_token: str
    def __init__(self, buckets: _Optional[_Iterable[_Union[Bucket, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SetThrottleOverrideRequest(_message.Message):
    __slots__ = ("key", "refill_per_second", "until", "operator", "source_id")
    KEY_FIELD_NUMBER: _ClassVar[int]
    REFILL_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    key: BucketKey
    refill_per_second: float
    until: _timestamp_pb2.Timestamp
    operator: _common_pb2.OperatorContext
    source_id: str
    def __init__(self, key: _Optional[_Union[BucketKey, _Mapping]] = ..., refill_per_second: _Optional[float] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ..., source_id: _Optional[str] = ...) -> None: ...

class SetThrottleOverrideResponse(_message.Message):
    __slots__ = ("throttle", "bucket")
    THROTTLE_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    throttle: _resources_pb2.Throttle
    bucket: Bucket
    def __init__(self, throttle: _Optional[_Union[_resources_pb2.Throttle, _Mapping]] = ..., bucket: _Optional[_Union[Bucket, _Mapping]] = ...) -> None: ...

class ClearThrottleOverrideRequest(_message.Message):
    __slots__ = ("key", "operator")
    KEY_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    key: BucketKey
    operator: _common_pb2.OperatorContext
    def __init__(self, key: _Optional[_Union[BucketKey, _Mapping]] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ...) -> None: ...

class ClearThrottleOverrideResponse(_message.Message):
    __slots__ = ("bucket",)
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    bucket: Bucket
    def __init__(self, bucket: _Optional[_Union[Bucket, _Mapping]] = ...) -> None: ...

class Circuit(_message.Message):
    __slots__ = ("key", "state", "failure_count", "request_count", "opened_at", "half_open_at", "last_error_class", "updated_at")
    KEY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_COUNT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_COUNT_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_FIELD_NUMBER: _ClassVar[int]
    HALF_OPEN_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_CLASS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    key: BucketKey
    state: _common_pb2.CircuitState
    failure_count: int
    request_count: int
    opened_at: _timestamp_pb2.Timestamp
    half_open_at: _timestamp_pb2.Timestamp
    last_error_class: _common_pb2.ErrorClass
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, key: _Optional[_Union[BucketKey, _Mapping]] = ..., state: _Optional[_Union[_common_pb2.CircuitState, str]] = ..., failure_count: _Optional[int] = ..., request_count: _Optional[int] = ..., opened_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., half_open_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_error_class: _Optional[_Union[_common_pb2.ErrorClass, str]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetCircuitRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: BucketKey
    def __init__(self, key: _Optional[_Union[BucketKey, _Mapping]] = ...) -> None: ...

class GetCircuitResponse(_message.Message):
    __slots__ = ("circuit",)
    CIRCUIT_FIELD_NUMBER: _ClassVar[int]
    circuit: Circuit
    def __init__(self, circuit: _Optional[_Union[Circuit, _Mapping]] = ...) -> None: ...

class ListCircuitsRequest(_message.Message):
    __slots__ = ("tenant", "states", "page_size", "page_token")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    states: _containers.RepeatedScalarFieldContainer[_common_pb2.CircuitState]
    page_size: int
    page_token: str
    def __init__(self, tenant: _Optional[str] = ..., states: _Optional[_Iterable[_Union[_common_pb2.CircuitState, str]]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCircuitsResponse(_message.Message):
    __slots__ = ("circuits", "next_page_token")
    CIRCUITS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    circuits: _containers.RepeatedCompositeFieldContainer[Circuit]
    next_page_token: str
    def __init__(self, circuits: _Optional[_Iterable[_Union[Circuit, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WeeklyRecurrence(_message.Message):
    __slots__ = ("days", "start_minute_utc", "duration")
    DAYS_FIELD_NUMBER: _ClassVar[int]
    START_MINUTE_UTC_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    days: _containers.RepeatedScalarFieldContainer[Weekday]
    start_minute_utc: int
    duration: _duration_pb2.Duration
    def __init__(self, days: _Optional[_Iterable[_Union[Weekday, str]]] = ..., start_minute_utc: _Optional[int] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class CronRecurrence(_message.Message):
    __slots__ = ("expression", "duration")
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    expression: str
    duration: _duration_pb2.Duration
    def __init__(self, expression: _Optional[str] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class BlackoutRecurrence(_message.Message):
    __slots__ = ("weekly", "cron")
    WEEKLY_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    weekly: WeeklyRecurrence
    cron: CronRecurrence
    def __init__(self, weekly: _Optional[_Union[WeeklyRecurrence, _Mapping]] = ..., cron: _Optional[_Union[CronRecurrence, _Mapping]] = ...) -> None: ...

class Blackout(_message.Message):
    __slots__ = ("id", "tenant", "source_id", "start", "end", "recurrence", "reason", "ticket", "created_by", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    RECURRENCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TICKET_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: str
    source_id: str
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    recurrence: BlackoutRecurrence
    reason: str
    ticket: str
    created_by: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ..., source_id: _Optional[str] = ..., start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., recurrence: _Optional[_Union[BlackoutRecurrence, _Mapping]] = ..., reason: _Optional[str] = ..., ticket: _Optional[str] = ..., created_by: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SetBlackoutRequest(_message.Message):
    __slots__ = ("blackout", "operator")
    BLACKOUT_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    blackout: Blackout
    operator: _common_pb2.OperatorContext
    def __init__(self, blackout: _Optional[_Union[Blackout, _Mapping]] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ...) -> None: ...

class SetBlackoutResponse(_message.Message):
    __slots__ = ("blackout",)
    BLACKOUT_FIELD_NUMBER: _ClassVar[int]
    blackout: Blackout
    def __init__(self, blackout: _Optional[_Union[Blackout, _Mapping]] = ...) -> None: ...

class ListBlackoutsRequest(_message.Message):
    __slots__ = ("source_id", "page_size", "page_token")
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    source_id: str
    page_size: int
    page_token: str
    def __init__(self, source_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListBlackoutsResponse(_message.Message):
    __slots__ = ("blackouts", "next_page_token")
    BLACKOUTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    blackouts: _containers.RepeatedCompositeFieldContainer[Blackout]
    next_page_token: str
    def __init__(self, blackouts: _Optional[_Iterable[_Union[Blackout, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteBlackoutRequest(_message.Message):
    __slots__ = ("blackout_id", "operator")
    BLACKOUT_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    blackout_id: str
    operator: _common_pb2.OperatorContext
    def __init__(self, blackout_id: _Optional[str] = ..., operator: _Optional[_Union[_common_pb2.OperatorContext, _Mapping]] = ...) -> None: ...

class DeleteBlackoutResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
