"""JSON shapes of the REST API, derived from the protobuf contract.

The REST resources are the protobuf messages of ``stella.orchestrator.v1`` rendered as JSON,
so the OpenAPI schemas are generated from the message descriptors instead of being written
twice: field names stay snake_case, enums become their lower-case label without the enum
prefix (``JOB_STATE_LEASED`` → ``"leased"``), timestamps RFC 3339 strings in UTC, durations
seconds (a number), ``Struct`` a JSON object, int64 a JSON integer, and an unset message
field ``null``. :func:`to_json` renders a message in exactly the shape :func:`model_for`
declares. Enum labels are ``orchestrator_grpckit``'s (``enum_label``), shared with the
services.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from pydantic import BaseModel, ConfigDict, Field, create_model

from orchestrator_grpckit import enum_label, enum_labels

_TIMESTAMP = "google.protobuf.Timestamp"
_DURATION = "google.protobuf.Duration"
_STRUCT = "google.protobuf.Struct"
_SKIPPED_MESSAGES = {"google.protobuf.FieldMask"}
_MODELS: dict[str, type[BaseModel]] = {}
_PAGES: dict[str, type[BaseModel]] = {}
_INT_TYPES = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED32,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED32,
    FieldDescriptor.TYPE_SFIXED64,
}
_FLOAT_TYPES = {FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT}


class ApiModel(BaseModel):
    """Base of every generated response model."""

    model_config = ConfigDict(extra="forbid")


def _is_map(field: Any) -> bool:
    return bool(
        field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry
    )


def _is_repeated(field: Any) -> bool:
    return bool(field.is_repeated)


def _scalar_type(field: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_ENUM:
        return Literal[enum_labels(field.enum_type)]
    if field.type in _INT_TYPES:
        return int
    if field.type in _FLOAT_TYPES:
        return float
    if field.type == FieldDescriptor.TYPE_BOOL:
        return bool
    if field.type == FieldDescriptor.TYPE_BYTES:
        return str  # base64
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        name = field.message_type.full_name
        if name == _TIMESTAMP:
            return datetime
        if name == _DURATION:
            return float
        if name == _STRUCT:
            return dict[str, Any]
        return model_for(field.message_type)
    return str


def model_for(descriptor: Any) -> type[BaseModel]:
    """The pydantic model (and so the OpenAPI schema) of a message's JSON rendering."""
    cached = _MODELS.get(descriptor.full_name)
    if cached is not None:
        return cached
    fields: dict[str, Any] = {}
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE and (
            field.message_type.full_name in _SKIPPED_MESSAGES
        ):
            continue
        if _is_map(field):
            key_type = _scalar_type(field.message_type.fields_by_name["key"])
            value_type = _scalar_type(field.message_type.fields_by_name["value"])
            fields[field.name] = (dict[key_type, value_type], Field(default_factory=dict))  # type: ignore[valid-type]
        elif _is_repeated(field):
            fields[field.name] = (list[_scalar_type(field)], Field(default_factory=list))  # type: ignore[misc]
        elif field.type == FieldDescriptor.TYPE_MESSAGE or field.has_presence:
            fields[field.name] = (_scalar_type(field) | None, None)
        else:
            fields[field.name] = (_scalar_type(field), ...)
    model = create_model(
        descriptor.name,
        __base__=ApiModel,
        __doc__=f"JSON rendering of protobuf message {descriptor.full_name}.",
        **fields,
    )
    _MODELS[descriptor.full_name] = model
    return model


def page_model(descriptor: Any) -> type[BaseModel]:
    """``{"items": [...], "next_page_token": "..."}`` of a message type."""
    cached = _PAGES.get(descriptor.full_name)
    if cached is not None:
        return cached
    item = model_for(descriptor)
    model = create_model(
        f"{descriptor.name}Page",
        __base__=ApiModel,
        __doc__=f"One page of {descriptor.name}; next_page_token is empty on the last page.",
        items=(list[item], ...),  # type: ignore[valid-type]
        next_page_token=(str, ""),
    )
    _PAGES[descriptor.full_name] = model
    return model


def _timestamp_json(message: Any) -> str:
    dt: datetime = message.ToDatetime(tzinfo=UTC)
    return dt.isoformat().replace("+00:00", "Z")


def _value_json(field: Any, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_ENUM:
        return enum_label(field.enum_type, value)
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        name = field.message_type.full_name
        if name == _TIMESTAMP:
            return _timestamp_json(value)
        if name == _DURATION:
            return value.seconds + value.nanos / 1e9
        if name == _STRUCT:
            return json_format.MessageToDict(value)
        return to_json(value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        import base64

        return base64.b64encode(value).decode()
    return value


def to_json(message: Message) -> dict[str, Any]:
    """Render a message in the shape of :func:`model_for` (every field present)."""
    out: dict[str, Any] = {}
    fields: list[Any] = list(message.DESCRIPTOR.fields)
    for field in fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE and (
            field.message_type.full_name in _SKIPPED_MESSAGES
        ):
            continue
        value = getattr(message, field.name)
        if _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            out[field.name] = {k: _value_json(value_field, v) for k, v in sorted(value.items())}
        elif _is_repeated(field):
            out[field.name] = [_value_json(field, v) for v in value]
        elif field.type == FieldDescriptor.TYPE_MESSAGE or field.has_presence:
            out[field.name] = _value_json(field, value) if message.HasField(field.name) else None
        else:
            out[field.name] = _value_json(field, value)
    return out
