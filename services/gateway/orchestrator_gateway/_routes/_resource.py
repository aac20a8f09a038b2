"""Routes named by convention from a resource's noun (see :class:`Resource`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel

from orchestrator_gateway._routes._deps import Operator, Reader, Tags
from orchestrator_gateway._routes._factory import (
    PAGING,
    Call,
    Filter,
    Page,
    ReasonRule,
    Returns,
    Rpc,
    field_mask,
    render,
    route,
)

Handler = Callable[[Call], Awaitable[Any]]


class Resource:
    """The routes of one REST resource, named by convention from its noun.

    ``Resource(router, "source")`` serves ``/sources`` and ``/sources/{source_id}`` with the
    RPCs ``ListSources``, ``GetSource``, ``CreateSource``, ``UpdateSource``,
    ``DeleteSource`` and ``<Verb>Source``, as the operations ``list_sources``,
    ``get_source``, ``create_source``, ... and ``<verb>_source``. Reads need orch:read, writes
    the ``writer`` scope. Keyword arguments name things where the contract names them
    otherwise. :meth:`handler` registers a hand-written handler for a route that does more
    than one RPC.
    """

    def __init__(
        self,
        router: APIRouter,
        noun: str,
        *,
        plural: str = "",
        path: str = "",
        id: str = "",
        field: str = "",
        service: str = "scheduler",
        tags: Tags | None = None,
        writer: Any = Operator,
    ) -> None:
        self.router = router
        self.noun = noun
        self.plural = plural or f"{noun}s"
        self.path = path or f"/{self.plural}"
        self.item = f"{self.path}/{{{id or f'{noun}_id'}}}"
        self.field = field or noun  # the request/response field holding one resource
        self.service = service
        self.tags: Tags = tags or [self.plural]
        self.writer = writer

    def rpc(self, verb: str, noun: str = "") -> Rpc:
        """``rpc("Get")`` is ``Get<Noun>``; ``rpc("List", "job_events")`` is ``ListJobEvents``."""
        words = (noun or self.noun).split("_")
        return Rpc(self.service, verb + "".join(w.title() for w in words))

    def handler(
        self,
        method: str,
        path: str = "",
        *,
        model: Any,
        body: type[BaseModel] | None = None,
        reason: ReasonRule = "required",
        who: Any = None,
        tags: Tags | None = None,
        **kw: Any,
    ) -> Callable[[Handler], Handler]:
        """Register the decorated function as the route ``method path`` (default: the
        collection), named after it and documented by its doc string; it gets a :class:`Call`.
        A write needs the ``writer`` scope and, unless said otherwise, a reason."""

        def register(handle: Handler) -> Handler:
            reads = method == "GET"
            route(
                self.router,
                method,
                path or self.path,
                handle,
                name=handle.__name__,
                doc=handle.__doc__ or "",
                tags=tags or self.tags,
                who=who or (Reader if reads else self.writer),
                reason="none" if reads else reason,
                body=body,
                response_model=model,
                **kw,
            )
            return handle

        return register

    def list(self, doc: str, *filters: Filter, items: str = "", **where: Any) -> None:
        """``GET /<plural>``: one page of the ``items`` (default: the plural) of
        ``List<Plural>``, filtered by the query ``filters``; ``where`` as for :meth:`get`."""
        where.setdefault("path", self.path)
        where.setdefault("rpc", self.rpc("List", self.plural))
        where.setdefault("name", f"list_{self.plural}")
        self.get(doc, *filters, *PAGING, returns=Page(items or self.plural), **where)

    def get(
        self,
        doc: str,
        *filters: Filter,
        path: str = "",
        rpc: Rpc | None = None,
        returns: Returns = "",
        name: str = "",
        tags: Tags | None = None,
    ) -> None:
        """``GET /<plural>/{id}``: the resource ``Get<Noun>`` answers, or ``returns`` of
        ``rpc``'s answer (see :func:`render`), with the query ``filters``."""
        rpc = rpc or self.rpc("Get")
        answer = self.field if returns == "" else returns

        async def handle(call: Call) -> dict[str, Any]:
            return render(await call(rpc), answer)

        model = rpc.model(answer)
        register = self.handler("GET", path or self.item, model=model, filters=filters, tags=tags)
        register(_named(handle, name or f"get_{self.noun}", doc))

    def create(self, body: type[BaseModel], doc: str, reason: ReasonRule = "required") -> None:
        """``POST /<plural>``: create the resource the body describes field for field (201)."""
        rpc, field = self.rpc("Create"), self.field
        message = rpc.message(field)

        async def handle(call: Call) -> dict[str, Any]:
            created = message(**call.body.model_dump())
            return render(await call(rpc, operator=call.operator, **{field: created}), field)

        register = self.handler(
            "POST", model=rpc.model(field), body=body, reason=reason, status_code=201
        )
        register(_named(handle, f"create_{self.noun}", doc))

    def update(self, body: type[BaseModel], doc: str, reason: ReasonRule = "required") -> None:
        """``PATCH /<plural>/{id}``: change the fields the body sends (:func:`field_mask`)."""
        rpc, field = self.rpc("Update"), self.field
        message = rpc.message(field)

        async def handle(call: Call) -> dict[str, Any]:
            (resource_id,) = call.fields.values()
            values, mask = field_mask(call.body, message)
            changed = message(id=resource_id, **values)
            request = rpc.request(update_mask=mask, operator=call.operator, **{field: changed})
            return render(await call.send(rpc, request), field)

        register = self.handler(
            "PATCH", self.item, model=rpc.model(field), body=body, reason=reason
        )
        register(_named(handle, f"update_{self.noun}", doc))

    def delete(self, doc: str) -> None:
        """``DELETE /<plural>/{id}`` (204; reason required)."""
        rpc = self.rpc("Delete")

        async def handle(call: Call) -> Response:
            await call(rpc, operator=call.operator)
            return Response(status_code=204)

        register = self.handler("DELETE", self.item, model=None, status_code=204)
        register(_named(handle, f"delete_{self.noun}", doc))

    def command(
        self,
        verb: str,
        doc: str,
        *,
        body: type[BaseModel] | None = None,
        returns: Returns = "",
        every: bool = False,
    ) -> None:
        """``POST /<plural>/{id}/<verb>`` (``every``: ``POST /<plural>/<verb>``, on all of
        them): the RPC ``<Verb><Noun>`` with the path's id, the body's fields and the reason."""
        noun = self.plural if every else self.noun
        rpc = self.rpc(verb.title(), noun)
        returns = self.field if returns == "" else returns

        async def handle(call: Call) -> dict[str, Any]:
            fields = call.body.model_dump() if call.body is not None else {}
            return render(await call(rpc, operator=call.operator, **fields), returns)

        path = f"{self.path if every else self.item}/{verb}"
        register = self.handler("POST", path, model=rpc.model(returns), body=body)
        register(_named(handle, f"{verb}_{noun}", doc))


def _named(handle: Handler, name: str, doc: str) -> Handler:
    handle.__name__ = name
    handle.__doc__ = doc
    return handle
