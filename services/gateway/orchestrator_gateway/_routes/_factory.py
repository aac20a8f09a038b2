"""How a uniform route is made: one RPC, declared as data instead of written out.

Most routes read their path parameters and query filters (request fields of the same name) or
a body, call one RPC as the caller, and answer part of the response as JSON. What differs
between them is data: the path, the RPC, the scope, whether an operator reason is required,
the filters, the part answered. :func:`route` turns that data and a handler into an endpoint
with a real signature, so FastAPI validates and documents it exactly as a hand-written
function (the name is the operation id and the summary, the doc the description);
``_resource.Resource`` names the data by convention. The rules every route made here
follows, so no route module repeats them:

- Lists are cursor-paged: ``page_size`` (1-500, default 50) and ``page_token`` go into the
  request; the answer is ``{"items": [...], "next_page_token": "..."}`` (:class:`Page`).
- A filter left at None is not sent (the RPC's "any"); enum labels become their numbers.
- The field-mask rule of every PATCH (:func:`field_mask`).
- Writes carry the operator context (:attr:`Call.operator`); a POST documents
  Idempotency-Key and a route that requires a reason the reason headers
  (``_deps.header_doc``).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from google.protobuf import field_mask_pb2, message_factory
from google.protobuf.message import Message
from pydantic import BaseModel

from orchestrator_gateway._auth import Caller, OperatorReason
from orchestrator_gateway._clients import Clients
from orchestrator_gateway._models import model_for, page_model, to_json
from orchestrator_gateway._problems import ProblemError
from orchestrator_gateway._routes._deps import (
    Grpc,
    OptionalReason,
    PageSize,
    PageToken,
    Reader,
    Reason,
    Tags,
    header_doc,
    labels,
    operator_ctx,
)
from orchestrator_grpckit import enum_number
from stella.orchestrator.v1 import audit_pb2, events_pb2, ratelimit_pb2, scheduler_pb2, webhooks_pb2

ReasonRule = Literal["required", "optional", "none"]


@dataclass(frozen=True)
class Page:
    """A page of the repeated field ``items`` and the ``next_page_token`` of an answer."""

    items: str


# What a route answers: the whole response (None), one field of it, a page, or the fields a
# hand-declared response model names.
Returns = str | Page | type[BaseModel] | None

_SCHEDULER = scheduler_pb2.DESCRIPTOR.services_by_name["SchedulerService"]
_SERVICES = {  # Clients attribute -> the service its stub calls
    "scheduler": _SCHEDULER,
    "operations": _SCHEDULER,
    "events": events_pb2.DESCRIPTOR.services_by_name["EventStreamService"],
    "ratelimit": ratelimit_pb2.DESCRIPTOR.services_by_name["RateLimitService"],
    "audit": audit_pb2.DESCRIPTOR.services_by_name["AuditService"],
    "webhooks": webhooks_pb2.DESCRIPTOR.services_by_name["WebhookService"],
}
# Sent beside the fields a PATCH changes, never in its mask: the expected version.
_GUARDS = {"version"}


@dataclass(frozen=True)
class Rpc:
    """One unary method of a service the gateway calls, e.g. ``Rpc("scheduler", "GetJob")``."""

    stub: str
    method: str

    @property
    def descriptor(self) -> Any:
        return _SERVICES[self.stub].methods_by_name[self.method]

    def request(self, **fields: Any) -> Any:
        return message_factory.GetMessageClass(self.descriptor.input_type)(**fields)

    def message(self, field: str) -> Any:
        """The message class of one request field (the resource of a create or update)."""
        return message_factory.GetMessageClass(
            self.descriptor.input_type.fields_by_name[field].message_type
        )

    def model(self, returns: Returns) -> Any:
        """The response model of what a route answers (see :func:`render`)."""
        output = self.descriptor.output_type
        if returns is None:
            return model_for(output)
        if isinstance(returns, str):
            return model_for(output.fields_by_name[returns].message_type)
        if isinstance(returns, Page):
            return page_model(output.fields_by_name[returns.items].message_type)
        return returns


@dataclass(frozen=True)
class Filter:
    """A query (or path) parameter that fills one request field."""

    name: str
    annotation: Any
    default: Any = ""
    field: str = ""  # the request field; empty: the parameter's name
    convert: Callable[[Any], Any] | None = None

    def fill(self, fields: dict[str, Any], value: Any) -> None:
        if value is not None:
            fields[self.field or self.name] = self.convert(value) if self.convert else value


def flag(name: str) -> Filter:
    """A yes/no filter; absent means either."""
    return Filter(name, bool | None, None)


def one_of(name: str, enum: Any, default: str | None = None) -> Filter:
    """An enum filter by label; without a default, absent means any."""
    label = labels(enum)
    return Filter(
        name,
        label if default else label | None,
        default,
        convert=lambda value: enum_number(enum, value),
    )


def any_of(name: str, enum: Any, max_length: int) -> Filter:
    """A repeatable enum filter (``?state=a&state=b``) into the plural request field."""
    return Filter(
        name,
        Annotated[list[labels(enum)], Query(max_length=max_length)],  # type: ignore[misc]
        [],
        field=f"{name}s",
        convert=lambda values: [enum_number(enum, v) for v in values],
    )


PAGING = (Filter("page_size", PageSize, 50), Filter("page_token", PageToken, ""))


@dataclass(frozen=True)
class Call:
    """One request to a route: the caller, the clients, the reason, the body and the request
    fields its path and query parameters filled."""

    who: Caller
    grpc_: Clients
    why: OperatorReason | None
    body: Any
    fields: dict[str, Any]

    async def __call__(self, rpc: Rpc, **fields: Any) -> Any:
        """Call ``rpc`` with the route's request fields and ``fields``."""
        return await self.send(rpc, rpc.request(**self.fields, **fields))

    async def send(self, rpc: Rpc, request: Any) -> Any:
        """Call ``rpc`` with ``request`` as the caller."""
        stub = getattr(self.grpc_, rpc.stub)
        return await self.grpc_.call(self.who, getattr(stub, rpc.method), request)

    @property
    def operator(self) -> Any:
        assert self.why is not None, "a command route has a reason dependency"
        return operator_ctx(self.why)


