"""A small REST client of the orchestrator gateway (``/api/v1/orchestrator``), used by the CLI.

Errors are RFC 9457 problem documents; :class:`RestError` carries the HTTP status and the
problem body so callers can tell "not found / denied" from other failures.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

API_PATH = "/api/v1/orchestrator"
DEFAULT_TIMEOUT_S = 30.0


class RestError(Exception):
    """A failed REST call.

    Attributes:
        status: HTTP status (0 when the gateway could not be reached).
        problem: The problem+json body (``{}`` when there was none).
    """

    def __init__(self, status: int, message: str, problem: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.problem = problem or {}


class RestClient:
    """Calls the gateway as one caller (bearer token, optional tenant).

    Args:
        api_url: Base URL of the gateway, e.g. ``http://127.0.0.1:8080``.
        token: Bearer token.
        tenant: Tenant to act for when the token names several.
        timeout_s: Per-request timeout.
    """

    def __init__(
        self,
        api_url: str,
        token: str,
        tenant: str | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if tenant:
            headers["X-Stella-Tenant"] = tenant
        self._http = httpx.Client(
            base_url=api_url.rstrip("/") + API_PATH,
            headers=headers,
            timeout=timeout_s,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        reason: str | None = None,
        ticket: str | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """One call; returns the decoded JSON body (``None`` for 204).

        Raises:
            RestError: The gateway answered with an error or could not be reached.
        """
        headers: dict[str, str] = {}
        if reason:
            headers["X-Stella-Operator-Reason"] = reason
        if ticket:
            headers["X-Stella-Operator-Ticket"] = ticket
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "", [])}
        try:
            resp = self._http.request(method, path, params=clean, json=json, headers=headers)
        except httpx.HTTPError as exc:
            raise RestError(0, f"cannot reach the gateway: {exc}") from exc
        if resp.status_code == 204:
            return None
        _raise_for_problem(resp)
        if not resp.headers.get("content-type", "").startswith("application/json"):
            return resp.content
        return resp.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def events(
        self, path: str, *, last_event_id: int | None, **params: Any
    ) -> Iterator[tuple[str, Any]]:
        """Server-Sent Events of ``path`` as they arrive: ``("head", head_seq)`` first (the
        stream's opening comment), then ``("event", event JSON)`` and ``("keep-alive",
        head_seq)`` until the server ends the stream. ``last_event_id`` resumes after that seq.

        Raises:
            RestError: The stream was refused, or the connection failed (status 0).
        """
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        clean = {k: v for k, v in params.items() if v not in (None, "", [])}
        # No read timeout: an idle stream is kept alive by the server's comments.
        timeout = httpx.Timeout(self._http.timeout.connect, read=None)
        try:
            with self._http.stream(
                "GET", path, params=clean, headers=headers, timeout=timeout
            ) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    _raise_for_problem(resp)
                data: list[str] = []
                for line in resp.iter_lines():
                    if line.startswith(":"):
                        comment = line[1:].strip()
                        kind, _, head = comment.partition(" head_seq=")
                        if head.isdigit():
                            yield ("head" if kind == "open" else "keep-alive", int(head))
                    elif line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif not line and data:
                        yield ("event", json.loads("\n".join(data)))
                        data = []
        except httpx.HTTPError as exc:
            raise RestError(0, f"event stream interrupted: {exc}") from exc

    def pages(self, path: str, *, follow: bool, **params: Any) -> Iterator[dict[str, Any]]:
        """Yield pages of a list endpoint; with ``follow`` until the last page."""
        token = params.pop("page_token", "") or ""
        while True:
            page = self.request("GET", path, params={**params, "page_token": token})
            yield page
            token = page.get("next_page_token", "")
            if not follow or not token:
                return


def _raise_for_problem(resp: httpx.Response) -> None:
    if resp.status_code < 400:
        return
    try:
        problem = resp.json()
    except ValueError:
        problem = {}
    detail = problem.get("detail") or resp.reason_phrase
    raise RestError(resp.status_code, f"{resp.status_code} {detail}", problem)
