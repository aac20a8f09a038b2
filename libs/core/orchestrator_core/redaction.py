"""Secret redaction: credentials never reach logs, events, the Console or audit bundles.

Jobs reference secrets only by ``secretRef``; anything that still looks like a credential is
replaced by :data:`REDACTED` before it is stored or written out:

* :func:`redact_value` walks JSON-like values (payloads, labels): the value of every field
  whose name says it holds a credential (``authorization``, ``password``, ``token``,
  ``api_key``, ``client_secret``, ``cookie``, …; never ``secretRef``) is replaced, and every
  string is passed through :func:`redact_text`;
* :func:`redact_text` rewrites free text (error and progress messages, log lines): bearer and
  basic credentials, ``password=…``-style pairs, passwords in URLs, JWTs and PEM private keys.

The SQL function ``orchestrator.redact_text`` (migration 0006) applies the same text rules in
the database to worker messages; tests keep the two in agreement.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["REDACTED", "is_secret_field", "redact_text", "redact_value"]

REDACTED: Final = "[REDACTED]"

_SECRET_WORDS = (
    "authorization",
    "cookie",
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "credential",
    "credentials",
)
_SECRET_SUFFIXES = ("password", "passwd", "secret", "token", "apikey", "accesskey", "privatekey")
# Field names that carry references or metadata about secrets, not their values.
_SAFE_SUFFIXES = ("ref", "refs", "id", "ids", "name", "type", "count", "expiresat", "ttl")

_TEXT_RULES: Final = (
    (
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL
        ),
        REDACTED,
    ),
    (re.compile(r"(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE), r"\1\2" + REDACTED),
    (re.compile(r"(://[^/\s:@]+:)[^/\s@]+@"), r"\1" + REDACTED + "@"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    (
        re.compile(
            r"((authorization|cookie|password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key"
            r"|private[_-]?key|client[_-]?secret)[\"']?\s*[:=]\s*[\"']?)(bearer\s+|basic\s+)?"
            r"(\[REDACTED\]|[^\s\"',;&}]+)",
            re.IGNORECASE,
        ),
        r"\1\3" + REDACTED,
    ),
)


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def is_secret_field(name: str) -> bool:
    """Tell whether a field of this name holds a credential (``secretRef`` does not).

    Args:
        name: Field or header name, any case and separator style.

    Returns:
        True for names like ``Authorization``, ``password``, ``api-key``, ``access_token``.
    """
    key = _normalise(name)
    if not key or key.endswith(_SAFE_SUFFIXES):
        return False
    return key in _SECRET_WORDS or key.endswith(_SECRET_SUFFIXES)


def redact_text(text: str) -> str:
    """``text`` with credentials replaced by :data:`REDACTED`.

    Args:
        text: Free text (a message, a log line, a URL).

    Returns:
        The redacted text (the same object when nothing matched).
    """
    if not text:
        return text
    for pattern, replacement in _TEXT_RULES:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value: Any) -> Any:
    """A copy of a JSON-like value with credentials redacted.

    Mappings keep their keys; the value of a secret-named field becomes :data:`REDACTED`
    (whatever its type), strings pass through :func:`redact_text`, lists are walked.

    Args:
        value: ``dict``/``list``/``str``/scalar, as decoded from JSON.

    Returns:
        The redacted copy.
    """
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            key: (REDACTED if isinstance(key, str) and is_secret_field(key) else redact_value(item))
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_value(item) for item in value]
    return value