def render(message: Any, returns: Returns) -> dict[str, Any]:
    """The JSON answer: the whole message, one field, a page, or the fields a response model
    names."""
    if returns is None:
        return to_json(message)
    if isinstance(returns, str):
        return to_json(getattr(message, returns))
    if isinstance(returns, Page):
        items = [to_json(item) for item in getattr(message, returns.items)]
        return {"items": items, "next_page_token": message.next_page_token}
    return {name: _field_json(message, name) for name in returns.model_fields}


def _field_json(message: Message, name: str) -> Any:
    field = message.DESCRIPTOR.fields_by_name[name]
    value = getattr(message, name)
    if field.message_type is None:
        return list(value) if field.is_repeated else value
    return [to_json(v) for v in value] if field.is_repeated else to_json(value)


def field_mask(body: BaseModel, message: Any) -> tuple[dict[str, Any], Any]:
    """The field-mask rule of every PATCH: the fields the client sent with a value (a null is
    the same as absent) are changed and named in the mask, in name order; enum labels become
    numbers; a guard (``version``) is sent beside them, not masked. Nothing to change is 400.

    Returns:
        The message fields to set and the ``FieldMask``.
    """
    sent = body.model_dump(exclude_unset=True, exclude=_GUARDS)
    values = {name: value for name, value in sent.items() if value is not None}
    if not values:
        raise ProblemError(400, "nothing to change: send at least one field")
    mask = field_mask_pb2.FieldMask(paths=sorted(values))
    for name, value in values.items():
        enum = message.DESCRIPTOR.fields_by_name[name].enum_type
        if enum is not None:
            values[name] = enum_number(enum, value)
    guards = {name: getattr(body, name) for name in _GUARDS if name in type(body).model_fields}
    return values | guards, mask


def route(
    router: APIRouter,
    method: str,
    path: str,
    handle: Callable[[Call], Awaitable[Any]],
    *,
    name: str,
    doc: str,
    tags: Tags,
    who: Any = Reader,
    reason: ReasonRule = "none",
    body: type[BaseModel] | None = None,
    filters: Sequence[Filter] = (),
    response_model: Any = None,
    status_code: int | None = None,
) -> None:
    """Register ``handle`` as the endpoint ``name`` of ``method path``.

    Path parameters fill the request fields of their names, then ``filters`` (query
    parameters) in order; ``who`` is the scope dependency (``_deps.Reader`` ...).
    """
    ids = [Filter(p, str, inspect.Parameter.empty) for p in re.findall(r"{(\w+)}", path)]
    inputs = [*ids, *filters]
    depends: list[tuple[str, Any]] = [("body", body)] if body is not None else []
    depends += [("who", who), ("grpc_", Grpc)]
    if reason != "none":
        depends.append(("why", Reason if reason == "required" else OptionalReason))
    params = [_param(f.name, f.annotation, f.default) for f in ids]
    params += [_param(n, a) for n, a in depends]
    params += [_param(f.name, f.annotation, f.default) for f in filters]

    async def endpoint(**values: Any) -> Any:
        fields: dict[str, Any] = {}
        for item in inputs:
            item.fill(fields, values[item.name])
        return await handle(
            Call(values["who"], values["grpc_"], values.get("why"), values.get("body"), fields)
        )

    endpoint.__name__ = endpoint.__qualname__ = name
    endpoint.__doc__ = doc
    endpoint.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    options: dict[str, Any] = {"status_code": status_code} if status_code else {}
    if status_code == 204:
        options["response_class"] = Response
    router.add_api_route(
        path,
        endpoint,
        methods=[method],
        name=name,
        response_model=response_model,
        tags=tags,
        openapi_extra=header_doc(method, reason == "required"),
        **options,
    )


def _param(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> Any:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )
