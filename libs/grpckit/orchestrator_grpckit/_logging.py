"""Structured JSON logging on top of stdlib ``logging``.

One JSON object per line, so log shippers need no parsing rules. Fields passed with
``extra={...}`` become top-level keys; the current request id and, inside a span, its
``trace_id``/``span_id`` (the W3C hex forms a trace backend searches by) are added
automatically. Every
line passes through :func:`orchestrator_core.redaction.redact_text` last, so a credential
that reaches a message, an extra field or a traceback (a database error quoting a row, an
upstream error quoting a header) is never written out.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

from opentelemetry import trace

from orchestrator_core.redaction import redact_text
from orchestrator_grpckit._context import current_request_id

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}


class JsonFormatter(logging.Formatter):
    """Format records as one-line JSON objects.

    Keys: ``ts`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``, ``msg``, optional
    ``service``, ``request_id`` (when logged inside an RPC), ``trace_id`` and ``span_id``
    (when a recording or propagated span is current), every ``extra`` field, and
    ``exc`` with the formatted traceback when the record carries one.

    Args:
        service: Service name added to every line, if given.
    """

    def __init__(self, service: str | None = None) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as JSON.

        Args:
            record: The log record.

        Returns:
            One line of JSON, without a trailing newline.
        """
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if self._service:
            entry["service"] = self._service
        request_id = current_request_id()
        if request_id is not None:
            entry["request_id"] = request_id
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = f"{span.trace_id:032x}"
            entry["span_id"] = f"{span.span_id:016x}"
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: a stray non-JSON value must degrade to its str(), never lose the line.
        return redact_text(
            json.dumps(entry, default=str, ensure_ascii=False, separators=(",", ":"))
        )


class _JsonHandler(logging.StreamHandler[IO[str]]):
    """Marker subclass so configure_logging can replace its own handler idempotently."""


def configure_logging(
    level: str | int = "INFO", *, service: str | None = None, stream: IO[str] | None = None
) -> None:
    """Send all logging to one JSON-lines handler on the root logger.

    Calling it again replaces the handler it installed before (other handlers stay).

    Args:
        level: Root log level (name or number).
        service: Service name added to every line.
        stream: Destination (default ``sys.stderr``).
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _JsonHandler):
            root.removeHandler(handler)
            handler.close()
    handler = _JsonHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
