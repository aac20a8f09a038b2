"""The uniform List and Get RPCs: filters or an id from the request, rows from a store,
rows to messages.

Most List RPCs of SchedulerService differ only in their filters, their store method and their
message; :func:`list_method` builds such a method from those three, so the paging rule
(``orchestrator_core.paging``) and the tenant come from one place. Lists that do more per
page (run job counts, job parents) are written by hand. :func:`get_method` does the same for
a Get RPC that reads one row by id.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

from orchestrator_core import paging
from orchestrator_grpckit import current_principal
from orchestrator_pg import Row, Stores
from orchestrator_scheduler._validate import parse_id_or_raise

ListFn = Callable[..., Awaitable[list[Row]]]


def list_method(
    response: Callable[..., Any],
    field: str,
    message: Callable[[Row], Any],
    fetch: Callable[[Stores], ListFn],
    filters: Callable[[Any], Mapping[str, Any]],
    cursor: paging.Cursor = paging.BY_ID,
) -> Any:
    """A List RPC method for a servicer that has ``stores`` (typed ``Any``: it takes the
    place of the generated servicer's method, whose stub type it cannot spell).

    Args:
        response: the response message class.
        field: its repeated field of resources.
        message: converts one row to its resource message.
        fetch: picks the store's list method (``lambda s: s.quotas.quota_list``); it is
            called as ``(tenant, **filters, <cursor arg>=..., limit=...)``.
        filters: validates the request's filters and returns them as the store's keyword
            arguments (they also bind the page token, so a token only fits its filters).
        cursor: the order of the list.
    """

    async def method(self: Any, request: Any, context: Any) -> Any:
        principal = current_principal()
        bound = dict(filters(request))
        rows, token = await paging.page(
            request, bound, partial(fetch(self.stores), principal.tenant, **bound), cursor
        )
        return response(**{field: [message(r) for r in rows]}, next_page_token=token)

    return method


def get_method(
    response: Callable[..., Any],
    field: str,
    message: Callable[[Row], Any],
    fetch: Callable[[Stores], Callable[..., Awaitable[Row]]],
    id_field: str,
) -> Any:
    """A Get RPC method for a servicer that has ``stores``: one row by id, of the caller's
    tenant (typed ``Any`` for the reason :func:`list_method` gives).

    Args:
        response: the response message class.
        field: its resource field.
        message: converts the row to its resource message.
        fetch: picks the store's get method (``lambda s: s.quotas.quota_get``); it is
            called as ``(tenant, id)`` and raises ``NotFound``.
        id_field: the request's id field (a UUID; a malformed one is INVALID_ARGUMENT).
    """

    async def method(self: Any, request: Any, context: Any) -> Any:
        principal = current_principal()
        row_id = parse_id_or_raise(getattr(request, id_field), id_field)
        row = await fetch(self.stores)(principal.tenant, row_id)
        return response(**{field: message(row)})

    return method
